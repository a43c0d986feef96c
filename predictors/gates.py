"""Contact gates: whether each selected customer may be contacted now, and why not, gate by gate.

Every candidate passes through every gate, holdout customers included, so the control group is
filtered exactly like the treated group (a holdout customer who could not have been contacted is
recorded as suppressed, not counted as "not converted despite no contact"). Gates, in order:

1. ``suppression_list``: the customer is on the do-not-contact list;
2. ``consent``: the latest consent record for the offer's channel (records dated after ``now`` are
   ignored) must be ``opt_in``; no record means no consent, because marketing contact is opt-in;
3. ``region``: the customer's region is in the playbook's allow-list (a subdivision such as US-CA
   counts as its country), when there is one;
4. ``frequency_cap``: for each cap, contacts already made (``history``, the triggers raised earlier)
   in the last ``days`` days, from this playbook or from all, must be below ``max``;
5. ``quiet_hours``: the customer's local time (``time_zone`` if it is an IANA zone, else a default
   zone for the region, :data:`DEFAULT_ZONES`) inside the quiet window *defers* the contact to the end
   of the window (``status`` deferred, ``not_before`` in UTC); a customer whose zone cannot be known
   is suppressed, since a guess could call someone at night;
6. ``content``: the offer's text in the customer's language (``preferred_language``, else zh for
   CN/HK/MO/TW and en elsewhere) checked by the policy engine through ``content_check``, called once
   per distinct (region, language, channel, industry), not per customer.

Result per candidate: ``status`` ``suppressed`` (a gate refused; ``suppressed_by`` names the first),
``holdout`` (passed, control group: recorded, never contacted; quiet hours do not matter for it),
``deferred`` (passed but in quiet hours; ``suppressed_by`` is ``quiet_hours`` so the record says what
held it) or ``raised``; and ``reasons``: one ``{gate, passed, detail}`` per gate, in order. Rows with
the same outcome share one reasons list: treat it as read-only.

Vectorised for a million candidates: lookups by index, caps by grouped counts, the clock once per
distinct time zone, the content check once per combination, reasons built once per distinct outcome.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import pandas as pd

from predictors.errors import DataError
from predictors.features import utc_ns
from predictors.playbook import Playbook

__all__ = [
    "DEFAULT_LANGUAGES",
    "DEFAULT_ZONES",
    "GATES",
    "ContentCheck",
    "ContentVerdict",
    "evaluate_gates",
    "language_for",
    "zone_for",
]

GATES: tuple[str, ...] = ("suppression_list", "consent", "region", "frequency_cap", "quiet_hours", "content")
#: A region's zone when the customer record has none. Countries spanning zones get their most populous
#: one (US: New York); set the customer's ``time_zone`` to be exact. Subdivisions (US-CA) come first.
DEFAULT_ZONES: dict[str, str] = {
    "CN": "Asia/Shanghai",
    "HK": "Asia/Hong_Kong",
    "MO": "Asia/Macau",
    "TW": "Asia/Taipei",
    "SG": "Asia/Singapore",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "MY": "Asia/Kuala_Lumpur",
    "TH": "Asia/Bangkok",
    "VN": "Asia/Ho_Chi_Minh",
    "ID": "Asia/Jakarta",
    "PH": "Asia/Manila",
    "IN": "Asia/Kolkata",
    "AE": "Asia/Dubai",
    "AU": "Australia/Sydney",
    "NZ": "Pacific/Auckland",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "PT": "Europe/Lisbon",
    "EU": "Europe/Berlin",
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "IT": "Europe/Rome",
    "ES": "Europe/Madrid",
    "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels",
    "AT": "Europe/Vienna",
    "CH": "Europe/Zurich",
    "SE": "Europe/Stockholm",
    "DK": "Europe/Copenhagen",
    "NO": "Europe/Oslo",
    "FI": "Europe/Helsinki",
    "PL": "Europe/Warsaw",
    "CZ": "Europe/Prague",
    "GR": "Europe/Athens",
    "US": "America/New_York",
    "US-CA": "America/Los_Angeles",
    "US-WA": "America/Los_Angeles",
    "US-OR": "America/Los_Angeles",
    "US-NV": "America/Los_Angeles",
    "US-AZ": "America/Phoenix",
    "US-CO": "America/Denver",
    "US-TX": "America/Chicago",
    "US-IL": "America/Chicago",
    "US-HI": "Pacific/Honolulu",
    "US-AK": "America/Anchorage",
    "CA": "America/Toronto",
    "MX": "America/Mexico_City",
    "BR": "America/Sao_Paulo",
}
#: The offer language for a customer without a (known) preferred language.
DEFAULT_LANGUAGES: dict[str, str] = {"CN": "zh", "HK": "zh", "MO": "zh", "TW": "zh"}
_STATUSES = np.array(["raised", "suppressed", "deferred", "holdout"], dtype=object)
_RAISED, _SUPPRESSED, _DEFERRED, _HOLDOUT = range(4)


@dataclass(frozen=True)
class ContentVerdict:
    """The policy engine's answer on an offer text: may it be sent, the decision, the rules that fired."""

    allowed: bool
    decision: str
    rules: Sequence[str]
    detail: str


class ContentCheck(Protocol):
    """What the gates need from the policy engine (the node adapts its evaluator to this)."""

    def __call__(
        self, region: str, language: str, channel: str, industry: str, text: str
    ) -> ContentVerdict: ...


def _country(region: str) -> str:
    return region.split("-", 1)[0]


def zone_for(region: str | None, time_zone: str | None = None) -> str | None:
    """The IANA zone for quiet hours: the customer's own if valid, else the region's default, else None."""
    if isinstance(time_zone, str) and _valid_zone(time_zone):
        return time_zone
    if not isinstance(region, str):
        return None
    return DEFAULT_ZONES.get(region) or DEFAULT_ZONES.get(_country(region))


def language_for(region: str | None, preferred: str | None, available: Collection[str] = ("zh", "en")) -> str:
    """The offer language: the customer's preferred one if the offer has it, else the region's default."""
    if isinstance(preferred, str) and preferred in available:
        return preferred
    if isinstance(region, str):
        return DEFAULT_LANGUAGES.get(region) or DEFAULT_LANGUAGES.get(_country(region), "en")
    return "en"


@lru_cache(maxsize=1024)
def _valid_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class _Gate:
    """One gate's outcome: ``code[i]`` indexes ``outcomes`` (passed, detail) for candidate ``i``."""

    name: str
    code: np.ndarray
    outcomes: list[tuple[bool, str]]

    def failed(self) -> np.ndarray:
        ok = np.array([p for p, _ in self.outcomes] + [True], dtype=bool)
        result: np.ndarray = ~ok[self.code]
        return result


@dataclass(frozen=True)
class _Coded:
    """A customer column at the candidates as codes into ``values``; the last value is None (missing)."""

    code: np.ndarray
    values: list[Any]

    @classmethod
    def of(cls, customers: pd.DataFrame, name: str, pos: np.ndarray) -> _Coded:
        if name not in customers.columns:
            return cls(np.zeros(len(pos), dtype=np.int64), [None])
        # factorize the whole column (fast for str / categorical dtypes), then pick the candidates
        codes, uniques = pd.factorize(customers[name], use_na_sentinel=True)
        values = [v.item() if isinstance(v, np.generic) else v for v in uniques]
        codes = np.asarray(codes, dtype=np.int64)[pos]
        return cls(np.where(codes < 0, len(values), codes), [*values, None])


def _factorize(values: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(uniques)


def _ts(frame: pd.DataFrame, what: str) -> np.ndarray:
    if len(frame) == 0:
        return np.zeros(0, dtype=np.int64)
    return utc_ns(frame["ts"], f"{what}.ts")


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) {', '.join(missing)}; it needs {', '.join(columns)}")


# -- the gates -------------------------------------------------------------------------------------------
def _suppression(ids: np.ndarray, suppressions: Any) -> _Gate:
    reasons: np.ndarray | None = None
    if isinstance(suppressions, pd.DataFrame):
        _require(suppressions, ("customer_id",), "suppressions")
        listed = suppressions["customer_id"].to_numpy(dtype=np.int64)
        if "reason" in suppressions.columns:
            reasons = suppressions["reason"].to_numpy(dtype=object, na_value=None)
    elif suppressions is None:
        listed = np.zeros(0, dtype=np.int64)
    else:
        listed = np.fromiter((int(x) for x in suppressions), dtype=np.int64)
    found = pd.Index(listed).get_indexer(ids) if len(listed) else np.full(len(ids), -1)
    code = np.zeros(len(ids), dtype=np.int64)
    outcomes = [(True, "not on the suppression list")]
    on = found >= 0
    if on.any():
        if reasons is None:
            code[on] = 1
            outcomes.append((False, "on the suppression list; remove the customer from it to contact them"))
        else:
            rcode, runiq = _factorize(reasons[found[on]])
            code[on] = 1 + np.where(rcode < 0, len(runiq), rcode)
            outcomes.extend((False, f"on the suppression list: {r}") for r in runiq)
            outcomes.append((False, "on the suppression list"))
    return _Gate("suppression_list", code, outcomes)


def _consent(ids: np.ndarray, consent: pd.DataFrame, channel: str, now: int) -> _Gate:
    _require(consent, ("customer_id", "channel", "status", "ts"), "consent")
    code = np.full(len(ids), 2, dtype=np.int64)
    outcomes = [
        (True, f"opted in to {channel}"),
        (False, f"opted out of {channel}; contact on {channel} needs a new opt-in"),
        (False, f"no consent record for {channel}; opt-in is required before any contact"),
        (False, f"latest {channel} consent has an unknown status; record opt_in or opt_out"),
    ]
    if len(consent):
        ts = _ts(consent, "consent")
        on_channel = consent["channel"].eq(channel).to_numpy(dtype=bool, na_value=False)
        rows = np.flatnonzero(on_channel & (ts <= now))
        if len(rows):
            cid = consent["customer_id"].to_numpy(dtype=np.int64)[rows]
            opt_in = consent["status"].eq("opt_in").to_numpy(dtype=bool, na_value=False)
            opt_out = consent["status"].eq("opt_out").to_numpy(dtype=bool, na_value=False)
            status = np.where(opt_in, 0, np.where(opt_out, 1, 3))[rows]
            # by customer, then time; lexsort is stable, so equal times keep their input order
            order = np.lexsort((ts[rows], cid))
            cid, status = cid[order], status[order]
            last = np.append(cid[1:] != cid[:-1], True)  # the latest record of each customer
            found = pd.Index(cid[last]).get_indexer(ids)
            has = found >= 0
            code[has] = status[last][found[has]]
    return _Gate("consent", code, outcomes)


def _region(region: _Coded, allowed: tuple[str, ...] | None) -> _Gate:
    if allowed is None:
        return _Gate("region", np.zeros(len(region.code), dtype=np.int64), [(True, "no region restriction")])
    listed = ", ".join(allowed)
    outcomes = []
    for r in region.values:
        if r is None:
            outcomes.append((False, f"region unknown; this playbook contacts only {listed}"))
        elif r in allowed or _country(str(r)) in allowed:
            outcomes.append((True, f"region {r} is allowed"))
        else:
            outcomes.append((False, f"region {r} is not among this playbook's regions ({listed})"))
    return _Gate("region", region.code, outcomes)


def _caps(ids: np.ndarray, history: pd.DataFrame, playbook: Playbook, now: int) -> _Gate:
    caps = playbook.contact.caps
    summary = "; ".join(
        f"at most {c.max} in {c.days} d {'from this playbook' if c.scope == 'playbook' else 'overall'}"
        for c in caps
    )
    code = np.zeros(len(ids), dtype=np.int64)
    outcomes = [(True, f"within every cap ({summary})" if caps else "no frequency caps")]
    if not caps or len(history) == 0:
        return _Gate("frequency_cap", code, outcomes)
    _require(history, ("customer_id", "playbook", "ts"), "history")
    ts = _ts(history, "history")
    pos = pd.Index(ids).get_indexer(history["customer_id"].to_numpy(dtype=np.int64))
    mine = history["playbook"].to_numpy(dtype=object) == playbook.name
    first = np.full(len(ids), -1, dtype=np.int64)
    seen = np.zeros(len(ids), dtype=np.int64)
    for j, cap in enumerate(caps):
        rows = (pos >= 0) & (ts <= now) & (ts > now - cap.days * 86_400 * 10**9)
        if cap.scope == "playbook":
            rows &= mine
        counts = np.bincount(pos[rows], minlength=len(ids))
        hit = (counts >= cap.max) & (first < 0)
        first[hit] = j
        seen[hit] = counts[hit]
    failing = first >= 0
    if failing.any():
        key = first[failing] * (int(seen.max()) + 1) + seen[failing]
        uniq, inverse = np.unique(key, return_inverse=True)
        width = int(seen.max()) + 1
        for k in uniq.tolist():
            cap = caps[k // width]
            where = "from this playbook" if cap.scope == "playbook" else "from all playbooks"
            outcomes.append(
                (False, f"{k % width} contact(s) in the last {cap.days} d {where}; the cap is {cap.max}")
            )
        code[failing] = 1 + inverse
    return _Gate("frequency_cap", code, outcomes)


def _quiet(
    region: _Coded, zones: _Coded, playbook: Playbook, now: datetime
) -> tuple[_Gate, np.ndarray, np.ndarray]:
    """The gate, a 'deferred' flag and not_before (int64 UTC ns, or NaT's value) per candidate."""
    n = len(region.code)
    quiet = playbook.contact.quiet_hours
    nat = np.iinfo(np.int64).min
    if quiet is None:
        return (
            _Gate("quiet_hours", np.zeros(n, dtype=np.int64), [(True, "no quiet hours")]),
            np.zeros(n, dtype=bool),
            np.full(n, nat, dtype=np.int64),
        )
    # the zone depends on (time_zone, region) only: resolve each distinct pair once
    names: list[str] = []
    table = np.empty((len(zones.values), len(region.values)), dtype=np.int64)
    for i, tz in enumerate(zones.values):
        for j, r in enumerate(region.values):
            name = zone_for(r, tz)
            if name is not None and name not in names:
                names.append(name)
            table[i, j] = names.index(name) if name is not None else -1
    code = table[zones.code, region.code]
    outcomes: list[tuple[bool, str]] = []
    defer = []
    until = []
    window = str(quiet)
    for name in names:
        zone = zoneinfo.ZoneInfo(name)
        local = now.astimezone(zone)
        if quiet.contains(local.time().replace(tzinfo=None)):
            day = (
                local.date() if local.time().replace(tzinfo=None) < quiet.end else local.date() + timedelta(1)
            )
            resume = datetime.combine(day, quiet.end, tzinfo=zone).astimezone(UTC)
            outcomes.append(
                (
                    False,
                    f"{local:%H:%M} local time ({name}) is inside the quiet hours {window}; deferred to "
                    f"{quiet.end:%H:%M} local ({resume:%Y-%m-%dT%H:%M:%SZ})",
                )
            )
            defer.append(True)
            until.append(int(pd.Timestamp(resume).as_unit("ns").value))
        else:
            outcomes.append((True, f"{local:%H:%M} local time ({name}) is outside the quiet hours {window}"))
            defer.append(False)
            until.append(nat)
    outcomes.append(
        (
            False,
            "the customer's local time is unknown (no valid time_zone and no default zone for the "
            "region); set the customer's time_zone",
        )
    )
    defer.append(False)
    until.append(nat)
    idx = np.where(code < 0, len(names), code)
    return _Gate("quiet_hours", idx, outcomes), np.array(defer)[idx], np.array(until, dtype=np.int64)[idx]


def _content(
    region: _Coded,
    language: _Coded,
    playbook: Playbook,
    content_check: ContentCheck | Callable[..., ContentVerdict] | None,
) -> _Gate:
    n = len(region.code)
    if content_check is None:
        return _Gate(
            "content", np.zeros(n, dtype=np.int64), [(True, "not checked: no content check was given")]
        )
    offer = playbook.offer
    width = len(language.values)
    uniq, inverse = np.unique(region.code * width + language.code, return_inverse=True)
    outcomes: list[tuple[bool, str]] = []
    for key in uniq.tolist():
        r, lang = region.values[key // width], language.values[key % width]
        if r is None or lang is None:
            outcomes.append((False, "the customer has no region, so the offer's wording cannot be checked"))
            continue
        verdict = content_check(str(r), lang, offer.channel, offer.industry, offer.text[lang])
        rules = f" [{', '.join(verdict.rules)}]" if verdict.rules else ""
        outcomes.append(
            (
                bool(verdict.allowed),
                f"{lang} offer text for {r}: {verdict.decision}{rules}"
                + (f"; {verdict.detail}" if verdict.detail else ""),
            )
        )
    return _Gate("content", np.asarray(inverse, dtype=np.int64).reshape(-1), outcomes)


def _languages(region: _Coded, preferred: _Coded, available: tuple[str, ...]) -> _Coded:
    """:func:`language_for` per candidate, resolved once per distinct (preferred, region) pair."""
    names: list[str] = []
    table = np.empty((len(preferred.values), len(region.values)), dtype=np.int64)
    for i, lang in enumerate(preferred.values):
        for j, r in enumerate(region.values):
            name = language_for(r, lang, available)
            if name not in names:
                names.append(name)
            table[i, j] = names.index(name)
    return _Coded(table[preferred.code, region.code], [*names, None])


# -- assembly --------------------------------------------------------------------------------------------
def _reasons(gates: Sequence[_Gate], n: int) -> np.ndarray:
    """One shared reasons list per distinct combination of gate outcomes, mapped back to the rows."""
    if n == 0:
        return np.empty(0, dtype=object)
    radices = [len(g.outcomes) + 1 for g in gates]
    if float(np.prod(radices, dtype=np.float64)) < 2.0**62:
        key = np.zeros(n, dtype=np.int64)
        for g, r in zip(gates, radices, strict=True):
            key = key * r + g.code
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # pragma: no cover - needs billions of distinct outcomes
        stacked = np.stack([g.code for g in gates], axis=1)
        _, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
    lists = np.empty(len(first), dtype=object)
    for u, row in enumerate(first.tolist()):
        lists[u] = [
            {
                "gate": g.name,
                "passed": g.outcomes[int(g.code[row])][0],
                "detail": g.outcomes[int(g.code[row])][1],
            }
            for g in gates
        ]
    result: np.ndarray = lists[np.asarray(inverse).reshape(-1)]
    return result


def evaluate_gates(
    candidates: pd.DataFrame,
    customers: pd.DataFrame,
    *,
    playbook: Playbook,
    now: datetime,
    consent: pd.DataFrame,
    history: pd.DataFrame,
    suppressions: Collection[int] | np.ndarray | pd.DataFrame | None,
    content_check: ContentCheck | Callable[..., ContentVerdict] | None = None,
) -> pd.DataFrame:
    """Run every gate on every candidate (module docstring); one output row per candidate, same order.

    ``candidates``: customer_id, score, holdout. ``customers``: indexed by customer_id with region and
    optionally time_zone and preferred_language. ``consent``: customer_id, channel, status, ts.
    ``history``: customer_id, playbook, ts of contacts made. ``suppressions``: customer ids, or a frame
    with customer_id and reason. Returns customer_id, score, holdout, status, reasons, suppressed_by and
    not_before (UTC; NaT unless deferred).
    """
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise DataError("now must be a timezone-aware datetime, e.g. datetime.now(UTC)")
    _require(candidates, ("customer_id", "score", "holdout"), "candidates")
    _require(customers, ("region",), "customers")
    ids = candidates["customer_id"].to_numpy(dtype=np.int64)
    n = len(ids)
    pos = customers.index.get_indexer(ids) if n else np.zeros(0, dtype=np.int64)
    if (pos < 0).any():
        missing = ids[pos < 0][:5].tolist()
        raise DataError(
            f"candidates {missing} are not in the customer frame; pass the same customers the features "
            "were built from"
        )
    now_ns = int(pd.Timestamp(now).tz_convert("UTC").as_unit("ns").value)
    region = _Coded.of(customers, "region", pos)
    zones = _Coded.of(customers, "time_zone", pos)
    language = _languages(region, _Coded.of(customers, "preferred_language", pos), tuple(playbook.offer.text))

    quiet, deferred, not_before = _quiet(region, zones, playbook, now)
    gates = [
        _suppression(ids, suppressions),
        _consent(ids, consent, playbook.offer.channel, now_ns),
        _region(region, playbook.contact.regions),
        _caps(ids, history, playbook, now_ns),
        quiet,
        _content(region, language, playbook, content_check),
    ]
    failed = {g.name: g.failed() for g in gates}
    suppress = np.zeros(n, dtype=bool)
    first = np.full(n, None, dtype=object)
    for g in gates:
        stop = failed[g.name] & ~(deferred if g.name == "quiet_hours" else np.zeros(n, dtype=bool))
        first[stop & ~suppress] = g.name
        suppress |= stop
    holdout = candidates["holdout"].to_numpy(dtype=bool)
    status = np.full(n, _RAISED, dtype=np.int64)
    status[deferred] = _DEFERRED
    status[holdout] = _HOLDOUT
    status[suppress] = _SUPPRESSED
    first[(status == _DEFERRED)] = "quiet_hours"
    nb = np.where(status == _DEFERRED, not_before, np.iinfo(np.int64).min)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "score": candidates["score"].to_numpy(dtype=np.float64),
            "holdout": holdout,
            "status": pd.Series(_STATUSES[status], dtype=object),
            "reasons": pd.Series(_reasons(gates, n), dtype=object),
            "suppressed_by": pd.Series(first, dtype=object),
            "not_before": pd.Series(nb.view("datetime64[ns]")).dt.tz_localize("UTC").array,
        }
    )
