"""The proactive service's store on SQLite and PostgreSQL: bulk frames, consents, triggers, outbox, runs.

Every test runs on both backends through the ``store`` fixture. The bulk reads (``events_frame`` and
friends) go through ADBC: SQLite in child processes, several at once over row ranges of ``events``;
PostgreSQL in-process. The split read is forced on a small table by lowering ``_SPLIT_ROWS``.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

import appliance.store.proactive as proactive_module
from appliance.store import RecordInvalid, Store, StoreError, UnknownCustomer
from appliance.store import tables as t
from appliance.store.proactive import CONTACT_STATUSES, OutcomeConflict, UnknownTrigger

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
SHANGHAI = timezone(timedelta(hours=8))
N_EVENTS = 40
KINDS = ("login", "purchase", "search", "page_view")
CHANNELS = ("app", None, "web", "app", None)


# -- helpers ---------------------------------------------------------------------------------------------
def _customers(store: Store) -> list[int]:
    """Four customers; plain fields segment/plan/preferred_language only on some, full_name sealed."""
    return store.add_customers(
        [
            {
                "external_id": "C-1",
                "region": "CN",
                "created": T0 - timedelta(days=30),
                "full_name": "张三",
                "segment": "mass",
                "plan": "plus",
            },
            {
                "external_id": "C-2",
                "region": "US",
                "created": T0 - timedelta(days=20, microseconds=5),
                "full_name": "Jane Smith",
                "segment": "affluent",
                "preferred_language": "en",
            },
            {
                "external_id": "C-3",
                "region": "HK",
                "created": T0 - timedelta(days=10),
                "full_name": "陳大文",
                "preferred_language": "zh",
            },
            {"external_id": "C-4", "region": "GB", "created": T0 - timedelta(days=5), "full_name": "Ann Lee"},
        ]
    )


def _events(ids: list[int]) -> list[dict[str, Any]]:
    """One event an hour from T0, inserted in shuffled order so a window's rows spread over the ids."""
    rows = []
    for i in range(N_EVENTS):
        row: dict[str, Any] = {
            "customer_id": ids[i % len(ids)],
            "ts": T0 + timedelta(hours=i, microseconds=i),
            "kind": KINDS[i % len(KINDS)],
        }
        if CHANNELS[i % len(CHANNELS)] is not None:
            row["channel"] = CHANNELS[i % len(CHANNELS)]
        if i % 3:
            row["amount"] = i * 1.25
        if i % 4 == 2:
            row["text"] = f"query {i % 8}"
        rows.append(row)
    random.Random(7).shuffle(rows)
    return rows


def _expected_events(rows: list[dict[str, Any]], since: datetime, until: datetime | None) -> pd.DataFrame:
    kept = sorted(
        (r for r in rows if r["ts"] >= since and (until is None or r["ts"] < until)), key=lambda r: r["ts"]
    )
    return pd.DataFrame(
        {
            "customer_id": np.asarray([r["customer_id"] for r in kept], dtype=np.int64),
            "ts": pd.Series(pd.to_datetime([r["ts"] for r in kept], utc=True), dtype="datetime64[ns, UTC]"),
            "kind": pd.Series([r["kind"] for r in kept], dtype=object),
            "channel": pd.Series([r.get("channel") for r in kept], dtype=object),
            "amount": np.asarray([r.get("amount", np.nan) for r in kept], dtype=np.float64),
            "text": pd.Series([r.get("text") for r in kept], dtype=object),
        }
    )


EVENT_COLUMNS = ["customer_id", "ts", "kind", "channel", "amount", "text"]
CATEGORICAL = ("kind", "channel", "text")


def _check_event_dtypes(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == EVENT_COLUMNS
    assert frame["customer_id"].dtype == np.int64
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["amount"].dtype == np.float64
    for name in CATEGORICAL:
        assert isinstance(frame[name].dtype, pd.CategoricalDtype), name


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in time order, categoricals as objects with None for missing: comparable across reads."""
    out = frame.sort_values(["ts", "customer_id"], kind="stable").reset_index(drop=True)
    for name in CATEGORICAL:
        col = out[name].astype(object)
        out[name] = col.where(col.notna(), None).astype(object)
    return out


def _values(column: pd.Series) -> list[Any]:
    """A column's values with None for missing (NaN in pandas' str dtype, None in object columns)."""
    return [None if pd.isna(v) else v for v in column.tolist()]


def _trig(cid: int, status: str, **kw: Any) -> dict[str, Any]:
    """A trigger row with the columns of ``tables.triggers`` (see ``ProactiveService._trigger_rows``)."""
    row: dict[str, Any] = {
        "run_id": "run-1",
        "playbook": "pb_a",
        "customer_id": cid,
        "score": 0.5,
        "rank": 1,
        "treated": 0 if status == "holdout" else 1,
        "status": status,
        "suppressed_by": "consent" if status == "suppressed" else None,
        "reasons": {
            "gates": [{"gate": "consent", "passed": status != "suppressed", "detail": "x"}],
            "model": [],
        },
        "model_version": "m1",
        "channel": "sms",
        "created": T0,
        "not_before": None,
    }
    row.update(kw)
    return row


def _rows(store: Store, table: Any) -> dict[int, Any]:
    key = table.c.trigger_id if "trigger_id" in table.c else table.c.id
    with store.engine.connect() as conn:
        return {r._mapping[key.name]: r for r in conn.execute(select(table))}


def _counts(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    return store.proactive.trigger_counts(), store.proactive.outbox_counts()


# -- events_frame --------------------------------------------------------------------------------------
def test_events_frame_window_dtypes_and_values(store):
    ids = _customers(store)
    rows = _events(ids)
    assert store.add_events(rows) == N_EVENTS
    p = store.proactive
    since = T0 + timedelta(hours=5, microseconds=5)  # exactly event 5's time: included
    until = T0 + timedelta(hours=30, microseconds=30)  # exactly event 30's time: excluded
    frame = p.events_frame(since, until)
    _check_event_dtypes(frame)
    assert len(frame) == 25
    assert frame["ts"].min() == since
    assert frame["ts"].max() == T0 + timedelta(hours=29, microseconds=29)
    pd.testing.assert_frame_equal(_plain(frame), _expected_events(rows, since, until))
    in_window = [r for r in rows if since <= r["ts"] < until]
    assert frame["amount"].isna().sum() == sum(1 for r in in_window if "amount" not in r) > 0
    assert frame["channel"].isna().sum() == sum(1 for r in in_window if "channel" not in r) > 0
    assert frame["text"].isna().sum() == sum(1 for r in in_window if "text" not in r) > 0
    assert set(frame["text"].cat.categories) == {r["text"] for r in in_window if "text" in r}
    assert set(frame["kind"].cat.categories) == set(KINDS)
    # The same instants given in another zone make the same query; an open end reads to the last row.
    local = p._events_queries(since.astimezone(SHANGHAI), until.astimezone(SHANGHAI))
    assert [q.sql for q in local] == [q.sql for q in p._events_queries(since, until)]
    tail = p.events_frame(until)
    pd.testing.assert_frame_equal(_plain(tail), _expected_events(rows, until, None))
    assert len(tail) == N_EVENTS - 30
    with pytest.raises(StoreError, match="aware"):
        p.events_frame(datetime(2024, 5, 1), until)


def test_events_frame_of_an_empty_window_has_the_same_columns(store):
    p = store.proactive
    nothing_stored = p.events_frame(T0, T0 + timedelta(days=1))
    _check_event_dtypes(nothing_stored)
    assert nothing_stored.empty
    store.add_events(_events(_customers(store)))
    before_the_first = p.events_frame(T0 - timedelta(days=1), T0)  # until is exclusive: event 0 is at T0
    _check_event_dtypes(before_the_first)
    assert before_the_first.empty


SPLIT_WINDOWS = {
    "most": (T0 + timedelta(hours=1), T0 + timedelta(hours=39)),  # 38 of 40 rows: NOT INDEXED scan
    "few": (T0 + timedelta(hours=10), T0 + timedelta(hours=13)),  # 3 of 40: the ts index
    "none": (T0 + timedelta(days=50), T0 + timedelta(days=51)),  # every range empty
}


def _ranges(queries: list[Any]) -> list[tuple[int, int]]:
    """The [a, b) id range of each split query (``... WHERE id >= a AND id < b AND ts ...``)."""
    out = []
    for q in queries:
        a, b = q.sql.split("WHERE id >= ")[1].split(" AND ts")[0].split(" AND id < ")
        out.append((int(a), int(b)))
    return out


def _force_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read even a 40-row table in row ranges: 3 of them (min(cpu_count, _MAX_PARTS))."""
    monkeypatch.setattr(proactive_module, "_SPLIT_ROWS", 1)
    monkeypatch.setattr(proactive_module, "_MAX_PARTS", 3)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)


def test_row_range_split_plans_and_reads_the_same_rows(store, monkeypatch):
    """The split read (through ``run_frames``, which gathers every range) equals the single read."""
    ids = _customers(store)
    rows = _events(ids)
    store.add_events(rows)
    p = store.proactive
    single = p.events_frame(*SPLIT_WINDOWS["most"])
    assert len(single) == 38
    assert all(len(p._events_queries(*w)) == 1 for w in SPLIT_WINDOWS.values())
    _force_split(monkeypatch)
    queries = {name: p._events_queries(*w) for name, w in SPLIT_WINDOWS.items()}
    if store.backend == "sqlite":
        assert {name: len(q) for name, q in queries.items()} == {"most": 3, "few": 3, "none": 3}
        assert all("FROM events NOT INDEXED WHERE id >= " in q.sql for q in queries["most"])
        assert all("FROM events WHERE id >= " in q.sql for q in queries["few"])
        ranges = _ranges(queries["most"])  # they tile the ids: [1, a), [a, b), [b, 41)
        assert ranges[0][0] == 1 and ranges[-1][1] == N_EVENTS + 1
        assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
        assert all(a < b for a, b in ranges)
    else:  # PostgreSQL is read in one COPY whatever the size
        assert all(len(q) == 1 and "id >= " not in q[0].sql for q in queries.values())
    split, customers = p.run_frames(*SPLIT_WINDOWS["most"], ["segment"])
    _check_event_dtypes(split)
    pd.testing.assert_frame_equal(_plain(split), _plain(single))
    pd.testing.assert_frame_equal(_plain(split), _expected_events(rows, *SPLIT_WINDOWS["most"]))
    for col in CATEGORICAL:
        assert set(split[col].cat.categories) == set(single[col].cat.categories), col
    assert customers.index.tolist() == ids
    assert _values(customers["segment"]) == ["mass", "affluent", None, None]
    nothing, _ = p.run_frames(*SPLIT_WINDOWS["none"], [])  # every range empty
    _check_event_dtypes(nothing)
    assert nothing.empty


def test_events_frame_split_in_row_ranges_returns_every_range(store, monkeypatch):
    ids = _customers(store)
    rows = _events(ids)
    store.add_events(rows)
    _force_split(monkeypatch)
    split = store.proactive.events_frame(*SPLIT_WINDOWS["most"])
    _check_event_dtypes(split)
    pd.testing.assert_frame_equal(_plain(split), _expected_events(rows, *SPLIT_WINDOWS["most"]))


def test_split_read_of_a_window_that_leaves_a_range_empty(store, monkeypatch):
    """A recent window over an old table: some row ranges hold none of its rows (the index plan)."""
    ids = _customers(store)
    rows = _events(ids)
    store.add_events(rows)
    _force_split(monkeypatch)
    window = SPLIT_WINDOWS["few"]
    if store.backend == "sqlite":  # the precondition: a range holds none of the window's rows
        # Event ids follow insertion order, so rows[k] has id k + 1.
        wanted = {k + 1 for k, r in enumerate(rows) if window[0] <= r["ts"] < window[1]}
        ranges = _ranges(store.proactive._events_queries(*window))
        assert len(ranges) == 3 and any(not (wanted & set(range(a, b))) for a, b in ranges)
    split, _ = store.proactive.run_frames(*window, [])
    _check_event_dtypes(split)
    pd.testing.assert_frame_equal(_plain(split), _expected_events(rows, *window))
    assert len(split) == 3


# -- customers_frame and run_frames ------------------------------------------------------------------------
def test_customers_frame_pivots_plain_fields_and_run_frames_equal_the_separate_reads(store):
    ids = _customers(store)
    store.add_events(_events(ids))
    p = store.proactive
    fields = ["segment", "plan", "preferred_language", "time_zone", "full_name"]
    frame = p.customers_frame(fields)
    assert list(frame.columns) == ["region", "created", *fields]
    assert frame.index.name == "customer_id" and frame.index.tolist() == ids
    assert str(frame["created"].dtype) == "datetime64[ns, UTC]"
    assert _values(frame["segment"]) == ["mass", "affluent", None, None]
    assert _values(frame["plan"]) == ["plus", None, None, None]
    assert _values(frame["preferred_language"]) == [None, "en", "zh", None]
    assert frame["time_zone"].tolist() == [None] * 4  # nobody has one
    assert frame["full_name"].tolist() == [None] * 4  # sealed values never come out
    # No requested field has any value: the other branch of the pivot.
    bare = p.customers_frame(["time_zone"])
    assert list(bare.columns) == ["region", "created", "time_zone"]
    assert bare.index.tolist() == ids and bare["time_zone"].tolist() == [None] * 4
    for bad in ("plan'; DROP TABLE customers; --", "seg ment", ""):
        with pytest.raises(StoreError, match="not a field name"):
            p.customers_frame([bad])
    # A run's reads in one go equal the separate reads.
    since, until = T0 + timedelta(hours=3), T0 + timedelta(hours=17)
    events, customers = p.run_frames(since, until, fields)
    pd.testing.assert_frame_equal(events, p.events_frame(since, until))
    pd.testing.assert_frame_equal(customers, frame)
    assert len(events) == 14
    with pytest.raises(StoreError, match="not a field name"):
        p.run_frames(since, until, ["a-b"])


def test_customers_frame_region_and_created_belong_to_their_customer(store):
    ids = _customers(store)
    frame = store.proactive.customers_frame(["segment"])
    assert frame.index.tolist() == ids
    assert frame["region"].tolist() == ["CN", "US", "HK", "GB"]
    assert frame["created"].tolist() == [
        T0 - timedelta(days=30),
        T0 - timedelta(days=20, microseconds=5),
        T0 - timedelta(days=10),
        T0 - timedelta(days=5),
    ]
    assert _values(frame["segment"]) == ["mass", "affluent", None, None]


# -- consents ------------------------------------------------------------------------------------------------
def test_consents_are_all_or_nothing_and_the_frames_agree(store):
    c1, c2, c3, c4 = _customers(store)
    p = store.proactive
    good = {"customer_id": c1, "channel": "sms", "status": "opt_in", "ts": T0, "source": "crm"}
    bad_rows = [
        ({**good, "channel": "fax"}, "channel"),
        ({**good, "status": "maybe"}, "status"),
        ({**good, "ts": datetime(2024, 5, 1)}, "ts"),
        ({**good, "ts": "2024-05-01T00:00:00Z"}, "ts"),
        ({**good, "customer_id": "1"}, "customer_id"),
        ({**good, "customer_id": True}, "customer_id"),
        ({**good, "customer_id": 0}, "customer_id"),
    ]
    for bad, field in bad_rows:
        with pytest.raises(RecordInvalid) as err:
            p.add_consents([good, bad])
        assert (err.value.index, err.value.field) == (1, field)
    with pytest.raises(UnknownCustomer) as unknown:
        p.add_consents([good, {**good, "customer_id": 999_999}])
    assert unknown.value.ref == 999_999
    with pytest.raises(RecordInvalid, match="sms"):
        p.add_consents([{**good, "channel": "email"}], channels=("sms",))
    assert p.consents_frame().empty and p.consents_for(c1) == []

    rows = [
        good,
        {**good, "status": "opt_out", "ts": T0 + timedelta(days=1), "source": "app"},
        {"customer_id": c1, "channel": "email", "status": "opt_in", "ts": T0 + timedelta(hours=2)},
        {"customer_id": c2, "channel": "phone", "status": "opt_in", "ts": T0 + timedelta(microseconds=7)},
        {
            "customer_id": c4,
            "channel": "wechat",
            "status": "opt_out",
            "ts": T0.astimezone(SHANGHAI),
            "source": "s",
        },
    ]
    assert p.add_consents(iter(rows)) == 5 and p.add_consents([]) == 0
    frame = p.consents_frame()
    assert list(frame.columns) == ["customer_id", "channel", "status", "ts"]
    assert frame["customer_id"].dtype == np.int64 and str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["channel"].dtype == object and frame["status"].dtype == object
    got = sorted(zip(frame["customer_id"], frame["channel"], frame["status"], frame["ts"], strict=True))
    want = sorted((r["customer_id"], r["channel"], r["status"], r["ts"]) for r in rows)
    assert got == want

    def norm(f: pd.DataFrame) -> pd.DataFrame:
        return f.sort_values(["customer_id", "ts", "channel"]).reset_index(drop=True)

    for some in ([c1, c3], [c2, c4, c1], [c3]):
        gate_consents, _ = p.gate_frames(np.asarray(some), history_since=T0, holdout_of="pb_a")
        pd.testing.assert_frame_equal(norm(gate_consents), norm(frame[frame["customer_id"].isin(some)]))
    assert p.consents_for(c1) == [
        {"channel": "sms", "status": "opt_in", "ts": "2024-05-01T08:00:00Z", "source": "crm"},
        {"channel": "sms", "status": "opt_out", "ts": "2024-05-02T08:00:00Z", "source": "app"},
        {"channel": "email", "status": "opt_in", "ts": "2024-05-01T10:00:00Z", "source": "api"},
    ]
    assert p.consents_for(c3) == []
    assert p.consents_for(c4)[0]["ts"] == "2024-05-01T08:00:00Z"  # stored in UTC
    with pytest.raises(UnknownCustomer):
        p.consents_for(999_999)


# -- suppressions --------------------------------------------------------------------------------------------
def test_suppressions(store):
    c1, c2, _, _ = _customers(store)
    p = store.proactive
    assert p.suppressions().empty and list(p.suppressions().columns) == ["customer_id", "reason"]
    assert p.suppress(c2, "  complaint in progress ", "ops:ann") is True
    assert p.suppress(c2, "another reason", "ops:bob") is False
    assert p.suppress(c1, "staff", "ops:ann") is True
    with pytest.raises(RecordInvalid, match="reason"):
        p.suppress(c1, "   ", "ops:ann")
    with pytest.raises(UnknownCustomer):
        p.suppress(999_999, "x", "ops:ann")
    frame = p.suppressions()
    assert frame["customer_id"].dtype == np.int64
    assert frame["customer_id"].tolist() == [c1, c2]
    assert frame["reason"].tolist() == ["staff", "complaint in progress"]  # the first reason is kept
    assert p.unsuppress(c2) is True and p.unsuppress(c2) is False and p.unsuppress(999_999) is False
    assert p.suppressions()["customer_id"].tolist() == [c1]
    assert p.suppress(c2, "back again", "ops:ann") is True
    assert p.suppressions()["reason"].tolist() == ["staff", "back again"]


# -- triggers ------------------------------------------------------------------------------------------------
def test_insert_triggers_with_and_without_bodies(store):
    c1, c2, c3, c4 = _customers(store)
    p = store.proactive
    assert p.insert_triggers([]) == []
    nb = T0 + timedelta(hours=9)
    plain = [
        _trig(c1, "pending", rank=1),
        _trig(c2, "holdout", rank=2),
        _trig(c3, "suppressed", rank=3),
        _trig(c4, "deferred", rank=4, not_before=nb),
    ]
    ids = p.insert_triggers(plain)
    assert len(ids) == 4 and ids == sorted(ids)
    assert _counts(store) == ({"pending": 1, "holdout": 1, "suppressed": 1, "deferred": 1}, {})

    got = p.get_trigger(ids[3])
    assert (got.customer_id, got.status, got.rank, got.treated, got.not_before) == (
        c4,
        "deferred",
        4,
        True,
        nb,
    )
    assert got.created == T0 and got.updated.tzinfo is not None and got.outcome is None
    assert got.reasons == plain[3]["reasons"] and got.model_version == "m1" and got.channel == "sms"
    held = p.get_trigger(ids[1])
    assert held.treated is False and held.as_dict()["group"] == "holdout"
    assert held.as_dict()["created"] == "2024-05-01T08:00:00Z"
    assert p.get_trigger(ids[2]).suppressed_by == "consent"
    with pytest.raises(UnknownTrigger):
        p.get_trigger(ids[-1] + 1000)

    calls: list[tuple[int, int]] = []

    def bodies(tid: int, row: Any) -> str:
        calls.append((tid, row["customer_id"]))
        return f'{{"trigger": {tid}, "customer": {row["customer_id"]}}}'

    batch = [
        _trig(c1, "pending", run_id="run-2"),
        _trig(c2, "holdout", run_id="run-2"),
        _trig(c3, "pending", run_id="run-2"),
        _trig(c4, "suppressed", run_id="run-2"),
    ]
    ids2 = p.insert_triggers(batch, bodies)
    assert calls == [(ids2[0], c1), (ids2[2], c3)]  # pending rows only
    outbox = _rows(store, t.outbox)
    assert sorted(outbox) == [ids2[0], ids2[2]]
    assert outbox[ids2[2]].body == f'{{"trigger": {ids2[2]}, "customer": {c3}}}'
    assert (outbox[ids2[0]].status, outbox[ids2[0]].attempts) == ("pending", 0)
    # Only holdout/suppressed rows with bodies: no outbox rows, no calls.
    calls.clear()
    p.insert_triggers([_trig(c2, "holdout", run_id="run-3")], bodies)
    assert calls == [] and p.outbox_counts() == {"pending": 2}


def test_insert_triggers_is_one_transaction(store):
    c1, c2, c3, _ = _customers(store)
    p = store.proactive
    p.insert_triggers([_trig(c1, "pending", run_id="run-0")], lambda tid, row: "b")
    before = _counts(store)

    def bodies(tid: int, row: Any) -> str:
        if row["customer_id"] == c2:
            raise RuntimeError("the body builder broke")
        return "b"

    rows = [_trig(c1, "pending"), _trig(c2, "pending"), _trig(c3, "pending")]
    with pytest.raises(RuntimeError, match="broke"):
        p.insert_triggers(rows, bodies)
    assert _counts(store) == before
    assert p.list_triggers(run_id="run-1") == []
    # A row the table refuses (unknown status; unknown customer) also writes nothing.
    with pytest.raises(StoreError, match="conflicts"):
        p.insert_triggers([_trig(c1, "pending"), _trig(c2, "lost")], lambda tid, row: "b")
    with pytest.raises(StoreError, match="conflicts"):
        p.insert_triggers([_trig(c1, "pending"), _trig(999_999, "pending")], lambda tid, row: "b")
    assert _counts(store) == before and len(_rows(store, t.outbox)) == 1


def test_list_triggers_filters_and_counts(store):
    c1, c2, c3, c4 = _customers(store)
    p = store.proactive
    ids = p.insert_triggers(
        [
            _trig(c1, "pending"),
            _trig(c2, "holdout"),
            _trig(c3, "pending", playbook="pb_b", run_id="run-2"),
            _trig(c4, "suppressed", playbook="pb_b", run_id="run-2"),
            _trig(c1, "pending", playbook="pb_b", run_id="run-3"),
        ]
    )

    def listed(**kw: Any) -> list[int]:
        return [r.id for r in p.list_triggers(**kw)]

    assert listed() == ids
    assert listed(status="pending") == [ids[0], ids[2], ids[4]]
    assert listed(playbook="pb_b") == ids[2:]
    assert listed(run_id="run-2") == ids[2:4]
    assert listed(status="pending", playbook="pb_b") == [ids[2], ids[4]]
    assert listed(status="pending", playbook="pb_b", run_id="run-3") == [ids[4]]
    assert listed(after_id=ids[1]) == ids[2:]
    assert listed(after_id=ids[1], limit=2) == ids[2:4]
    assert listed(limit=1) == ids[:1]
    assert listed(status="closed") == [] and listed(run_id="nope") == []
    assert p.trigger_counts() == {"pending": 3, "holdout": 1, "suppressed": 1}


def test_set_outcome(store):
    c1, c2, c3, c4 = _customers(store)
    p = store.proactive
    treated, holdout, suppressed, deferred, delivered = p.insert_triggers(
        [
            _trig(c1, "pending"),
            _trig(c2, "holdout"),
            _trig(c3, "suppressed"),
            _trig(c4, "deferred", not_before=T0 + timedelta(hours=8)),
            _trig(c4, "delivered", run_id="run-2"),
        ]
    )
    ts1, ts2 = T0 + timedelta(days=1), T0 + timedelta(days=2, microseconds=3)
    # contacted is not final: the treated trigger stays pending, and converted may follow.
    row = p.set_outcome(treated, "contacted", ts1)
    assert (row.outcome, row.outcome_ts, row.status, row.updated) == ("contacted", ts1, "pending", ts1)
    row = p.set_outcome(treated, "converted", ts2)
    assert (row.outcome, row.outcome_ts, row.status) == ("converted", ts2, "closed")
    for again in ("declined", "contacted", "converted"):
        with pytest.raises(OutcomeConflict, match="final outcome 'converted'"):
            p.set_outcome(treated, again, ts2)
    assert p.get_trigger(treated).outcome == "converted"
    # The control group: never 'contacted', but its conversions are recorded (and it stays holdout).
    with pytest.raises(OutcomeConflict, match="holdout"):
        p.set_outcome(holdout, "contacted", ts1)
    row = p.set_outcome(holdout, "converted", ts1)
    assert (row.outcome, row.status, row.treated) == ("converted", "holdout", False)
    with pytest.raises(OutcomeConflict):
        p.set_outcome(holdout, "declined", ts2)
    for never_raised in (suppressed, deferred):
        with pytest.raises(OutcomeConflict, match="not raised"):
            p.set_outcome(never_raised, "converted", ts1)
    assert p.set_outcome(delivered, "declined", ts1).status == "closed"
    with pytest.raises(UnknownTrigger):
        p.set_outcome(delivered + 1000, "converted", ts1)
    assert p.trigger_counts() == {"closed": 2, "holdout": 1, "suppressed": 1, "deferred": 1}


def test_an_unknown_outcome_is_refused_and_changes_nothing(store):
    c1, *_ = _customers(store)
    p = store.proactive
    (tid,) = p.insert_triggers([_trig(c1, "delivered")])
    before = p.get_trigger(tid)
    with pytest.raises(StoreError):
        p.set_outcome(tid, "bogus", T0 + timedelta(days=1))
    assert p.get_trigger(tid) == before


def test_outcomes_frame(store):
    c1, c2, c3, c4 = _customers(store)
    p = store.proactive
    statuses = ["pending", "delivered", "failed", "holdout", "closed", "suppressed", "deferred"]
    rows = [
        _trig([c1, c2, c3, c4][i % 4], s, created=T0 + timedelta(hours=i)) for i, s in enumerate(statuses)
    ]
    rows += [_trig(c1, "pending", playbook="pb_b"), _trig(c2, "holdout", playbook="pb_b")]
    for r in rows:  # insert_triggers takes rows with one set of keys (one executemany)
        r["outcome"], r["outcome_ts"] = None, None
    rows[4]["outcome"], rows[4]["outcome_ts"] = "converted", T0 + timedelta(days=1)
    p.insert_triggers(rows)
    p.set_outcome(
        p.list_triggers(status="holdout", playbook="pb_a")[0].id, "declined", T0 + timedelta(days=1)
    )
    frame = p.outcomes_frame()
    assert list(frame.columns) == ["playbook", "status", "outcome", "customer_id", "created"]
    assert frame["customer_id"].dtype == np.int64 and str(frame["created"].dtype) == "datetime64[ns, UTC]"
    got = sorted(
        zip(
            frame["playbook"],
            frame["status"],
            frame["outcome"].fillna("-"),
            frame["customer_id"],
            frame["created"],
            strict=True,
        )
    )
    want = sorted(
        [
            ("pb_a", "raised", "-", c1, T0),
            ("pb_a", "raised", "-", c2, T0 + timedelta(hours=1)),
            ("pb_a", "raised", "-", c3, T0 + timedelta(hours=2)),
            ("pb_a", "holdout", "declined", c4, T0 + timedelta(hours=3)),
            ("pb_a", "raised", "converted", c1, T0 + timedelta(hours=4)),
            ("pb_b", "raised", "-", c1, T0),
            ("pb_b", "holdout", "-", c2, T0),
        ]
    )
    assert got == want
    only_b = p.outcomes_frame("pb_b")
    assert sorted(only_b["status"]) == ["holdout", "raised"] and set(only_b["playbook"]) == {"pb_b"}
    none = p.outcomes_frame("pb_none")
    assert none.empty and list(none.columns) == list(frame.columns)


def test_release_deferred(store):
    c1, c2, c3, c4 = _customers(store)
    p = store.proactive
    now = T0 + timedelta(hours=9)
    early, exact, late, other = p.insert_triggers(
        [
            _trig(c1, "deferred", not_before=now - timedelta(minutes=5)),
            _trig(c2, "deferred", not_before=now),
            _trig(c3, "deferred", not_before=now + timedelta(microseconds=1)),
            _trig(c4, "pending", not_before=now - timedelta(hours=1)),
        ]
    )
    seen: list[tuple[int, str]] = []

    def bodies(tid: int, row: Any) -> str:
        seen.append((tid, row["playbook"]))
        return f"released {tid}"

    assert sorted(p.release_deferred(now, bodies)) == [early, exact]
    assert sorted(seen) == [(early, "pb_a"), (exact, "pb_a")]
    assert [p.get_trigger(i).status for i in (early, exact, late, other)] == [
        "pending",
        "pending",
        "deferred",
        "pending",
    ]
    assert p.get_trigger(early).updated == now
    outbox = _rows(store, t.outbox)
    assert sorted(outbox) == [early, exact] and outbox[exact].body == f"released {exact}"
    assert outbox[early].next_attempt == now and outbox[early].status == "pending"
    assert p.release_deferred(now, bodies) == []  # nothing twice
    # Without bodies (pull delivery): released, but no outbox row.
    assert p.release_deferred(now + timedelta(seconds=1)) == [late]
    assert p.get_trigger(late).status == "pending" and late not in _rows(store, t.outbox)


def test_delete_run_takes_back_triggers_and_their_outbox_rows(store):
    c1, c2, c3, _ = _customers(store)
    p = store.proactive
    kept = p.insert_triggers([_trig(c1, "pending", run_id="keep")], lambda tid, row: "k")
    gone = p.insert_triggers(
        [
            _trig(c1, "pending", run_id="gone"),
            _trig(c2, "holdout", run_id="gone"),
            _trig(c3, "pending", run_id="gone"),
        ],
        lambda tid, row: "g",
    )
    assert p.outbox_counts() == {"pending": 3}
    assert p.delete_run("gone") == 3
    assert [r.id for r in p.list_triggers()] == kept
    assert sorted(_rows(store, t.outbox)) == kept
    for tid in gone:
        with pytest.raises(UnknownTrigger):
            p.get_trigger(tid)
    assert p.delete_run("gone") == 0 and p.delete_run("never") == 0
    assert p.trigger_counts() == {"pending": 1}


def test_contact_history_counts_treated_contacts_and_one_playbooks_holdout(store):
    c1, c2, c3, c4 = _customers(store)
    p = store.proactive
    since = T0 + timedelta(days=1)
    rows = []
    for i, status in enumerate(
        ["pending", "delivered", "closed", "failed", "deferred", "suppressed", "holdout"]
    ):
        for playbook in ("pb_a", "pb_b"):
            for created in (since - timedelta(microseconds=1), since, since + timedelta(hours=i)):
                cid = [c1, c2, c3, c4][(i + len(rows)) % 4]
                rows.append(_trig(cid, status, playbook=playbook, created=created))
    p.insert_triggers(rows)

    def want(holdout_of: str | None) -> list[tuple[int, str, datetime, bool]]:
        return sorted(
            (r["customer_id"], r["playbook"], r["created"], bool(r["treated"]))
            for r in rows
            if r["created"] >= since
            and (
                (r["treated"] == 1 and r["status"] in CONTACT_STATUSES)
                or (holdout_of is not None and r["status"] == "holdout" and r["playbook"] == holdout_of)
            )
        )

    def as_tuples(f: pd.DataFrame) -> list[tuple[int, str, datetime, bool]]:
        return sorted(zip(f["customer_id"], f["playbook"], f["ts"], f["treated"], strict=True))

    def norm(f: pd.DataFrame) -> pd.DataFrame:
        return f.sort_values(["customer_id", "ts", "playbook", "treated"]).reset_index(drop=True)

    plain = p.contact_history_frame(since)
    assert list(plain.columns) == ["customer_id", "playbook", "ts", "treated"]
    assert plain["customer_id"].dtype == np.int64 and plain["treated"].dtype == bool
    assert str(plain["ts"].dtype) == "datetime64[ns, UTC]" and plain["playbook"].dtype == object
    assert as_tuples(plain) == want(None) and plain["treated"].all()
    with_a = p.contact_history_frame(since, holdout_of="pb_a")
    assert as_tuples(with_a) == want("pb_a")
    held = with_a[~with_a["treated"]]
    assert len(held) == 2 and set(held["playbook"]) == {"pb_a"}
    for some in ([c1, c3], [c2, c4], [c1, c2, c3, c4]):
        _, history = p.gate_frames(some, history_since=since, holdout_of="pb_a")
        pd.testing.assert_frame_equal(norm(history), norm(with_a[with_a["customer_id"].isin(some)]))
    for bad in ("pb-a", "pb_a' OR '1'='1"):
        with pytest.raises(StoreError, match="not a playbook name"):
            p.contact_history_frame(since, holdout_of=bad)
        with pytest.raises(StoreError, match="not a playbook name"):
            p.gate_frames([c1], history_since=since, holdout_of=bad)
    none_c, none_h = p.gate_frames([], history_since=since, holdout_of="pb_a")
    assert none_c.empty and none_h.empty and list(none_h.columns) == list(plain.columns)


# -- outbox ------------------------------------------------------------------------------------------------
def test_outbox_delivery_round_and_requeue(store):
    c1, c2, c3, c4 = _customers(store)
    p = store.proactive
    a, b, c, d = p.insert_triggers(
        [_trig(c1, "pending"), _trig(c2, "pending"), _trig(c3, "pending"), _trig(c4, "pending")],
        lambda tid, row: f"body {tid}",
    )
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert p.due_outbox(now - timedelta(hours=1), 10) == []
    assert p.due_outbox(now, 10) == [
        (a, 0, f"body {a}"),
        (b, 0, f"body {b}"),
        (c, 0, f"body {c}"),
        (d, 0, f"body {d}"),
    ]
    assert p.due_outbox(now, 2) == [(a, 0, f"body {a}"), (b, 0, f"body {b}")]
    later = now + timedelta(minutes=5)
    p.outbox_results([a], [(b, 1, later, "HTTP 503 " + "x" * 600)], [(c, 3, "HTTP 400 bad request")], now)
    box = _rows(store, t.outbox)
    assert (box[a].status, box[a].attempts, box[a].delivered, box[a].last_error) == (
        "delivered",
        1,
        now,
        None,
    )
    assert (box[b].status, box[b].attempts, box[b].next_attempt) == ("pending", 1, later)
    assert box[b].last_error.startswith("HTTP 503") and len(box[b].last_error) == 512
    assert (box[c].status, box[c].attempts, box[c].last_error) == ("failed", 3, "HTTP 400 bad request")
    assert (box[d].status, box[d].attempts) == ("pending", 0)
    assert [p.get_trigger(i).status for i in (a, b, c, d)] == ["delivered", "pending", "failed", "pending"]
    assert p.get_trigger(a).updated == now
    assert p.outbox_counts() == {"delivered": 1, "pending": 2, "failed": 1}
    assert [r[0] for r in p.due_outbox(now, 10)] == [d]  # b waits for its next attempt
    assert p.due_outbox(later, 10) == [(d, 0, f"body {d}"), (b, 1, f"body {b}")]  # oldest first
    # A trigger closed by an outcome before delivery keeps its status when the delivery lands.
    p.set_outcome(d, "converted", now)
    p.outbox_results([d], [], [], later)
    assert p.get_trigger(d).status == "closed" and _rows(store, t.outbox)[d].status == "delivered"

    again = later + timedelta(minutes=1)
    assert p.requeue_failed(again) == 1
    box = _rows(store, t.outbox)
    assert (box[c].status, box[c].attempts, box[c].next_attempt) == ("pending", 0, again)
    assert p.get_trigger(c).status == "pending" and p.get_trigger(c).updated == again
    assert p.requeue_failed(again) == 0
    assert p.outbox_counts() == {"delivered": 2, "pending": 2}
    assert p.trigger_counts() == {"delivered": 1, "pending": 2, "closed": 1}


# -- job runs ----------------------------------------------------------------------------------------------
def test_job_runs_start_finish_and_list(store):
    p = store.proactive
    assert p.job_runs() == []
    first = p.start_run("playbook.pb_a", "schedule")
    time.sleep(0.03)
    p.finish_run(first, "succeeded", detail={"raised": 3, "nested": {"a": [1, 2]}})
    second = p.start_run("playbook.pb_a", "manual")
    p.finish_run(second, "failed", error="Traceback: boom")
    other = p.start_run("outbox.deliver", "schedule")
    running = p.start_run("playbook.pb_a", "schedule")
    runs = p.job_runs("playbook.pb_a")
    assert [r["id"] for r in runs] == [running, second, first]  # newest first
    assert [r["status"] for r in runs] == ["running", "failed", "succeeded"]
    done = runs[2]
    assert done["trigger"] == "schedule" and done["detail"] == {"raised": 3, "nested": {"a": [1, 2]}}
    assert done["error"] is None and 30 <= done["duration_ms"] < 60_000
    assert done["started"].endswith("Z") and done["finished"].endswith("Z")
    started = datetime.fromisoformat(done["started"])
    finished = datetime.fromisoformat(done["finished"])
    assert started < finished and abs((finished - started).total_seconds() * 1000 - done["duration_ms"]) <= 1
    assert (runs[1]["error"], runs[1]["detail"], runs[1]["trigger"]) == ("Traceback: boom", None, "manual")
    assert (runs[0]["finished"], runs[0]["duration_ms"]) == (None, None)
    assert [r["id"] for r in p.job_runs("playbook.pb_a", limit=2)] == [running, second]
    assert [r["id"] for r in p.job_runs()] == [running, other, second, first]
    assert [r["id"] for r in p.job_runs(limit=1)] == [running]
    assert p.job_runs("nothing") == []


def test_prune_runs_keeps_the_newest_and_every_running_run(store):
    p = store.proactive
    job, other = "playbook.pb_a", "outbox.deliver"
    ids = []
    for i in range(7):
        ids.append(p.start_run(job, "schedule"))
        if i != 1:  # the second run never finished (a crashed worker): it is never pruned
            p.finish_run(ids[-1], "succeeded" if i % 2 else "skipped", detail={"i": i})
        p.finish_run(p.start_run(other, "schedule"), "succeeded")
    assert p.prune_runs(job, 10) == 0
    assert p.prune_runs(job, 3) == 3  # runs 0, 2, 3 go; 1 is running; 4, 5, 6 are the newest three
    assert [r["id"] for r in p.job_runs(job)] == [ids[6], ids[5], ids[4], ids[1]]
    assert len(p.job_runs(other)) == 7
    assert p.prune_runs(job, 3) == 0
    assert p.prune_runs(job, 0) == 3
    assert [r["id"] for r in p.job_runs(job)] == [ids[1]]
    assert p.prune_runs("nothing", 0) == 0
    assert len(p.job_runs(other)) == 7


def test_finish_run_of_an_unknown_run_is_a_store_error(store):
    p = store.proactive
    run = p.start_run("playbook.pb_a", "manual")
    with pytest.raises(StoreError):
        p.finish_run(run + 1000, "succeeded")
    assert [r["status"] for r in p.job_runs()] == ["running"]
