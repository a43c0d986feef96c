"""Finding ledger entries by subject, action and time, fast enough for a ledger of millions.

The ledger is append-only and has no secondary index, so a search reads the stored entries, but it
looks at bytes before parsing anything: entries are canonical JSON, so a pseudonym appears in an
entry only as the exact bytes ``"kind:hex"`` and an action only as ``"action":"a.b"``. A search for a
subject or an action runs ``bytes.find`` over each segment file and maps each hit to its entry
through ``index.bin`` (the documented on-disk layout, docs/ledger.md); only those entries are
checked (frame CRC), parsed and matched exactly. A time range does not scan at all: entry times
never decrease along ``seq`` (the ledger stamps each commit with at least the previous entry's
time), so both ends are found by bisection.

Times are compared as the ledger writes them (``2026-01-31T09:00:00.123456Z``: fixed width, so
text order is time order). ``since`` is inclusive and ``until`` exclusive, as ranges usually are.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from appliance.errors import LedgerQueryInvalid
from ledger import Ledger
from ledger.entry import Entry, canonical_json, parse_entry, utc_timestamp
from ledger.errors import LedgerCorrupt
from ledger.segment import FRAME_HEADER, parse_segment_name, segment_name

__all__ = ["EntryFilter", "find_entries"]

_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
_PSEUDONYM = re.compile(r"[a-z][a-z0-9_]{0,31}:[0-9a-f]{16,64}")
_U64 = struct.Struct(">Q")
_FRAME = struct.Struct(">II")


@dataclass(frozen=True)
class EntryFilter:
    """A checked search: what the bytes of a matching entry must contain, and the exact test."""

    subject: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." when ``prefix``
    prefix: bool = False
    since: str | None = None  # ledger time text, inclusive
    until: str | None = None  # exclusive

    @classmethod
    def build(
        cls,
        subject: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> EntryFilter:
        """Check the filters; :class:`LedgerQueryInvalid` says which one is unusable and why."""
        if subject is not None and not _PSEUDONYM.fullmatch(subject):
            raise LedgerQueryInvalid(
                f"subject {subject!r} is not a pseudonym ('kind:hex', e.g. 'cust:9f2c1a0b3d4e5f60'); "
                "the ledger holds pseudonyms only (`appliance subject show ID` gives one)"
            )
        prefix = False
        if action is not None:
            stem = action[:-2] if action.endswith(".*") else action
            prefix = stem != action
            if not _ACTION.fullmatch(stem) or len(stem) > 64 or (not prefix and "." not in stem):
                raise LedgerQueryInvalid(
                    f"action {action!r} must be a dotted verb such as 'record.read', or a prefix "
                    "such as 'record.*' or 'ledger.anchor.*'"
                )
            action = stem + "." if prefix else stem
        lo = _stamp(since, "since") if since is not None else None
        hi = _stamp(until, "until") if until is not None else None
        if lo is not None and hi is not None and hi < lo:
            raise LedgerQueryInvalid(f"the time range ends ({hi}) before it starts ({lo}); swap them")
        return cls(subject, action, prefix, lo, hi)

    @property
    def empty(self) -> bool:
        return self.subject is None and self.action is None and self.since is None and self.until is None

    def needles(self) -> list[bytes]:
        """Byte strings every matching entry contains (canonical JSON: no spaces, keys sorted)."""
        out = []
        if self.subject is not None:
            out.append(canonical_json(self.subject))
        if self.action is not None:
            value = canonical_json(self.action)
            out.append(b'"action":' + (value[:-1] if self.prefix else value))
        return out

    def matches(self, entry: Entry) -> bool:
        if self.subject is not None and self.subject not in entry.subject:
            return False
        if self.action is not None:
            if self.prefix and not entry.action.startswith(self.action):
                return False
            if not self.prefix and entry.action != self.action:
                return False
        if self.since is not None and entry.time < self.since:
            return False
        return self.until is None or entry.time < self.until


def _stamp(moment: datetime, name: str) -> str:
    if not isinstance(moment, datetime):
        raise LedgerQueryInvalid(f"{name} must be a date and time, not {type(moment).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # naive times are read as UTC, like the ledger's own
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):  # 0001-01-01T00:00+01:00 has no UTC time
        utc = None
    if utc is None or not 1000 <= utc.year <= 9999:
        raise LedgerQueryInvalid(f"{name} {moment.isoformat()} is outside the years 1000-9999")
    return utc_timestamp(utc)


def _time_of(ledger: Ledger, seq: int) -> str:
    return parse_entry(ledger.raw_entry(seq)).time


def _first_at_or_after(ledger: Ledger, stamp: str, lo: int, hi: int) -> int:
    """The first seq in ``[lo, hi)`` whose time is not before ``stamp`` (``hi`` if none)."""
    return bisect.bisect_left(range(hi), stamp, lo, hi, key=lambda seq: _time_of(ledger, seq))


def _segments(ledger: Ledger, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """``(segment's first seq, a, b)``: ``[lo, hi)`` cut at segment boundaries."""
    firsts = sorted(
        f
        for f in (parse_segment_name(n) for n in os.listdir(os.path.join(ledger.path, "segments")))
        if f is not None and f < hi
    )
    out = []
    for i, first in enumerate(firsts):
        a, b = max(lo, first), min(hi, firsts[i + 1] if i + 1 < len(firsts) else hi)
        if a < b:
            out.append((first, a, b))
    return out


def _all_in(ledger: Ledger, flt: EntryFilter, a: int, b: int, backwards: bool) -> Iterator[tuple[int, Entry]]:
    """Every entry of ``[a, b)`` that matches: streamed forwards, read one by one backwards (so "the
    latest 50" reads 50 entries, not a segment)."""
    if backwards:
        pairs: Iterator[tuple[int, bytes]] = ((seq, ledger.raw_entry(seq)) for seq in range(b - 1, a - 1, -1))
    else:
        pairs = ledger.iter_raw(a, b)
    for seq, raw in pairs:
        entry = parse_entry(raw)
        if flt.matches(entry):
            yield seq, entry


def _search(
    ledger: Ledger, flt: EntryFilter, first: int, a: int, b: int, backwards: bool
) -> Iterator[tuple[int, Entry]]:
    """Entries of ``[a, b)`` (one segment) holding every needle, found by searching the segment's bytes.

    A hit is mapped to its entry through ``index.bin`` (the offset of each entry in its segment); the
    entry's frame is then checked (length, CRC) and the entry parsed and matched exactly, so a hit in
    a frame header or in another field can never count.
    """
    key, *rest = flt.needles()
    with open(os.path.join(ledger.path, "index.bin"), "rb") as fh:
        fh.seek(a * 8)
        index = fh.read((b - a) * 8)
    offsets = [o for (o,) in _U64.iter_unpack(index)]
    if len(offsets) != b - a:
        raise LedgerCorrupt(
            f"index.bin lacks the offsets of entries {a}..{b - 1}; run `appliance ledger verify`"
        )
    with open(os.path.join(ledger.path, "segments", segment_name(first)), "rb") as fh:
        data = fh.read()
    hits: list[int] = []  # indexes into offsets of entries whose bytes hold the key
    last = len(offsets) - 1
    pos = data.find(key, offsets[0])
    while pos >= 0:
        i = bisect.bisect_right(offsets, pos) - 1
        hits.append(i)
        if i == last:
            break
        pos = data.find(key, offsets[i + 1])
    for i in reversed(hits) if backwards else hits:
        off = offsets[i]
        length, checksum = _FRAME.unpack_from(data, off)
        payload = data[off + FRAME_HEADER : off + FRAME_HEADER + length]
        if len(payload) != length or zlib.crc32(payload) != checksum:
            raise LedgerCorrupt(f"entry {a + i}: its frame in {segment_name(first)} is damaged")
        if key in payload and all(n in payload for n in rest):
            entry = parse_entry(payload)
            if flt.matches(entry):
                yield a + i, entry


def _scan(ledger: Ledger, flt: EntryFilter, lo: int, hi: int, backwards: bool) -> Iterator[tuple[int, Entry]]:
    segments = _segments(ledger, lo, hi)
    for first, a, b in reversed(segments) if backwards else segments:
        if flt.subject is None and flt.action is None:
            yield from _all_in(ledger, flt, a, b, backwards)
        else:
            yield from _search(ledger, flt, first, a, b, backwards)


def find_entries(
    ledger: Ledger,
    *,
    subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[tuple[int, Entry]]:
    """Entries matching every filter given, as ``(seq, entry)``, oldest first unless ``newest_first``.

    ``action`` ending in ``.*`` matches that prefix (``record.*``); ``subject`` is a pseudonym;
    ``since`` (inclusive) and ``until`` (exclusive) bound the entry time; naive datetimes are UTC.
    With no filter, every entry matches. ``limit`` stops the search early (with ``newest_first``,
    the search runs from the end of the log, so "the latest 50" reads only what it needs).
    Raises :class:`LedgerQueryInvalid` for an unusable filter or limit.
    """
    if limit is not None and (type(limit) is not int or limit < 0):
        raise LedgerQueryInvalid(f"limit {limit!r} must be a whole number of 0 or more")
    flt = EntryFilter.build(subject, action, since, until)
    size = ledger.refresh()
    lo, hi = 0, size
    if flt.since is not None:
        lo = _first_at_or_after(ledger, flt.since, 0, size)
    if flt.until is not None:
        hi = _first_at_or_after(ledger, flt.until, lo, size)
    if limit == 0 or lo >= hi:
        return []
    return list(itertools.islice(_scan(ledger, flt, lo, hi, newest_first), limit))
