"""Privacy queries: the analyst's query builder and results, and the custodian's approvals.

The builder writes the same SQL subset the JSON API takes (``docs/privacy.md``) and submits it
through :meth:`PrivacyService.submit`, so a console query is recorded, computed over ciphertexts
and released under the same guards and budget as any other; the page shows what was released,
what the guards suppressed or noised, and the budget left.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for

from appliance.privacy.errors import PrivacyError
from appliance.server.auth import current_key
from appliance.server.console.blueprint import bp, domain_kind, notify, render, see_other
from appliance.server.console.errors import BadFormValue
from appliance.server.console.pages import ANALYST, CUSTODIAN, page
from appliance.server.context import current_node, request_id
from appliance.server.errors import Kind

__all__ = ["EXAMPLES"]

#: Queries the page offers to start from (every one runs on a demo node).
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("example.count_mean", "SELECT COUNT(*) AS n, AVG(balance) FROM customers GROUP BY segment"),
    ("example.consent", "SELECT COUNT(*) AS n FROM customers WHERE marketing_consent = 1 GROUP BY region"),
    ("example.noise", "SELECT /*+ NOISE(laplace, 0.5) */ SUM(balance) FROM customers WHERE region = 'CN'"),
    ("example.spend", "SELECT AVG(monthly_spend) AS spend FROM customers GROUP BY region, segment"),
)
_MAX_SQL = 65_536


def _query_view(row: Any) -> dict[str, Any]:
    d = row.as_dict()
    released = d.get("released") or None
    groups = []
    if released:
        for group, values in (released.get("groups") or {}).items():
            groups.append({"group": group or "*", "values": values})
    d["groups"] = groups
    return d


def _analyst_page(status: int = 200, *, sql: str = "", error: str | None = None) -> tuple[str, int]:
    node = current_node()
    key_actor = current_key().actor
    privacy = node.privacy
    rows = node.store.privacy.list_queries(analyst=key_actor, limit=20)
    settings = node.settings.privacy
    return render(
        "console/queries.html",
        status=status,
        sql=sql,
        error=error,
        examples=EXAMPLES,
        queries=[_query_view(r) for r in rows],
        budget=privacy.budget_of(key_actor),
        columns=[c.as_dict() for c in privacy.columns()],
        visible=settings.visible_attributes,
        guards={
            "min_group_size": settings.min_group_size,
            "decimals": settings.decimals,
            "max_epsilon_per_query": settings.max_epsilon_per_query,
            "auto_release": settings.auto_release,
        },
    )


@bp.get("/queries")
@page(*ANALYST, nav="nav.queries")
def queries() -> tuple[str, int]:
    example = request.args.get("example")
    sql = ""
    if example is not None:
        if not example.isdigit() or not 0 <= int(example) < len(EXAMPLES):
            raise BadFormValue(f"example: give a number from 0 to {len(EXAMPLES) - 1}")
        sql = EXAMPLES[int(example)][1]
    return _analyst_page(sql=sql)


@bp.post("/queries")
@page(*ANALYST)
def submit_query() -> Response | tuple[str, int]:
    sql = (request.form.get("sql") or "").strip()
    if not sql:
        return _analyst_page(422, sql=sql, error="query.empty")
    if len(sql) > _MAX_SQL:
        raise BadFormValue(f"sql: at most {_MAX_SQL} characters")
    try:
        row = current_node().privacy.submit(actor=current_key().actor, sql=sql, request_id=request_id())
    except PrivacyError as exc:  # refused by the parser or the guards: show why, keep the text
        kind = domain_kind(exc) or Kind(422, "privacy-refused", "refused")
        return _analyst_page(kind.status, sql=sql, error=str(exc))
    notify(f"query {row.id}: {row.status}")
    return see_other(url_for("console.queries") + f"#query-{row.id}")


# -- the custodian ------------------------------------------------------------------------------------
@bp.get("/approvals")
@page(*CUSTODIAN, nav="nav.approvals")
def approvals() -> tuple[str, int]:
    node = current_node()
    waiting = node.store.privacy.list_queries(status="awaiting_approval", limit=100)
    recent = node.store.privacy.list_queries(limit=20)
    return render(
        "console/approvals.html",
        waiting=[_query_view(r) for r in waiting],
        recent=[_query_view(r) for r in recent],
    )


@bp.post("/approvals/<int:query_id>")
@page(*CUSTODIAN)
def approve_query(query_id: int) -> Response:
    row = current_node().privacy.approve(query_id, actor=current_key().actor, request_id=request_id())
    notify(f"query {row.id}: {row.status}")
    return see_other(url_for("console.approvals"))
