"""Lift report: did contacting customers change what they did, compared with the held-out control group?

Per playbook, treated (status ``raised``) against holdout (status ``holdout``); other statuses
(suppressed, deferred) were never part of the comparison and are ignored. Two ways to say whether a
trigger converted, and both groups are always measured the same way:

* ``events`` (the default where the playbook has a target): the playbook's target event (a store
  purchase, a cancellation) happened within its horizon after the trigger was raised. Ops cannot
  report on customers they never contacted, so this is the basis that sees the control group as
  clearly as the treated one; triggers whose horizon has not ended yet are left out (counted as
  ``open``), since their outcome is not known;
* ``outcomes``: the outcome ops reported is ``converted``; triggers without one count as not converted
  (intention to treat: a treated customer ops never reached still counts).

``goal`` says which way is good: ``increase`` (uptake of an offer) or ``decrease`` (churn).

* absolute lift: treated rate − holdout rate, with a 95 % interval by Newcombe's hybrid score method
  ("method 10" of R. G. Newcombe, *Interval estimation for the difference between independent
  proportions: comparison of eleven methods*, Statistics in Medicine 17:873-890, 1998): built from
  the two Wilson score intervals, it keeps close to nominal coverage for small groups and rates near
  0 or 1, where the textbook Wald interval is too narrow or leaves [-1, 1];
* relative lift: (treated − holdout) / holdout rate, None when the holdout rate is 0;
* p-value: two-sided pooled two-proportion z-test (1.0 when neither or both groups all converted).

A group with no triggers gets no rate, interval or p-value (None) and a ``note`` saying why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from predictors.errors import DataError

__all__ = [
    "Z95",
    "LiftRow",
    "event_conversions",
    "lift_report",
    "newcombe_interval",
    "two_proportion_p",
    "wilson_interval",
]

#: The standard normal quantile for a two-sided 95 % interval.
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for one proportion (Wilson 1927)."""
    if n <= 0:
        raise DataError("a proportion needs at least one trial")
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 − p2 (method 10, from two Wilson intervals)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, lower), min(1.0, upper)


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2.0))


@dataclass(frozen=True)
class LiftRow:
    """The treated-vs-holdout comparison of one playbook."""

    playbook: str
    treated_n: int
    treated_conversions: int
    treated_rate: float | None
    holdout_n: int
    holdout_conversions: int
    holdout_rate: float | None
    lift: float | None
    ci_low: float | None
    ci_high: float | None
    relative_lift: float | None
    p_value: float | None
    note: str | None = None
    basis: str = "outcomes"
    goal: str = "increase"
    open: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(playbook: str, tn: int, tx: int, hn: int, hx: int) -> LiftRow:
    t_rate = tx / tn if tn else None
    h_rate = hx / hn if hn else None
    if not tn or not hn:
        missing = " and ".join(g for g, n in (("treated", tn), ("holdout", hn)) if not n)
        note: str | None = f"no {missing} triggers yet: lift cannot be estimated until both groups have some"
        return LiftRow(playbook, tn, tx, t_rate, hn, hx, h_rate, None, None, None, None, None, note)
    assert t_rate is not None and h_rate is not None
    low, high = newcombe_interval(tx, tn, hx, hn)
    relative = (t_rate - h_rate) / h_rate if h_rate > 0 else None
    note = None if h_rate > 0 else "no holdout conversions: relative lift is undefined"
    return LiftRow(
        playbook,
        tn,
        tx,
        t_rate,
        hn,
        hx,
        h_rate,
        t_rate - h_rate,
        low,
        high,
        relative,
        two_proportion_p(tx, tn, hx, hn),
        note,
    )


def event_conversions(
    triggers: pd.DataFrame, events: pd.DataFrame, horizon_days: int, now: datetime
) -> pd.Series:
    """Per trigger: True/False whether the customer had a target event in ``(created, created + horizon]``,
    None (missing) while that window is still open at ``now``.

    ``triggers``: customer_id, created (tz-aware); ``events``: customer_id, ts (tz-aware), already
    restricted to the target's kinds (and channel). The result is indexed like ``triggers``.
    """
    for frame, cols, what in (
        (triggers, ("customer_id", "created"), "triggers"),
        (events, ("customer_id", "ts"), "events"),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(f"event_conversions: {what} lacks column(s) {', '.join(missing)}")
    if horizon_days < 1:
        raise DataError("event_conversions: horizon_days must be at least 1")
    horizon = pd.Timedelta(days=horizon_days)
    created = pd.to_datetime(triggers["created"], utc=True)
    matured = (created + horizon <= pd.Timestamp(now)).to_numpy()
    hit = np.zeros(len(triggers), dtype=bool)
    if len(triggers) and len(events):
        left = pd.DataFrame(
            {
                "row": np.arange(len(triggers)),
                "customer_id": triggers["customer_id"].to_numpy(),
                "created": created.to_numpy(),
            }
        )
        right = pd.DataFrame(
            {
                "customer_id": events["customer_id"].to_numpy(),
                "ts": pd.to_datetime(events["ts"], utc=True).to_numpy(),
            }
        )
        pairs = left.merge(right, on="customer_id", how="inner")
        inside = (pairs["ts"] > pairs["created"]) & (pairs["ts"] <= pairs["created"] + horizon)
        hit[np.unique(pairs.loc[inside, "row"].to_numpy())] = True
    out = pd.Series(hit, index=triggers.index, dtype=object)
    out[~matured] = None
    return out


def lift_report(
    triggers: pd.DataFrame,
    *,
    basis: str = "outcomes",
    goals: Mapping[str, str] | None = None,
) -> list[LiftRow]:
    """One :class:`LiftRow` per playbook (sorted by name) from ``playbook``, ``status`` and either
    ``outcome`` (basis ``outcomes``) or ``converted`` (True/False, None while open: basis ``events``)."""
    if basis not in ("outcomes", "events"):
        raise DataError(f"lift basis {basis!r} is unknown; use events or outcomes")
    needed = ("playbook", "status", "outcome" if basis == "outcomes" else "converted")
    missing = [c for c in needed if c not in triggers.columns]
    if missing:
        raise DataError(f"lift_report needs columns {', '.join(needed)}; missing {', '.join(missing)}")
    status = triggers["status"].to_numpy(dtype=object)
    treated = status == "raised"
    held = status == "holdout"
    keep = treated | held
    if not keep.any():
        return []
    if basis == "outcomes":
        converted = triggers["outcome"].to_numpy(dtype=object) == "converted"
        known = np.ones(len(triggers), dtype=bool)
    else:
        raw = triggers["converted"].to_numpy(dtype=object)
        known = np.asarray([v is not None and v == v for v in raw], dtype=bool)  # None / NaN: open
        converted = np.asarray([bool(v) if k else False for v, k in zip(raw, known, strict=True)], dtype=bool)
    frame = pd.DataFrame(
        {
            "playbook": [str(p) for p in triggers["playbook"].to_numpy(dtype=object)[keep]],
            "treated": treated[keep],
            "converted": converted[keep],
            "known": known[keep],
        }
    )
    opened = frame[~frame["known"]].groupby("playbook").size()
    counts = (
        frame[frame["known"]].groupby(["playbook", "treated"], sort=True)["converted"].agg(["size", "sum"])
    )
    rows = []
    for playbook in sorted(set(frame["playbook"])):

        def get(group: bool, column: str, playbook: str = playbook) -> int:
            key = (playbook, group)
            return int(counts.loc[key, column]) if key in counts.index else 0

        row = _row(playbook, get(True, "size"), get(True, "sum"), get(False, "size"), get(False, "sum"))
        n_open = int(opened.get(playbook, 0))
        note = row.note
        if n_open and (row.treated_n == 0 or row.holdout_n == 0):
            note = f"{n_open} trigger(s) still inside the target's horizon; {note}"
        rows.append(
            replace(row, basis=basis, goal=(goals or {}).get(playbook, "increase"), open=n_open, note=note)
        )
    return rows
