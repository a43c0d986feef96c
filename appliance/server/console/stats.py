"""What the compliance page computes from the ledger: decisions per day, identifiers masked by type.

Pure functions over a :class:`~ledger.Ledger` (no Flask) on top of
:func:`appliance.ledger_query.find_entries`, which finds entries by action and time without parsing
the rest of the log. A page reads at most ``cap`` entries (the newest) and says when it stopped there.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from appliance.ledger_query import find_entries
from ledger import Ledger

__all__ = ["TimeSeries", "decisions_over_time", "masking_by_entity"]

#: Entries one chart reads at most (the newest); enough for months of a busy node's decisions.
CAP = 200_000
#: Actions whose details carry ``entities``: counts of identifiers found and masked, by type.
MASKING_ACTIONS = ("text.masked", "transcript.read")


@dataclass
class TimeSeries:
    """Counts per day and per series, ready for a chart (labels on x, one dataset per series)."""

    days: list[str]
    series: dict[str, list[int]] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)
    scanned: int = 0
    complete: bool = True

    def chart(self, kind: str = "bar", *, stacked: bool = True) -> dict[str, Any]:
        """A Chart.js configuration (data only; ``static/js/charts.js`` adds the rest)."""
        return {
            "type": kind,
            "stacked": stacked,
            "labels": self.days,
            "datasets": [{"label": name, "data": data} for name, data in sorted(self.series.items())],
        }


def _first_day(days: int, today: date | None) -> date:
    return (today or datetime.now(UTC).date()) - timedelta(days=days - 1)


def decisions_over_time(
    ledger: Ledger, *, by: str, days: int, today: date | None = None, cap: int = CAP
) -> TimeSeries:
    """Reply decisions (``reply.checked``) per day over the last ``days`` days (UTC), by ``region``,
    ``rule`` (only decisions some rule fired in) or ``decision``."""
    first = _first_day(days, today)
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    index = {d: i for i, d in enumerate(labels)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    out = TimeSeries(labels)
    since = datetime.combine(first, time.min, UTC)
    found = find_entries(ledger, action="reply.checked", since=since, limit=cap, newest_first=True)
    out.scanned, out.complete = len(found), len(found) < cap
    for _seq, entry in found:
        day = entry.time[:10]
        if day not in index:
            continue
        details = entry.details
        names = (
            [str(r) for r in details.get("rules") or []] if by == "rule" else [str(details.get(by) or "?")]
        )
        for name in names:
            series[name][index[day]] += 1
            out.totals[name] += 1
    out.series = dict(series)
    return out


def masking_by_entity(
    ledger: Ledger, *, days: int, today: date | None = None, cap: int = CAP
) -> tuple[Counter[str], bool]:
    """Identifiers found and masked per entity type over the last ``days`` days; returns the counts and
    whether every such entry was read (False: only the newest ``cap`` of an action were)."""
    since = datetime.combine(_first_day(days, today), time.min, UTC)
    counts: Counter[str] = Counter()
    complete = True
    for action in MASKING_ACTIONS:
        found = find_entries(ledger, action=action, since=since, limit=cap, newest_first=True)
        complete = complete and len(found) < cap
        for _seq, entry in found:
            entities = entry.details.get("entities")
            if isinstance(entities, dict):
                for name, n in entities.items():
                    if isinstance(n, int) and not isinstance(n, bool):
                        counts[str(name)] += n
    return counts, complete
