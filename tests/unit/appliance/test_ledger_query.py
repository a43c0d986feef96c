"""Entry search over a real ledger: filters, prefix actions, time bisection, newest first, limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance.errors import LedgerQueryInvalid
from appliance.ledger_query import find_entries
from ledger import Ledger, Record
from ledger import log as ledger_log
from ledger.checkpoint import NoteSigner

ORIGIN = "appliance.example/query"
ALICE = "cust:" + "a1" * 8
BOB = "cust:" + "b2" * 8


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    Ledger.create(str(tmp_path / "l"), ORIGIN)
    # Small segments: searches cross many segment files, forwards and backwards.
    with Ledger.open(str(tmp_path / "l"), signer=NoteSigner.generate(ORIGIN), max_segment_bytes=2048) as led:
        yield led


def _fill(led: Ledger, n: int = 60) -> None:
    records = []
    for i in range(n):
        action = ("record.read", "reply.checked", "record.masked")[i % 3]
        subject = [ALICE] if i % 2 == 0 else [BOB, ALICE] if i % 5 == 0 else [BOB]
        records.append(Record("agent:1", action, subject, {"i": i}))
    for r in records:
        led.append_many([r])


def _brute(led: Ledger, pred) -> list[int]:  # type: ignore[no-untyped-def]
    return [seq for seq in range(led.size) if pred(led.entry(seq))]


def test_filters_match_a_brute_force_scan(led: Ledger) -> None:
    _fill(led)
    assert [s for s, _ in find_entries(led, subject=ALICE)] == _brute(led, lambda e: ALICE in e.subject)
    assert [s for s, _ in find_entries(led, action="record.read")] == _brute(
        led, lambda e: e.action == "record.read"
    )
    assert [s for s, _ in find_entries(led, action="record.*")] == _brute(
        led, lambda e: e.action.startswith("record.")
    )
    both = find_entries(led, subject=BOB, action="reply.checked")
    assert [s for s, _ in both] == _brute(led, lambda e: BOB in e.subject and e.action == "reply.checked")
    assert all(e.seq == s for s, e in both)
    assert len(find_entries(led)) == led.size


def test_prefix_is_on_whole_words(led: Ledger) -> None:
    led.append("agent:1", "record.read", [ALICE])
    led.append("agent:1", "records.read", [ALICE])
    assert [e.action for _, e in find_entries(led, action="record.*")] == ["record.read"]


def test_subject_matches_whole_pseudonyms_only(led: Ledger) -> None:
    longer = ALICE + "ff"
    led.append("agent:1", "record.read", [longer])
    led.append("agent:1", "record.read", [], {"note": ALICE})  # the bytes, but not as a subject
    assert find_entries(led, subject=ALICE) == []
    assert [s for s, _ in find_entries(led, subject=longer)] == [0]


def test_newest_first_and_limit(led: Ledger) -> None:
    _fill(led)
    alice = _brute(led, lambda e: ALICE in e.subject)
    assert [s for s, _ in find_entries(led, subject=ALICE, limit=5)] == alice[:5]
    assert [s for s, _ in find_entries(led, subject=ALICE, limit=5, newest_first=True)] == alice[::-1][:5]
    assert [s for s, _ in find_entries(led, newest_first=True)] == list(range(led.size))[::-1]
    assert find_entries(led, limit=0) == []


def test_time_range_bisects_to_the_right_entries(led: Ledger) -> None:
    _fill(led, 30)
    times = [led.entry(s).time for s in range(led.size)]
    assert times == sorted(times)
    cut_lo = datetime.strptime(times[10], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    cut_hi = datetime.strptime(times[20], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    got = [s for s, _ in find_entries(led, since=cut_lo, until=cut_hi)]
    assert got == [s for s in range(led.size) if times[10] <= times[s] < times[20]]
    assert 10 in got and 20 not in got
    # Naive datetimes are UTC; other zones are converted.
    naive = cut_lo.replace(tzinfo=None)
    assert find_entries(led, since=naive) == find_entries(led, since=cut_lo)
    shanghai = cut_lo.astimezone(datetime.now(UTC).astimezone().tzinfo)
    assert find_entries(led, since=shanghai) == find_entries(led, since=cut_lo)
    later = datetime.now(UTC) + timedelta(days=1)
    assert find_entries(led, since=later) == []
    assert find_entries(led, until=datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert [s for s, _ in find_entries(led, since=cut_lo, subject=ALICE, newest_first=True, limit=2)] == [
        s for s in range(led.size)[::-1] if times[s] >= times[10] and ALICE in led.entry(s).subject
    ][:2]


def test_entry_times_never_decrease_when_the_clock_steps_back(
    led: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the ledger stamped commits with the wall clock alone, so a clock stepped back
    (NTP) made times decrease along seq and a time bisection would skip entries."""
    led.append("agent:1", "record.read")
    first = led.entry(0).time
    monkeypatch.setattr(ledger_log, "utc_timestamp", lambda: "2001-01-01T00:00:00.000000Z")
    led.append("agent:1", "record.read")
    led.append_many([Record("agent:1", "record.read")])
    assert [led.entry(s).time for s in (1, 2)] == [first, first]
    since = datetime.strptime(first, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert [s for s, _ in find_entries(led, since=since)] == [0, 1, 2]


def test_another_writer_sees_the_last_time_after_reopening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "l")
    Ledger.create(path, ORIGIN)
    with Ledger.open(path) as a:
        a.append("agent:1", "record.read")
        first = a.entry(0).time
    monkeypatch.setattr(ledger_log, "utc_timestamp", lambda: "2001-01-01T00:00:00.000000Z")
    with Ledger.open(path) as b:
        b.append("agent:1", "record.read")
        assert b.entry(1).time == first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject": "alice@example.com"}, "not a pseudonym"),
        ({"action": "Record.Read"}, "dotted verb"),
        ({"action": "record"}, "dotted verb"),
        ({"action": "record.*.x"}, "dotted verb"),
        ({"action": "*"}, "dotted verb"),
        ({"since": datetime(2026, 2, 1, tzinfo=UTC), "until": datetime(2026, 1, 1, tzinfo=UTC)}, "swap"),
        ({"since": "2026-01-01"}, "date and time"),
        ({"since": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))}, "years 1000-9999"),
        ({"until": datetime(999, 12, 31)}, "years 1000-9999"),
        ({"limit": -1}, "limit"),
    ],
)
def test_unusable_filters_are_refused(led: Ledger, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LedgerQueryInvalid, match=message):
        find_entries(led, **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_subject_search_over_200k_entries_is_quick(tmp_path: Path) -> None:
    """The byte pre-filter keeps a search over a large ledger to a streaming read."""
    path = str(tmp_path / "big")
    Ledger.create(path, ORIGIN)
    with Ledger.open(path) as led:
        batch = [Record("agent:1", "record.read", [BOB], {"i": i}) for i in range(10_000)]
        for _ in range(20):
            led.append_many(batch)
        led.append("agent:1", "record.read", [ALICE])
        started = time.perf_counter()
        found = find_entries(led, subject=ALICE)
        elapsed = time.perf_counter() - started
    assert [s for s, _ in found] == [200_000]
    assert elapsed < 5.0, f"{elapsed:.2f} s"
