"""``GET /metrics``: the Prometheus text exposition of every worker, the scheduler and the node's state.

Metrics reveal activity (how many records were read, by which roles, how many replies were blocked),
so the route is not public: an admin key opens it, or the dedicated scrape token of
``metrics.token_file`` (``appliance metrics token`` makes one), which opens nothing else. Scrapes are
not ledger entries: they read no customer data, and a scrape every 15 s would fill the ledger with
noise; failed attempts are counted and recorded like any other failed authentication.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, g, request

from appliance import metrics
from appliance.server.auth import authorize
from appliance.server.context import current_node
from appliance.server.openapi import Operation

__all__ = ["bp"]

bp = Blueprint("metrics", __name__)

ROLES = ("admin",)
_STATE = "appliance.metrics_state"
_TOKEN = "appliance.metrics_token"


def _state(app: Flask) -> tuple[metrics.NodeState, metrics.ScrapeToken]:
    state = app.extensions.get(_STATE)
    token = app.extensions.get(_TOKEN)
    if state is None or token is None:
        node = current_node()
        state = app.extensions[_STATE] = metrics.NodeState(node, node.settings.metrics.state_cache_seconds)
        token = app.extensions[_TOKEN] = metrics.ScrapeToken(metrics.token_path(node.settings))
    return state, token


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@bp.get("/metrics")
def scrape() -> Response:
    """Prometheus metrics (text format) for an admin key or the scrape token; see docs/operations.md."""
    state, token = _state(current_app)
    presented = _bearer()
    if presented is not None and token.matches(presented):
        g.scraper = "metrics-token"
    else:
        authorize(ROLES)  # 401 / 403 / 429 exactly as every other route, failures counted
    return Response(metrics.render(state), 200, content_type=metrics.CONTENT_TYPE)


#: Declared by hand (the answer is text, and the scrape token is one more way in): the document lists
#: the admin role and the text media type, and the auth table test checks the role.
scrape.openapi = Operation(  # type: ignore[attr-defined]
    "Prometheus metrics of all workers (text exposition format); admin key or the metrics scrape token",
    ROLES,
    media={"text/plain": {"type": "string", "description": "Prometheus text exposition format 0.0.4"}},
)
