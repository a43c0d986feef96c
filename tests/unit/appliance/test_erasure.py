"""Erasure by crypto-shredding, on SQLite and a real PostgreSQL: the test that proves both halves.

A customer is read (plain and masked), gets events, a consent, a suppression, a trigger with an
outbox row and an outcome, a transcript, and values in an encrypted privacy column and a weight
vector; then an admin erases them over HTTP. Then

(a) the ledger still proves everything: ``appliance ledger verify`` passes, every entry that named
    the customer is still there with inclusion proofs, a consistency proof from a checkpoint signed
    before the erasure, and an evidence bundle that verify with the public key alone; and the one
    ``subject.erased`` entry is there;
(b) nothing links any more: the pseudonym cannot be recomputed (the key is gone, and a new customer
    with the same data gets another one), no store table holds the id or a value, a copy of the
    sealed bytes taken before cannot be opened (and, after a key rotation, neither can a copy of the
    wrapped key), the tokens no longer de-tokenise, the privacy aggregates leave the values out, and
    no log line or ledger byte holds an identifier.

Then the refusals (twice, unknown id, no reason, a non-admin), a ledger that fails the append, and
crashes on either side of the append (a real child process killed mid-erasure), each leaving the
subject either intact or erased with its entry recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from pgserver import SKIP_ENV, PgServer, PgUnavailable, running_server
from sqlalchemy import create_engine, select

from appliance.cli import cli
from appliance.keys import read_secret
from appliance.masking.operators.token import TOKEN_PATTERN
from appliance.node import Node
from appliance.server import create_app
from appliance.settings import Settings, load_settings
from appliance.store import tables as t
from appliance.store.crypto import associated_data
from appliance.store.errors import FieldKeyError, UnknownSubject
from ledger.bundle import verify_bundle
from ledger.checkpoint import NoteVerifier
from ledger.merkle import verify_consistency, verify_inclusion

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ZHANG: dict[str, Any] = {
    "external_id": "C-ERASE-0001",
    "region": "CN",
    "full_name": "张伟",
    "mobile": "13812345678",
    "cn_resident_id": "11010519491231002X",
    "bank_card": "6222021234567890128",
    "email": "zhang.wei@example.com",
    "date_of_birth": "1949-12-31",
    "notes": "客户来电，手机13812345678，邮箱zhang.wei@example.com",
    "segment": "affluent",
    "balance": 777.0,
}
CHAT = [
    {
        "ts": "2026-11-01T09:00:00Z",
        "speaker": "customer",
        "text": "你好，我的卡号6222021234567890128被扣了两次",
    },
    {"ts": "2026-11-01T09:01:00Z", "speaker": "customer", "text": "11010519491231002X，手机13812345678"},
]
#: What must not survive anywhere: the person's identifiers and the business system's id for them.
IDENTIFIERS = ("张伟", "13812345678", "11010519491231002X", "6222021234567890128", "zhang.wei@example.com")
EXTERNAL_ID = ZHANG["external_id"]
OTHERS = [
    {
        "external_id": f"P-{i}",
        "region": "CN",
        "full_name": f"客户{i}",
        "balance": 100.0 * i,
        "segment": "mass",
    }
    for i in range(1, 13)
]


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: the PostgreSQL cases are skipped on purpose")
    with contextlib.ExitStack() as stack:
        problem = None
        try:
            server = stack.enter_context(running_server("appliance_test"))
        except PgUnavailable as exc:
            problem = str(exc)
        if problem is not None:  # a failure, not a skip: the PostgreSQL half must run
            pytest.fail(problem, pytrace=False)
        yield server


@pytest.fixture(scope="module")
def privacy_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HE keys made once (keygen takes seconds); each node gets a copy in its data dir."""
    settings = load_settings(node={"data_dir": tmp_path_factory.mktemp("keys") / "node"})
    Node.init(settings)
    with Node.open(settings) as node:
        node.privacy.keygen(actor="custodian:test")
        return node.privacy.keys_dir


@dataclass
class Env:
    settings: Settings
    node: Node
    client: FlaskClient
    tokens: dict[str, str]
    url: str | None  # None: SQLite in the data dir

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def raw_engine(self) -> Any:
        """A second, plain engine on the store's database: what a dump would show."""
        return create_engine(self.node.store.engine.url)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    url = None
    if request.param == "postgresql":
        server: PgServer = request.getfixturevalue("pg")
        server.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public", database="appliance_test")
        url = server.url("appliance_test")
    overrides: dict[str, Any] = {"node": {"data_dir": tmp_path / "node"}}
    if url is not None:
        overrides["store"] = {"url": url}
    settings = load_settings(**overrides)
    tokens = dict(Node.init(settings).api_keys)
    node = Node.open(settings)
    e = Env(settings, node, create_app(settings, node).test_client(), tokens, url)
    yield e
    node.close()


def _ok(resp: Any, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def _problem(resp: Any, status: int, slug: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["type"].endswith("/" + slug), body
    return body


def _entries(node: Node, start: int = 0) -> list[dict[str, Any]]:
    node.ledger.refresh()
    return [json.loads(raw) for _, raw in node.ledger.iter_raw(start)]


def _customer(e: Env) -> int:
    """The customer to erase, with a history in the store and the ledger; returns their id."""
    node = e.node
    (cid,) = node.store.add_customers([ZHANG])
    node.store.add_customers(OTHERS)
    node.store.add_transcript(cid, CHAT)
    events = [
        {"customer_id": cid, "ts": "2026-11-02T10:00:00Z", "kind": "search", "text": "胎压 13812345678"},
        {
            "customer_id": cid,
            "ts": "2026-11-03T10:00:00Z",
            "kind": "purchase",
            "amount": 12.5,
            "currency": "CNY",
        },
    ]
    _ok(e.client.post("/v1/events", json={"events": events}, headers=e.auth("admin")), 201)
    _ok(
        e.client.post(
            "/v1/consents",
            json={"customer_id": cid, "channel": "sms", "status": "opt_in"},
            headers=e.auth("agent"),
        ),
        201,
    )
    _ok(
        e.client.post(
            "/v1/suppressions",
            json={"customer_id": cid, "reason": "complaint open"},
            headers=e.auth("supervisor"),
        ),
        200,
    )
    ref = node.pseudonyms.pseudonym("cust", str(cid))
    (tid,) = node.store.proactive.insert_triggers(
        [
            {
                "run_id": "0" * 16,
                "playbook": "tire_pressure_service",
                "customer_id": cid,
                "score": 0.9,
                "rank": 1,
                "treated": 1,
                "status": "pending",
                "suppressed_by": None,
                "reasons": {"gates": [], "model": []},
                "model_version": None,
                "channel": "sms",
                "created": T0,
                "not_before": None,
            }
        ],
        bodies=lambda trigger_id, row: json.dumps({"trigger_id": trigger_id, "customer": {"ref": ref}}),
    )
    node.record("system:test", "trigger.raised", [ref], {"trigger": tid})
    _ok(e.client.get(f"/v1/triggers/{tid}", headers=e.auth("ops")))
    _ok(e.client.post(f"/v1/triggers/{tid}/outcome", json={"outcome": "contacted"}, headers=e.auth("ops")))
    return cid


# -- the test that proves both halves ------------------------------------------------------------------
def test_erasure_keeps_every_proof_and_leaves_nothing_that_links(
    env: Env, privacy_keys: Path, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    e, node = env, env.node
    shutil.copytree(privacy_keys, node.privacy.keys_dir)
    cid = _customer(e)
    old = node.pseudonyms.pseudonym("cust", str(cid))
    # Reads, plain and masked; the tokens the masked views showed are what an escalation would reverse.
    shown = json.dumps(
        _ok(e.client.get(f"/v1/customers/{cid}", headers=e.auth("supervisor"))), ensure_ascii=False
    )
    shown += json.dumps(
        _ok(e.client.get(f"/v1/customers/{cid}/transcripts", headers=e.auth("supervisor"))),
        ensure_ascii=False,
    )
    _ok(e.client.get(f"/v1/customers?external_id={EXTERNAL_ID}", headers=e.auth("agent")))
    tokens = {m.group(0) for m in TOKEN_PATTERN.finditer(shown)}
    tokens.add(node.masking.token(ZHANG["cn_resident_id"], "CN_RESIDENT_ID"))
    assert len(tokens) >= 2
    for tok in tokens:
        _ok(
            e.client.post(
                "/v1/tokens/detokenize",
                json={"token": tok, "reason": "escalation 7"},
                headers=e.auth("supervisor"),
            )
        )
    # Privacy: the balance column and a weight vector hold the customer before.
    node.privacy.encrypt("customers", "balance", actor="admin:test")
    everyone = [cid] + [c["id"] for c in node.store.list_customers(limit=100) if c["id"] != cid]
    node.privacy.set_weights("all", everyone, [1.0] * len(everyone), actor="admin:test")
    before_sum = node.privacy.submit(actor="analyst:a", sql="SELECT SUM(balance) FROM customers")
    assert before_sum.released["groups"]["all"]["sum(balance)"] == pytest.approx(7800.0 + 777.0, abs=0.05)
    # A copy of the sealed bytes (a backup), the key that opens them, and a checkpoint: all before.
    cf, sk = t.customer_fields.c, t.subject_keys.c
    raw = e.raw_engine()
    try:
        with raw.connect() as conn:
            sealed = conn.execute(
                select(cf.ciphertext, cf.key_id).where(cf.customer_id == cid, cf.field == "mobile")
            ).one()
            wrapped = conn.execute(select(sk.wrapped, sk.key_id).where(sk.customer_id == cid)).one()
    finally:
        raw.dispose()
    aad = associated_data("customer_fields", "mobile", cid)
    key = node.store.subjects.key(cid)
    assert node.store.cipher.decrypt(sealed.key_id, sealed.ciphertext, aad, key) == ZHANG["mobile"]
    named = [x["seq"] for x in _entries(node) if old in x["subject"]]
    assert {
        "record.read",
        "transcript.read",
        "consent.recorded",
        "suppression.added",
        "trigger.raised",
        "trigger.outcome",
    } <= {x["action"] for x in _entries(node) if x["seq"] in named}
    before = node.ledger.sign_checkpoint()

    body = _ok(
        e.client.post(
            f"/v1/subjects/{cid}/erase",
            json={
                "reason": f"{ZHANG['full_name']} asked by phone {ZHANG['mobile']}",
                "code": "data_subject_request",
            },
            headers=e.auth("admin"),
        )
    )

    # -- (a) the ledger still proves everything ---------------------------------------------------------
    assert body["subject"] == old and body["removed"]["customers"] == 1
    assert {
        "events": 2,
        "consents": 1,
        "suppressions": 1,
        "triggers": 1,
        "outbox": 1,
        "transcripts": 1,
        "transcript_messages": 2,
        "subject_keys": 1,
    }.items() <= body["removed"].items()
    assert (
        body["tokens_revoked"] >= len(tokens)
        and body["columns_refreshed"] == ["customers.balance", "weights.all"]
        and body["columns_pending"] is None
    )
    entries = _entries(node)
    erased = entries[body["ledger_seq"]]
    assert erased["action"] == "subject.erased" and erased["subject"] == [old]
    assert set(erased["details"]) == {"erasure", "reason_code", "reason_sha256", "removed", "tokens_revoked"}
    assert erased["details"]["reason_code"] == "data_subject_request"
    assert [x["seq"] for x in entries if old in x["subject"]] == [*named, body["ledger_seq"]]
    runner = CliRunner()
    cli_env = {"APPLIANCE_NODE__DATA_DIR": str(e.settings.data_dir)}
    if e.url:
        cli_env["APPLIANCE_STORE__URL"] = e.url
    result = runner.invoke(cli, ["ledger", "verify"], env=cli_env)
    assert result.exit_code == 0 and result.output.startswith("OK:"), result.output
    after = node.ledger.sign_checkpoint()
    size = after.checkpoint.tree_size
    for seq in [*named, body["ledger_seq"]]:
        path = node.ledger.inclusion_proof(seq, size)
        assert verify_inclusion(node.ledger.leaf_hash(seq), seq, size, path, after.checkpoint.root_hash)
    first = before.checkpoint.tree_size
    assert verify_consistency(
        first,
        size,
        node.ledger.consistency_proof(first, size),
        before.checkpoint.root_hash,
        after.checkpoint.root_hash,
    )
    bundle = node.ledger.evidence_bundle([*named, body["ledger_seq"]])
    report = verify_bundle(json.loads(json.dumps(bundle)), NoteVerifier.from_vkey(node.vkey))
    assert report.ok, report.reason

    # -- (b) nothing links any more ---------------------------------------------------------------------
    with pytest.raises(UnknownSubject):
        node.pseudonyms.pseudonym("cust", str(cid))
    assert node.store.subjects.keys([cid]) == {}
    # The node's pseudonym key and the id alone (the derivation before subject keys) give something else.
    node_key = read_secret(Node.paths(e.settings.data_dir)["pseudonym"])
    alone = hmac.new(node_key, f"cust\x00{cid}".encode(), hashlib.sha256).hexdigest()[:32]
    assert old != f"cust:{alone}"
    raw = e.raw_engine()
    try:
        with raw.connect() as conn:
            for table in t.metadata.sorted_tables:
                for row in conn.execute(select(table)).mappings():
                    for column, value in row.items():
                        if column == "customer_id" or (table.name == "customers" and column == "id"):
                            assert value != cid, f"{table.name}.{column} still names the customer"
                        text = (
                            value.decode("latin-1")
                            if isinstance(value, bytes)
                            else json.dumps(value, ensure_ascii=False, default=str)
                        )
                        for ident in (*IDENTIFIERS, EXTERNAL_ID):
                            assert ident not in text, f"{table.name}.{column} holds {ident}"
    finally:
        raw.dispose()
    if e.url is None:  # SQLite: not even the database file's free pages or the WAL keep a plain value
        db = Path(node.store.engine.url.database or "")
        data = b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())
        assert EXTERNAL_ID.encode() not in data
    with pytest.raises(FieldKeyError):
        node.store.cipher.decrypt(sealed.key_id, sealed.ciphertext, aad)  # the field key alone opens nothing
    for tok in tokens:
        _problem(
            e.client.post(
                "/v1/tokens/detokenize",
                json={"token": tok, "reason": "escalation 8"},
                headers=e.auth("supervisor"),
            ),
            422,
            "invalid-token",
        )
    col = node.privacy._load("customers", "balance")
    assert cid not in set(col.row_ids.tolist()) and len(col.row_ids) == len(OTHERS)
    ids, _ = node.privacy._weights("all")
    assert cid not in set(ids.tolist())
    after_sum = node.privacy.submit(actor="analyst:a", sql="SELECT SUM(balance) FROM customers")
    assert after_sum.released["groups"]["all"]["sum(balance)"] == pytest.approx(7800.0, abs=0.05)
    ledger_bytes = b"".join(
        p.read_bytes() for p in Node.paths(e.settings.data_dir)["ledger"].rglob("*") if p.is_file()
    )
    for ident in (*IDENTIFIERS, EXTERNAL_ID):
        assert ident.encode() not in ledger_bytes, ident
        assert ident not in caplog.text, ident
    # The same person imported again is a new subject: another key, another pseudonym.
    (again,) = node.store.add_customers([ZHANG])
    assert node.pseudonyms.pseudonym("cust", str(again)) != old
    # A backup copy of the wrapped key dies with the field key that wrapped it (rotate after erasing).
    node.store.rotate_keys()
    with pytest.raises(FieldKeyError):
        node.store.cipher.unwrap(wrapped.key_id, wrapped.wrapped, cid)


# -- refusals ------------------------------------------------------------------------------------------
def test_twice_unknown_blank_reason_and_other_roles_are_refused_and_write_nothing(env: Env) -> None:
    e, node = env, env.node
    (cid,) = node.store.add_customers([ZHANG])
    reason = {"reason": "request 12"}
    for role in ("agent", "supervisor", "auditor", "ops", "analyst", "custodian"):
        _problem(
            e.client.post(f"/v1/subjects/{cid}/erase", json=reason, headers=e.auth(role)), 403, "forbidden"
        )
    size = node.ledger.refresh()
    for bad in (
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": "x", "code": "because"},
        {"reason": "x" * 2001},
    ):
        _problem(
            e.client.post(f"/v1/subjects/{cid}/erase", json=bad, headers=e.auth("admin")), 422, "invalid-body"
        )
    _problem(
        e.client.post(f"/v1/subjects/{cid + 999}/erase", json=reason, headers=e.auth("admin")),
        404,
        "unknown-customer",
    )
    _problem(
        e.client.post("/v1/subjects/abc/erase", json=reason, headers=e.auth("admin")),
        400,
        "invalid-parameter",
    )
    assert node.ledger.refresh() == size and node.store.get_customer(cid)["mobile"] == ZHANG["mobile"]
    _ok(e.client.post(f"/v1/subjects/{cid}/erase", json=reason, headers=e.auth("admin")))
    size = node.ledger.refresh()
    body = _problem(
        e.client.post(f"/v1/subjects/{cid}/erase", json=reason, headers=e.auth("admin")),
        404,
        "unknown-customer",
    )
    assert "never existed or was already erased" in body["detail"]
    assert node.ledger.refresh() == size and node.store.subjects.erasures() == []


def test_a_failing_ledger_append_leaves_the_subject_intact(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    e, node = env, env.node
    (cid,) = node.store.add_customers([ZHANG])
    node.store.add_transcript(cid, CHAT)
    old = node.pseudonyms.pseudonym("cust", str(cid))
    token = node.masking.token(ZHANG["bank_card"], "BANK_CARD")
    size = node.ledger.refresh()

    def disk_full(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(node.ledger, "append", disk_full)
    _problem(
        e.client.post(f"/v1/subjects/{cid}/erase", json={"reason": "r"}, headers=e.auth("admin")),
        503,
        "storage-unavailable",
    )
    monkeypatch.undo()
    assert node.ledger.refresh() == size
    assert node.store.subjects.erasures() == [] and node.store.subjects.has_key(cid)
    assert node.pseudonyms.pseudonym("cust", str(cid)) == old
    assert node.store.get_customer(cid)["mobile"] == ZHANG["mobile"]
    assert node.store.transcripts_for(cid)[0].messages[0].text == CHAT[0]["text"]
    assert node.masking.detokenize(token, role="supervisor") == ("BANK_CARD", ZHANG["bank_card"])
    _ok(e.client.post(f"/v1/subjects/{cid}/erase", json={"reason": "r"}, headers=e.auth("admin")))


_CRASH = """
import os, sys
from appliance.node import Node
from appliance.settings import load_settings

node = Node.open(load_settings())
real = node.record

def record(*args, **kwargs):
    if args[1] == "subject.erased":
        if sys.argv[1] == "after":
            real(*args, **kwargs)  # durable, then the process dies before the store commits
        os._exit(9)
    return real(*args, **kwargs)

node.record = record
node.subjects.erase(int(sys.argv[2]), "crash drill", actor="admin:test")
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_around_the_append_leaves_the_subject_intact_or_erased_with_its_entry(
    env: Env, when: str
) -> None:
    e, node = env, env.node
    (cid,) = node.store.add_customers([ZHANG])
    old = node.pseudonyms.pseudonym("cust", str(cid))
    child_env = {**os.environ, "APPLIANCE_NODE__DATA_DIR": str(e.settings.data_dir)}
    if e.url:
        child_env["APPLIANCE_STORE__URL"] = e.url
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CRASH), when, str(cid)],
        env=child_env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 9, proc.stderr.decode()
    [pending] = node.store.subjects.erasures()
    assert pending.status == "pending" and pending.customer_id == cid
    assert node.subjects.recover() == []  # too young: it might still be running elsewhere
    done = node.subjects.recover(min_age=0)
    erasures = [x for x in _entries(node) if x["action"] == "subject.erased"]
    assert node.store.subjects.erasures() == []
    if when == "before":
        assert done == [f"erasure {pending.id}: undone (no ledger entry; the subject is intact)"]
        assert erasures == [] and node.pseudonyms.pseudonym("cust", str(cid)) == old
        assert node.store.get_customer(cid)["mobile"] == ZHANG["mobile"]
    else:
        assert done[0] == f"erasure {pending.id}: finished (its ledger entry was recorded)"
        assert [x["subject"] for x in erasures] == [[old]] and erasures[0]["details"]["erasure"] == pending.id
        assert node.store.get_customers([cid]) == {} and node.store.subjects.keys([cid]) == {}


# -- the command line ---------------------------------------------------------------------------------
def test_cli_show_and_erase(env: Env) -> None:
    e, node = env, env.node
    (cid,) = node.store.add_customers([ZHANG])
    old = node.pseudonyms.pseudonym("cust", str(cid))
    node.close()
    runner = CliRunner()
    cli_env = {"APPLIANCE_NODE__DATA_DIR": str(e.settings.data_dir)}
    if e.url:
        cli_env["APPLIANCE_STORE__URL"] = e.url

    def run(*args: str, code: int = 0, stdin: str | None = None) -> str:
        result = runner.invoke(cli, list(args), env=cli_env, input=stdin)
        assert result.exit_code == code, result.output
        return result.output

    assert json.loads(run("subject", "show", str(cid), "--json")) == {
        "customer_id": cid,
        "exists": True,
        "has_key": True,
        "pseudonym": old,
    }
    assert "Missing option '--reason'" in run("subject", "erase", str(cid), code=2)
    assert "--reason is empty" in run("subject", "erase", str(cid), "--reason", " ", "--yes", code=2)
    assert "Aborted" in run("subject", "erase", str(cid), "--reason", "request 9", stdin="n\n", code=1)
    out = run(
        "subject", "erase", str(cid), "--reason", "request 9", "--code", "retention_expired", stdin="y\n"
    )
    assert f"now {old}" in out and "1 customers" in out
    assert "never existed or was already erased" in run(
        "subject", "erase", str(cid), "--reason", "request 9", "--yes", code=1
    )
    assert "none in the store" in run("subject", "show", str(cid), code=1)
    assert "no interrupted erasure" in run("subject", "recover")
    with Node.open(e.settings) as reopened:
        entries = _entries(reopened)
    assert [x["details"]["reason_code"] for x in entries if x["action"] == "subject.erased"] == [
        "retention_expired"
    ]
    assert [x["subject"] for x in entries if x["action"] == "subject.shown"] == [[old], []]
