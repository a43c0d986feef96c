"""The store on SQLite and PostgreSQL: sealed fields at rest, all-or-nothing writes, rotation, migrations."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, delete, event, func, insert, select, text, update

from appliance.store import FieldKeyError, RecordInvalid, Store, StoreError, UnknownCustomer
from appliance.store import tables as t
from appliance.store.store import VERSION_TABLE

ZHANG = {
    "external_id": "CN-0001",
    "region": "CN",
    "full_name": "张三",
    "mobile": "13800138000",
    "cn_resident_id": "11010519491231002X",
    "date_of_birth": "1949-12-31",
    "segment": "mass",
    "marketing_consent": True,
    "notes": "客户说卡号 6222 0212 3456 7890 被扣费",
}
SMITH = {
    "external_id": "US-0001",
    "region": "US",
    "full_name": "Jane Smith",
    "us_ssn": "219-09-9998",
    "email": "jane@example.com",
    "preferred_language": "en",
}
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def _raw(store: Store):
    """A second, plain engine on the same database: what an attacker with a dump would see."""
    return create_engine(store._engine.url)


def test_customers_round_trip_and_sensitive_values_are_sealed_at_rest(store):
    ids = store.add_customers([ZHANG, SMITH])
    got = store.get_customer(ids[0])
    assert got["full_name"] == "张三" and got["mobile"] == "13800138000"
    assert got["date_of_birth"] == date(1949, 12, 31) and got["marketing_consent"] is True
    assert got["region"] == "CN" and got["created"].tzinfo is not None
    assert store.find_customer_by_external_id("US-0001")["us_ssn"] == "219-09-9998"
    assert store.find_customer_by_external_id("nobody") is None
    assert [c["external_id"] for c in store.list_customers(limit=10)] == ["CN-0001", "US-0001"]
    assert [c["external_id"] for c in store.list_customers(after_id=ids[0])] == ["US-0001"]
    engine = _raw(store)
    try:
        with engine.connect() as conn:
            rows = {(r.customer_id, r.field): r for r in conn.execute(select(t.customer_fields))}
    finally:
        engine.dispose()
    for name in ("full_name", "mobile", "cn_resident_id", "notes"):
        row = rows[(ids[0], name)]
        assert row.value is None and row.key_id == store.cipher.active_id
        assert ZHANG[name].encode() not in bytes(row.ciphertext)
    assert rows[(ids[0], "segment")].value == "mass" and rows[(ids[0], "segment")].ciphertext is None
    assert store.count_customers() == 2


def test_one_customer_reads_in_one_statement_and_agrees_with_the_list_read(store):
    """get_customer is the masked read's hot path: one prebuilt statement (head, fields and subject key
    joined) on one pooled connection, the same record as the list path, and the unwrapped key left for
    the read's pseudonym."""
    a, b, bare = store.add_customers([ZHANG, SMITH, {**SMITH, "external_id": "X-1"}])
    engine = _raw(store)
    try:
        with engine.begin() as conn:  # a field the schema no longer declares is never returned
            conn.execute(insert(t.customer_fields).values(customer_id=a, field="retired_field", value="x"))
            conn.execute(delete(t.customer_fields).where(t.customer_fields.c.customer_id == bare))
    finally:
        engine.dispose()
    listed = {c["id"]: c for c in store.list_customers(limit=10)}
    checkouts = []  # the read runs one statement on a pooled DBAPI connection, past Connection events
    event.listen(store.engine, "checkout", lambda *args: checkouts.append(1))
    store.subjects.forget(a)
    for cid in (a, b, bare):
        assert store.get_customer(cid) == listed[cid]
    assert store.find_customer_by_external_id("US-0001") == listed[b]
    assert "retired_field" not in listed[a] and set(listed[bare]) == {
        "id",
        "external_id",
        "region",
        "created",
    }
    assert len(checkouts) == 4
    checkouts.clear()
    store.subjects.keys([a, b])  # both keys came with the reads: the database is not asked
    assert checkouts == []
    with pytest.raises(UnknownCustomer):
        store.get_customer(999_999)


def test_the_one_customer_read_maps_database_failures_and_survives_dropped_connections(store):
    """The raw read path answers failures as the store's errors (never the driver's, never the SQL's
    parameters), and a PostgreSQL connection dropped between reads is replaced, not served broken."""
    (a,) = store.add_customers([ZHANG])
    assert store.get_customer(a)["mobile"] == ZHANG["mobile"]
    engine = _raw(store)
    try:
        if store.engine.dialect.name == "postgresql":
            with engine.connect() as conn:  # every connection of the store's pool dies
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            assert store.get_customer(a)["mobile"] == ZHANG["mobile"]
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE subject_keys RENAME TO subject_keys_gone"))
        with pytest.raises(StoreError, match="failed") as err:
            store.get_customer(a)
        assert not isinstance(err.value, UnknownCustomer) and "CN-0001" not in str(err.value)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE subject_keys_gone RENAME TO subject_keys"))
    finally:
        engine.dispose()
    assert store.find_customer_by_external_id("CN-0001")["id"] == a


def test_a_bad_row_writes_nothing_of_the_call(store):
    store.add_customers([ZHANG])
    bad = [dict(SMITH), {**SMITH, "external_id": "US-0002", "email": "not an address"}]
    with pytest.raises(RecordInvalid) as err:
        store.add_customers(bad)
    assert (err.value.index, err.value.field) == (1, "email")
    assert "nothing was written" in str(err.value)
    with pytest.raises(RecordInvalid, match="already exists"):
        store.add_customers([SMITH, ZHANG])
    with pytest.raises(RecordInvalid, match="appears twice"):
        store.add_customers([SMITH, SMITH])
    assert store.count_customers() == 1
    assert store.find_customer_by_external_id("US-0001") is None


def test_tampered_or_swapped_ciphertexts_are_refused(store):
    a, b = store.add_customers([ZHANG, {**ZHANG, "external_id": "CN-0002", "mobile": "13900139000"}])
    cf = t.customer_fields
    engine = _raw(store)
    try:
        with engine.begin() as conn:
            theirs = conn.execute(
                select(cf.c.ciphertext, cf.c.key_id).where(cf.c.customer_id == b, cf.c.field == "mobile")
            ).one()
            # Move B's sealed mobile onto A's record: same key, same field, another row.
            conn.execute(
                update(cf)
                .where(cf.c.customer_id == a, cf.c.field == "mobile")
                .values(ciphertext=theirs.ciphertext, key_id=theirs.key_id)
            )
        with pytest.raises(FieldKeyError) as err:
            store.get_customer(a)
        assert "13900139000" not in str(err.value)
        assert store.get_customer(b)["mobile"] == "13900139000"
        with engine.begin() as conn:
            blob = bytearray(
                conn.execute(
                    select(cf.c.ciphertext).where(cf.c.customer_id == b, cf.c.field == "full_name")
                ).scalar_one()
            )
            blob[-1] ^= 0x80
            conn.execute(
                update(cf)
                .where(cf.c.customer_id == b, cf.c.field == "full_name")
                .values(ciphertext=bytes(blob))
            )
    finally:
        engine.dispose()
    with pytest.raises(FieldKeyError):
        store.get_customer(b)


def test_events_by_customer_and_time(store):
    cid, other = store.add_customers([ZHANG, SMITH])
    n = store.add_events(
        [
            {
                "customer_id": cid,
                "ts": T0 + timedelta(days=2),
                "kind": "purchase",
                "amount": 12.5,
                "currency": "CNY",
            },
            {
                "external_id": "CN-0001",
                "ts": T0,
                "kind": "login",
                "channel": "app",
                "details": {"method": "sms"},
            },
            {"customer_id": other, "ts": T0, "kind": "login"},
        ]
    )
    assert n == 3 and store.count_events() == 3
    events = store.events_for(cid)
    assert [e.kind for e in events] == ["login", "purchase"]
    assert events[0].ts == T0 and events[0].details == {"method": "sms"}
    assert events[1].amount == 12.5 and events[1].as_dict()["ts"] == "2024-05-03T08:00:00Z"
    assert [e.kind for e in store.events_for(cid, since=T0 + timedelta(days=1))] == ["purchase"]
    with pytest.raises(RecordInvalid, match="names no customer"):
        store.add_events([{"external_id": "nobody", "ts": T0, "kind": "login"}])
    with pytest.raises(UnknownCustomer):
        store.add_events([{"customer_id": 999_999, "ts": T0, "kind": "login"}])
    with pytest.raises(UnknownCustomer):
        store.events_for(999_999)
    assert store.count_events() == 3


def test_transcripts_are_sealed_and_bound_to_their_place(store):
    cid = store.add_customers([ZHANG])[0]
    msgs = [
        {"ts": T0, "speaker": "customer", "text": "我的身份证号是 11010519491231002X"},
        {"ts": T0 + timedelta(seconds=30), "speaker": "agent", "text": "好的，已核实。"},
    ]
    tid = store.add_transcript(cid, msgs)
    store.add_transcript(
        cid, [{"ts": T0 + timedelta(days=1), "speaker": "bot", "text": "Hello"}], channel="email"
    )
    got = store.transcripts_for(cid)
    assert [tr.channel for tr in got] == ["chat", "email"]
    assert [m.text for m in got[0].messages] == [m["text"] for m in msgs]
    assert got[0].started == T0 and got[0].id == tid
    assert store.count_transcripts() == 2 and store.count_messages() == 3
    with pytest.raises(RecordInvalid, match="speaker"):
        store.add_transcript(cid, [{"ts": T0, "speaker": "ghost", "text": "boo"}])
    with pytest.raises(UnknownCustomer):
        store.add_transcript(999_999, msgs)
    assert store.count_transcripts() == 2
    tm = t.transcript_messages
    engine = _raw(store)
    try:
        with engine.begin() as conn:
            second = conn.execute(
                select(tm.c.ciphertext).where(tm.c.transcript_id == tid, tm.c.seq == 1)
            ).scalar_one()
            conn.execute(update(tm).where(tm.c.transcript_id == tid, tm.c.seq == 0).values(ciphertext=second))
    finally:
        engine.dispose()
    with pytest.raises(FieldKeyError):
        store.transcripts_for(cid)


def test_rotation_reencrypts_everything_and_old_values_open_meanwhile(store, keyring_path):
    ids = store.add_customers(
        [ZHANG, SMITH] + [{**SMITH, "external_id": f"US-{i:04d}"} for i in range(2, 12)]
    )
    cid = ids[0]
    store.add_transcript(cid, [{"ts": T0, "speaker": "customer", "text": "卡号 6222021234567890"}])
    old_key = store.cipher.active_id
    seen: list[tuple[int, int]] = []

    def during(done: int, total: int) -> None:
        seen.append((done, total))
        if 0 < done < total:  # mid-rotation: some rows moved, others still on the old key
            assert store.get_customer(cid)["mobile"] == "13800138000"
            assert store.get_customer(ids[-1])["us_ssn"] == "219-09-9998"

    sealed_before = store.stats()["field_keys"][0]["values"]
    report = store.rotate_keys(batch_rows=7, progress=during)
    assert report.retired == (old_key,) and report.new_key_id == store.cipher.active_id != old_key
    assert report.reencrypted == sealed_before and len(seen) > 3 and seen[-1][0] == seen[-1][1]
    engine = _raw(store)
    try:
        with engine.connect() as conn:
            keys = set(
                conn.execute(
                    select(t.customer_fields.c.key_id).where(t.customer_fields.c.key_id.is_not(None))
                ).scalars()
            )
            keys |= set(conn.execute(select(t.transcript_messages.c.key_id)).scalars())
            states = dict(conn.execute(select(t.field_keys.c.key_id, t.field_keys.c.status)).all())
    finally:
        engine.dispose()
    assert keys == {report.new_key_id}
    assert states == {old_key: "retired", report.new_key_id: "active"}
    assert store.get_customer(cid)["cn_resident_id"] == ZHANG["cn_resident_id"]
    assert store.transcripts_for(cid)[0].messages[0].text == "卡号 6222021234567890"
    assert stat.S_IMODE(os.stat(keyring_path).st_mode) == 0o600


def test_rotation_stops_on_a_damaged_row_and_keeps_the_old_key(store):
    a, b = store.add_customers([ZHANG, {**ZHANG, "external_id": "CN-0002"}])
    old_key = store.cipher.active_id
    cf = t.customer_fields
    engine = _raw(store)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(cf)
                .where(cf.c.customer_id == b, cf.c.field == "mobile")
                .values(ciphertext=b"\x00" * 40)
            )
    finally:
        engine.dispose()
    with pytest.raises(FieldKeyError, match=f"customer {b}, field mobile"):
        store.rotate_keys(batch_rows=100)
    assert {k.key_id: k.status for k in store.cipher.keyring.keys()}[old_key] == "previous"
    assert store.get_customer(a)["mobile"] == "13800138000"  # nothing lost


def test_reopen_is_idempotent_and_matches_the_tables(store_url, keyring_path, store):
    store.add_customers([ZHANG])
    store.close()
    for _ in range(2):
        with Store.open(store_url, keyring_path) as again:
            assert again.get_customer(1)["full_name"] == "张三"
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [
                "0004_subject_keys"
            ]
            ctx = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            diffs = compare_metadata(ctx, t.metadata)
            assert conn.execute(select(func.count()).select_from(t.field_keys)).scalar_one() == 1
    finally:
        engine.dispose()
    assert diffs == []


def test_a_keyring_or_database_from_another_store_is_refused(store_url, keyring_path, store, tmp_path):
    store.close()
    with pytest.raises(StoreError, match="already holds a store"):
        Store.create(store_url, tmp_path / "other" / "field.keys")
    other = tmp_path / "other2" / "field.keys"
    Store.create(f"sqlite:///{tmp_path / 'other.db'}", other).close()
    with pytest.raises(FieldKeyError, match="belongs to another store"):
        Store.open(store_url, other)
    with pytest.raises(FieldKeyError, match="missing"):
        Store.open(store_url, tmp_path / "absent.keys")


def test_bad_urls_say_what_to_use(tmp_path, keyring_path):
    with pytest.raises(StoreError, match="postgresql\\+psycopg"):
        Store.create("mysql://localhost/x", keyring_path)
    with pytest.raises(StoreError, match="not a database URL"):
        Store.create("::nonsense::", keyring_path)
    with pytest.raises(StoreError, match="cannot be reached"):
        Store.create("postgresql+psycopg://postgres@127.0.0.1:1/none", keyring_path)
    assert not keyring_path.exists()


def test_open_refuses_a_database_without_a_store(store_url, keyring_path, store, tmp_path):
    store.close()
    with pytest.raises(StoreError, match="is missing; restore it from backup"):
        Store.open(f"sqlite:///{tmp_path / 'gone.db'}", keyring_path)
    assert not (tmp_path / "gone.db").exists()
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            t.metadata.drop_all(conn)
            conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="holds no store"):
        Store.open(store_url, keyring_path)
