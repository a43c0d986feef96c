"""Marketing ops: the trigger feed (reasons, masked contacts), outcomes, and lift per playbook.

The feed shows contact data masked with the ``ops`` profile, as ``GET /v1/triggers`` does, and
records the same ``trigger.listed`` read entry for the customers shown; an outcome goes through
:meth:`ProactiveService.record_outcome` and its ``trigger.outcome`` entry.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for

from appliance.server.auth import current_key
from appliance.server.console.blueprint import bp, notify, render, see_other
from appliance.server.console.errors import BadFormValue
from appliance.server.console.pages import OPS, page
from appliance.server.console.views_account import safe_next
from appliance.server.context import current_node, request_id

__all__: list[str] = []

STATUSES = ("pending", "delivered", "failed", "suppressed", "holdout", "deferred", "closed")
OUTCOMES = ("contacted", "converted", "declined")
_PAGE = 50


def _filters() -> dict[str, Any]:
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadFormValue(f"status: give one of {', '.join(STATUSES)}")
    playbook = args.get("playbook") or None
    names = set(current_node().proactive.playbooks)
    if playbook is not None and playbook not in names:
        raise BadFormValue(f"playbook: {playbook[:64]!r} is not a playbook of this node")
    after = args.get("after", "0")
    if not after.isdigit() or len(after) > 18:
        raise BadFormValue("after: give a trigger id")
    basis = args.get("basis", "events")
    if basis not in ("events", "outcomes"):
        raise BadFormValue("basis: give events or outcomes")
    return {"status": status, "playbook": playbook, "after": int(after), "basis": basis}


def _lift_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def pct(v: float | None) -> float | None:
        return None if v is None else round(100 * v, 2)

    return {
        "type": "bar",
        "stacked": False,
        "percent": True,
        "labels": [r["playbook"] for r in rows],
        "datasets": [
            {"label": "treated", "data": [pct(r["treated_rate"]) for r in rows]},
            {"label": "holdout", "data": [pct(r["holdout_rate"]) for r in rows]},
        ],
    }


@bp.get("/ops")
@page(*OPS, nav="nav.ops")
def ops() -> tuple[str, int]:
    node = current_node()
    key = current_key()
    f = _filters()
    rows = node.store.proactive.list_triggers(
        status=f["status"], playbook=f["playbook"], run_id=None, after_id=f["after"], limit=_PAGE
    )
    views: dict[tuple[int, str], dict[str, Any]] = {}
    for channel in sorted({r.channel for r in rows}):
        ids = [r.customer_id for r in rows if r.channel == channel]
        for cid, view in node.proactive.customer_views(ids, channel).items():
            views[(cid, channel)] = view
    triggers = [{**r.as_dict(), "customer": views.get((r.customer_id, r.channel), {})} for r in rows]
    if rows:  # showing masked contacts is a read of customer data: one entry, as the API records
        node.record(
            key.actor,
            "trigger.listed",
            sorted({node.pseudonyms.pseudonym("cust", str(r.customer_id)) for r in rows}),
            {"triggers": [r.id for r in rows], "role": key.role},
            request_id=request_id(),
        )
    lift = node.proactive.lift(None, basis=f["basis"])
    return render(
        "console/ops.html",
        filters=f,
        statuses=STATUSES,
        playbooks=sorted(node.proactive.playbooks),
        triggers=triggers,
        next_after=rows[-1].id if len(rows) == _PAGE else None,
        outcomes=OUTCOMES,
        lift=lift,
        lift_chart=_lift_chart(lift),
        here=request.full_path.rstrip("?"),
    )


@bp.post("/ops/triggers/<int:trigger_id>/outcome")
@page(*OPS)
def trigger_outcome(trigger_id: int) -> Response:
    outcome = request.form.get("outcome")
    if outcome not in OUTCOMES:
        raise BadFormValue(f"outcome: give one of {', '.join(OUTCOMES)}")
    row, seq = current_node().proactive.record_outcome(
        trigger_id, outcome, actor=current_key().actor, request_id=request_id()
    )
    notify(f"trigger {row.id}: {outcome} (ledger entry {seq})")
    return see_other(safe_next(request.form.get("next")) or url_for("console.ops"))
