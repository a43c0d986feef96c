"""Subject keys in the store, on SQLite and PostgreSQL: wrapped at rest, bound to their row, the root
of every sealed value of their customer; created lazily for stores older than migration 0004 (which
re-seals that customer's values under them), re-wrapped by rotation, and deleted by an erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, delete, insert, select, text, update

from appliance.store import FieldCipher, FieldKeyError, Keyring, Store
from appliance.store import tables as t
from appliance.store.crypto import associated_data
from appliance.store.errors import UnknownSubject
from appliance.store.store import MIGRATIONS_DIR, VERSION_TABLE
from appliance.store.subjects import ErasureConflict, token_digest

ZHANG = {
    "external_id": "CN-0001",
    "region": "CN",
    "full_name": "张三",
    "mobile": "13800138000",
    "cn_resident_id": "11010519491231002X",
    "segment": "mass",
}
LI = {**ZHANG, "external_id": "CN-0002", "full_name": "李四", "mobile": "13900139000"}
CHAT = [{"ts": datetime(2024, 5, 1, 8, 0, tzinfo=UTC), "speaker": "customer", "text": "手机13800138000"}]


def _raw(store: Store):
    return create_engine(store.engine.url)


def _rows(store: Store, table, *where):
    engine = _raw(store)
    try:
        with engine.connect() as conn:
            return conn.execute(select(table).where(*where)).all()
    finally:
        engine.dispose()


def test_keys_are_wrapped_bound_to_their_row_and_seal_their_customers_values(store: Store) -> None:
    a, b = store.add_customers([ZHANG, LI])
    keys = store.subjects.keys([a, b, 999_999])
    assert set(keys) == {a, b} and keys[a] != keys[b] and len(keys[a]) == 32
    rows = {r.customer_id: r for r in _rows(store, t.subject_keys)}
    assert rows[a].key_id == store.cipher.active_id and keys[a] not in bytes(rows[a].wrapped)
    with pytest.raises(FieldKeyError):  # a wrapped key moved to another customer does not open
        store.cipher.unwrap(rows[a].key_id, rows[a].wrapped, b)
    [mobile] = _rows(
        store, t.customer_fields, t.customer_fields.c.customer_id == a, t.customer_fields.c.field == "mobile"
    )
    aad = associated_data("customer_fields", "mobile", a)
    assert store.cipher.decrypt(mobile.key_id, mobile.ciphertext, aad, keys[a]) == ZHANG["mobile"]
    for wrong in (None, keys[b]):  # the field key alone, or another subject's key: opaque refusal
        with pytest.raises(FieldKeyError):
            store.cipher.decrypt(mobile.key_id, mobile.ciphertext, aad, wrong)
    store.add_transcript(a, CHAT)
    [msg] = _rows(store, t.transcript_messages)
    with pytest.raises(FieldKeyError):
        store.cipher.decrypt(
            msg.key_id,
            msg.ciphertext,
            associated_data("transcript_messages", "text", f"{msg.transcript_id}:0"),
        )
    assert store.transcripts_for(a)[0].messages[0].text == CHAT[0]["text"]
    assert store.subjects.key(a) == keys[a] and store.subjects.has_key(b)
    with pytest.raises(UnknownSubject, match="never existed or was already erased"):
        store.subjects.key(999_999)
    assert store.stats()["subject_keys"] == 2


def _legacy(store: Store, cid: int) -> None:
    """Make ``cid`` look like a customer written before migration 0004: no key, values under the field key."""
    cf, tm, tr = t.customer_fields, t.transcript_messages, t.transcripts
    keys = store.subjects.keys([cid])
    engine = _raw(store)
    try:
        with engine.begin() as conn:
            for r in conn.execute(
                select(cf).where(cf.c.customer_id == cid, cf.c.ciphertext.is_not(None))
            ).all():
                aad = associated_data("customer_fields", r.field, cid)
                text = store.cipher.decrypt(r.key_id, r.ciphertext, aad, keys[cid])
                sealed = store.cipher.encrypt(text, aad)
                conn.execute(
                    update(cf)
                    .where(cf.c.customer_id == cid, cf.c.field == r.field)
                    .values(ciphertext=sealed.blob)
                )
            tids = select(tr.c.id).where(tr.c.customer_id == cid)
            for m in conn.execute(select(tm).where(tm.c.transcript_id.in_(tids))).all():
                aad = associated_data("transcript_messages", "text", f"{m.transcript_id}:{m.seq}")
                sealed = store.cipher.encrypt(
                    store.cipher.decrypt(m.key_id, m.ciphertext, aad, keys[cid]), aad
                )
                conn.execute(
                    update(tm)
                    .where(tm.c.transcript_id == m.transcript_id, tm.c.seq == m.seq)
                    .values(ciphertext=sealed.blob)
                )
            conn.execute(delete(t.subject_keys).where(t.subject_keys.c.customer_id == cid))
    finally:
        engine.dispose()
    store.subjects.forget(cid)


def test_a_customer_without_a_key_reads_and_gets_one_with_its_values_resealed(store: Store) -> None:
    a, b = store.add_customers([ZHANG, LI])
    store.add_transcript(a, CHAT)
    _legacy(store, a)
    assert store.get_customer(a)["mobile"] == ZHANG["mobile"]  # the field key alone opens old values
    assert store.subjects.keys([a], create=False) == {} and not store.subjects.has_key(a)
    key = store.subjects.keys([a])[a]  # lazily: created, and the values moved under it
    [mobile] = _rows(
        store, t.customer_fields, t.customer_fields.c.customer_id == a, t.customer_fields.c.field == "mobile"
    )
    aad = associated_data("customer_fields", "mobile", a)
    assert store.cipher.decrypt(mobile.key_id, mobile.ciphertext, aad, key) == ZHANG["mobile"]
    with pytest.raises(FieldKeyError):
        store.cipher.decrypt(mobile.key_id, mobile.ciphertext, aad)
    assert store.get_customer(a)["cn_resident_id"] == ZHANG["cn_resident_id"]
    assert store.transcripts_for(a)[0].messages[0].text == CHAT[0]["text"]
    # Another process (its own store, cold cache) reads the same key rather than making a second one.
    other = Store.open(str(store.engine.url.render_as_string(hide_password=False)), store.cipher.keyring.path)
    try:
        assert other.subjects.keys([a, b]) == {a: key, b: store.subjects.key(b)}
    finally:
        other.close()


def test_rotation_rewraps_subject_keys_and_gives_old_customers_theirs(store: Store) -> None:
    ids = store.add_customers([ZHANG, LI] + [{**LI, "external_id": f"CN-{i:04d}"} for i in range(3, 9)])
    store.add_transcript(ids[0], CHAT)
    _legacy(store, ids[0])
    old = store.cipher.active_id
    keys = store.subjects.keys(ids[1:])
    report = store.rotate_keys(batch_rows=3)
    assert report.retired == (old,) and report.rewrapped == len(ids)
    rows = _rows(store, t.subject_keys)
    assert {r.key_id for r in rows} == {report.new_key_id} and len(rows) == len(ids)
    store.subjects.forget(ids[1])
    assert store.subjects.keys(ids[1:]) == keys  # the keys themselves never change (pseudonyms hold)
    assert store.get_customer(ids[0])["mobile"] == ZHANG["mobile"]
    assert store.transcripts_for(ids[0])[0].messages[0].text == CHAT[0]["text"]
    assert store.stats()["field_keys"][-1]["subject_keys"] == len(ids)


def test_erase_deletes_every_row_in_one_transaction_or_nothing(store: Store) -> None:
    a, b = store.add_customers([ZHANG, LI])
    store.add_transcript(a, CHAT)
    store.add_events([{"customer_id": a, "ts": CHAT[0]["ts"], "kind": "login"}])
    store.proactive.add_consents(
        [{"customer_id": a, "channel": "sms", "status": "opt_in", "ts": CHAT[0]["ts"], "source": "test"}]
    )
    subjects = store.subjects
    eid = subjects.begin_erasure(a, "cust:" + "0" * 32, 0)
    with pytest.raises(ErasureConflict, match="already being erased"):
        subjects.begin_erasure(a, "cust:" + "0" * 32, 0)

    def refuse(_counts):
        raise OSError("the ledger is full")

    with pytest.raises(OSError):
        subjects.erase(eid, a, tokens=lambda record, texts: ["tok_X_aaaa"], before_commit=refuse)
    assert store.get_customer(a)["mobile"] == ZHANG["mobile"] and store.count_events() == 1
    assert not subjects.token_revoked("tok_X_aaaa") and subjects.erasures()[0].status == "pending"
    seen = {}

    def tokens(record, texts):
        seen["record"], seen["texts"] = record, list(texts)
        return ["tok_X_aaaa", "tok_X_aaaa"]

    counts, result = subjects.erase(eid, a, tokens=tokens, before_commit=lambda c: dict(c))
    assert seen["record"]["mobile"] == ZHANG["mobile"] and seen["texts"] == [CHAT[0]["text"]]
    assert result == counts and counts == {
        "customers": 1,
        "customer_fields": 4,
        "subject_keys": 1,
        "events": 1,
        "consents": 1,
        "transcripts": 1,
        "transcript_messages": 1,
        "revoked_tokens": 1,
    }
    assert subjects.token_revoked("tok_X_aaaa") and not subjects.token_revoked("tok_X_bbbb")
    assert _rows(store, t.revoked_tokens)[0].digest == token_digest("tok_X_aaaa")
    [journal] = subjects.erasures()
    assert (journal.status, journal.customer_id) == ("erased", None)
    assert not subjects.cancel_erasure(eid)  # only a pending erasure can be undone
    subjects.finish_erasure(eid)
    assert subjects.erasures() == [] and store.get_customers([a]) == {} and subjects.keys([a]) == {}
    with pytest.raises(ErasureConflict):  # a journal row that is gone cannot be claimed again
        subjects.erase(eid, b, tokens=tokens, before_commit=lambda c: None)
    assert store.get_customer(b)["mobile"] == LI["mobile"]


def test_a_store_from_before_migration_0004_upgrades_and_binds_lazily(store_url: str, tmp_path: Path) -> None:
    keyring_path = tmp_path / "keys" / "field.keys"
    keyring = Keyring.create(keyring_path)
    cipher = FieldCipher(keyring)
    engine = create_engine(store_url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003_privacy")
            conn.execute(
                insert(t.field_keys).values(
                    key_id=keyring.active_id, status="active", created=datetime.now(UTC)
                )
            )
            conn.execute(
                insert(t.customers).values(id=1, external_id="OLD-1", region="CN", created=datetime.now(UTC))
            )
            sealed = cipher.encrypt("13800138000", associated_data("customer_fields", "mobile", 1))
            conn.execute(
                insert(t.customer_fields).values(
                    customer_id=1, field="mobile", value=None, ciphertext=sealed.blob, key_id=sealed.key_id
                )
            )
            conn.execute(
                insert(t.customer_fields).values(
                    customer_id=1,
                    field="full_name",
                    value=None,
                    ciphertext=cipher.encrypt(
                        "王五", associated_data("customer_fields", "full_name", 1)
                    ).blob,
                    key_id=keyring.active_id,
                )
            )
    finally:
        engine.dispose()
    with Store.open(store_url, keyring_path) as store:
        engine = create_engine(store_url)
        try:
            with engine.connect() as conn:
                assert conn.execute(select(t.subject_keys)).all() == []
                assert (
                    conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()
                    == "0004_subject_keys"
                )
        finally:
            engine.dispose()
        assert store.get_customer(1)["mobile"] == "13800138000"
        key = store.subjects.key(1)
        [row] = _rows(store, t.customer_fields, t.customer_fields.c.field == "mobile")
        assert (
            store.cipher.decrypt(
                row.key_id, row.ciphertext, associated_data("customer_fields", "mobile", 1), key
            )
            == "13800138000"
        )
        assert store.get_customer(1)["full_name"] == "王五"


def test_privacy_lookups_that_named_the_customer_go_with_them(store: Store) -> None:
    a, b = store.add_customers([ZHANG, LI])
    lookup = {"table": "customers", "lookup": {"column": "balance", "ids": [b, a]}}
    named = store.privacy.create_query(
        "analyst:a", lookup, "0" * 64, f"SELECT LOOKUP(balance) FROM customers WHERE id IN ({b}, {a})"
    )
    other = store.privacy.create_query(
        "analyst:a", {"table": "customers", "lookup": {"column": "balance", "ids": [b]}}, "1" * 64, None
    )
    plain = store.privacy.create_query("analyst:a", {"table": "customers", "lookup": None}, "2" * 64, None)
    eid = store.subjects.begin_erasure(a, "cust:" + "0" * 32, 0)
    counts, _ = store.subjects.erase(eid, a, tokens=lambda record, texts: [], before_commit=lambda c: None)
    assert counts["privacy_queries"] == 1
    assert {q.id for q in store.privacy.list_queries()} == {other, plain} and named not in {other, plain}
