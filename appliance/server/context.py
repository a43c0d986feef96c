"""Per-app and per-request state: the node and the request id.

The node lives in ``app.extensions["appliance"]`` (as Flask extensions keep
their state) so handlers never reach for a module global, and a test can run
several apps side by side. The request id ties a response, the log lines and
the ledger entry of one request together; a caller's own id is kept when it is
safe to echo and to store in the ledger, otherwise one is made up.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from flask import Flask, Response, current_app, g, has_request_context, request

from appliance import logs, metrics
from appliance.node import Node

__all__ = ["EXTENSION", "REQUEST_ID_HEADER", "current_node", "init_request_context", "request_id"]

EXTENSION = "appliance"
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

log = logging.getLogger("appliance.server")


def current_node() -> Node:
    """The node this app serves."""
    node: Node = current_app.extensions[EXTENSION]
    return node


def request_id() -> str:
    """The current request's id, taken from ``X-Request-Id`` when well-formed, else ``req_<16 hex>``."""
    if not has_request_context():
        return "none"
    rid: str | None = g.get("request_id")
    if rid is None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        rid = incoming if _SAFE_ID.fullmatch(incoming) else f"req_{secrets.token_hex(8)}"
        g.request_id = rid
    return rid


def _route() -> str | None:
    """The URL rule that matched (``/v1/customers/<customer_id>``): what logs and metrics name, not the
    path, which may carry identifiers and has no bound on its values."""
    rule = request.url_rule
    return rule.rule if rule is not None else None


def _start() -> None:
    g.started = time.perf_counter()
    # A worker thread serves one request after another: nothing bound for the last one may leak in.
    logs.clear()
    logs.bind(request_id=request_id(), route=_route() or "-", method=request.method)
    metrics.get().in_flight.inc()
    g.in_flight = True


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    key = g.get("api_key")
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    route = _route()
    metrics.request_finished(route, request.method, response.status_code, seconds)
    # The route template only: no path, no query string, no headers (tokens travel in headers).
    log.info(
        "%s %s %s",
        request.method,
        route or "-",
        response.status_code,
        extra={
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
            "key_id": key.key_id if key is not None else None,
        },
    )
    return response


def _teardown(_exc: BaseException | None) -> None:
    if g.pop("in_flight", False):
        metrics.get().in_flight.dec()
    logs.clear()


def init_request_context(app: Flask) -> None:
    """Give every request an id (bound for its log lines), every response its ``X-Request-Id`` header,
    an access-log line and its place in the request metrics."""
    # This process's metrics exist from now, not from its first request: a gunicorn worker shows up
    # in the multiprocess directory once it has loaded the app (bench/bench_load.py waits for that).
    metrics.get()
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
