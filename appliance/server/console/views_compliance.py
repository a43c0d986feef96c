"""The compliance page: policy versions and what changed between two, reply decisions per day by
region, rule or decision (a chart), and how many identifiers of each type masking found.

Decisions and masking counts come from the ledger (``reply.checked``, ``text.masked``,
``transcript.read`` entries), so the page shows what was recorded, not what a service remembers.
"""

from __future__ import annotations

from typing import Any

from flask import request

from appliance.server.console.blueprint import bp, render
from appliance.server.console.errors import BadFormValue
from appliance.server.console.pages import COMPLIANCE, page
from appliance.server.console.stats import decisions_over_time, masking_by_entity
from appliance.server.context import current_node

__all__: list[str] = []

_GROUPINGS = ("region", "rule", "decision")
_MAX_DAYS = 366


def _days() -> int:
    text = request.args.get("days", "30")
    if not text.isdigit() or not 1 <= int(text) <= _MAX_DAYS:
        raise BadFormValue(f"days: give a number from 1 to {_MAX_DAYS}")
    return int(text)


def _diff(ids: list[str]) -> dict[str, Any] | None:
    a, b = request.args.get("from"), request.args.get("to")
    if not a and not b:
        return None
    for name, vid in (("from", a), ("to", b)):
        if vid not in ids:
            raise BadFormValue(f"{name}: {str(vid)[:80]!r} is not a published policy version")
    from policy import diff

    registry = current_node().policy
    assert a is not None and b is not None
    return diff(registry.library(a), registry.library(b)).as_dict()


@bp.get("/compliance")
@page(*COMPLIANCE, nav="nav.compliance")
def compliance() -> tuple[str, int]:
    node = current_node()
    registry = node.policy
    live = registry.live_id()
    versions = [{**v.as_dict(), "live": v.id == live} for v in reversed(registry.versions())]
    ids = [v["id"] for v in versions]
    by = request.args.get("by", "region")
    if by not in _GROUPINGS:
        raise BadFormValue(f"by: give one of {', '.join(_GROUPINGS)}")
    days = _days()
    series = decisions_over_time(node.ledger, by=by, days=days)
    masking, masking_complete = masking_by_entity(node.ledger, days=days)
    entity_rows = masking.most_common()
    masking_chart = {
        "type": "bar",
        "horizontal": True,
        "labels": [name for name, _ in entity_rows],
        "datasets": [{"label": "masked", "data": [n for _, n in entity_rows]}],
    }
    return render(
        "console/compliance.html",
        versions=versions,
        live=live,
        diff=_diff(ids),
        diff_from=request.args.get("from") or (ids[1] if len(ids) > 1 else (ids[0] if ids else "")),
        diff_to=request.args.get("to") or (ids[0] if ids else ""),
        by=by,
        groupings=_GROUPINGS,
        days=days,
        series=series,
        decisions_chart=series.chart("bar", stacked=True),
        entity_rows=entity_rows,
        masking_chart=masking_chart,
        masking_complete=masking_complete,
    )
