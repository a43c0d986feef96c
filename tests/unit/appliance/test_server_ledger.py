"""What the ledger API serves verifies offline with the ledger's own verifiers and the node's key."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from appliance.node import Node
from appliance.server import create_app
from ledger.bundle import load_bundle, verify_bundle
from ledger.checkpoint import NoteVerifier, SignedCheckpoint, verify_checkpoint
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion

if TYPE_CHECKING:
    from conftest import ServerEnv

HEX64 = re.compile(r"[0-9a-f]{64}")
PSEUDONYM = "cust:9f2c1a0b3d4e5f60a1b2c3d4e5f60718"


def _get(env: ServerEnv, url: str, **kwargs: Any) -> Any:
    resp = env.client.get(url, headers=env.auth("auditor") | kwargs.pop("headers", {}), **kwargs)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp


def _append(env: ServerEnv, action: str = "record.read", **extra: Any) -> dict[str, Any]:
    body = {"action": action, "subject": [PSEUDONYM], "details": {"fields": ["name"], "n": 1}}
    resp = env.client.post("/v1/ledger/entries", headers=env.auth("admin"), json=body, **extra)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return dict(resp.get_json())


def _sign(env: ServerEnv) -> SignedCheckpoint:
    resp = env.client.post("/v1/ledger/checkpoints", headers=env.auth("auditor"))
    assert resp.status_code == 201
    return verify_checkpoint(resp.get_json()["note"], NoteVerifier.from_vkey(env.node.vkey))


def test_append_then_fetch(env: ServerEnv) -> None:
    receipt = _append(env)
    assert receipt["seq"] == 10  # after init's entries (node, 7 keys, masking profiles, policy)
    assert HEX64.fullmatch(receipt["leaf_hash"])
    resp = _get(env, f"/v1/ledger/entries/{receipt['seq']}")
    got = resp.get_json()
    assert got["seq"] == receipt["seq"]
    assert got["leaf_hash"] == receipt["leaf_hash"] == leaf_hash(got["raw"].encode()).hex()
    assert json.loads(got["raw"]) == got["entry"]
    assert got["entry"]["action"] == "record.read"
    assert got["entry"]["subject"] == [PSEUDONYM]
    assert got["entry"]["time"] == receipt["time"]
    assert got["entry"]["request_id"] == receipt["request_id"]


def test_checkpoint_json_and_note(env: ServerEnv) -> None:
    got = _get(env, "/v1/ledger/checkpoint").get_json()
    signed = verify_checkpoint(got["note"], NoteVerifier.from_vkey(env.node.vkey))
    cp = signed.checkpoint
    assert got == {
        "origin": env.node.origin,
        "tree_size": cp.tree_size,
        "root_hash": cp.root_hash.hex(),
        "timestamp_ms": cp.timestamp_ms,
        "note": got["note"],
        "cosignatures": [],  # no witnesses on this node (tests/unit/appliance/test_witness_node.py has them)
        "witnessed": None,
    }
    text = _get(env, "/v1/ledger/checkpoint", headers={"Accept": "text/plain"})
    assert text.mimetype == "text/plain"
    assert "Accept" in text.headers["Vary"]
    assert text.get_data(as_text=True) == got["note"]


def test_checkpoint_is_signed_on_demand_when_none_exists(env: ServerEnv) -> None:
    # A ledger that was never checkpointed: drop init's checkpoint before serving it.
    env.node.close()
    (env.settings.data_dir / "ledger" / "checkpoints.log").unlink()
    env.node = Node.open(env.settings)
    env.client = create_app(env.settings, env.node).test_client()
    assert env.node.ledger.latest_checkpoint() is None
    got = _get(env, "/v1/ledger/checkpoint").get_json()
    assert got["tree_size"] == env.node.ledger.size == 10
    assert env.node.ledger.latest_checkpoint() is not None


def test_post_checkpoint_covers_new_entries(env: ServerEnv) -> None:
    before = _get(env, "/v1/ledger/checkpoint").get_json()["tree_size"]
    _append(env)
    assert _get(env, "/v1/ledger/checkpoint").get_json()["tree_size"] == before, "GET does not sign"
    assert _sign(env).checkpoint.tree_size == before + 1
    assert _get(env, "/v1/ledger/checkpoint").get_json()["tree_size"] == before + 1


def test_inclusion_proof_verifies_against_the_signed_root(env: ServerEnv) -> None:
    seqs = [_append(env)["seq"] for _ in range(5)]
    cp = _sign(env).checkpoint
    for seq in [0, *seqs]:
        proof = _get(env, f"/v1/ledger/proofs/inclusion?seq={seq}&size={cp.tree_size}").get_json()
        assert proof["tree_size"] == cp.tree_size
        assert proof["root_hash"] == cp.root_hash.hex()
        assert all(HEX64.fullmatch(h) for h in proof["path"])
        path = [bytes.fromhex(h) for h in proof["path"]]
        assert verify_inclusion(bytes.fromhex(proof["leaf_hash"]), seq, cp.tree_size, path, cp.root_hash)
    # Without size: against the latest checkpoint.
    default = _get(env, f"/v1/ledger/proofs/inclusion?seq={seqs[0]}").get_json()
    assert default["tree_size"] == cp.tree_size


def test_consistency_proof_between_two_checkpoints(env: ServerEnv) -> None:
    old = _sign(env).checkpoint
    for _ in range(3):
        _append(env)
    new = _sign(env).checkpoint
    proof = _get(
        env, f"/v1/ledger/proofs/consistency?first={old.tree_size}&second={new.tree_size}"
    ).get_json()
    assert (proof["first_root"], proof["second_root"]) == (old.root_hash.hex(), new.root_hash.hex())
    path = [bytes.fromhex(h) for h in proof["path"]]
    assert verify_consistency(old.tree_size, new.tree_size, path, old.root_hash, new.root_hash)
    default = _get(env, f"/v1/ledger/proofs/consistency?first={old.tree_size}").get_json()
    assert default == proof


def test_bundle_verifies_and_links_the_first_covering_checkpoint(env: ServerEnv) -> None:
    seq = _append(env)["seq"]
    _sign(env)  # first covers seq
    for _ in range(3):
        _append(env)
    latest = _sign(env)
    resp = _get(env, f"/v1/ledger/bundles/{seq}")
    assert resp.headers["Content-Disposition"] == f'attachment; filename="bundle-{seq}.json"'
    bundle = load_bundle(resp.get_data())
    report = verify_bundle(bundle, NoteVerifier.from_vkey(env.node.vkey))
    assert report.ok, report.reason
    assert report.checkpoint == latest.checkpoint
    assert (report.entries_checked, report.consistency_checked) == (1, 1)


def test_bundle_signs_a_checkpoint_when_none_covers_the_entry(env: ServerEnv) -> None:
    seq = _append(env)["seq"]
    bundle = _get(env, f"/v1/ledger/bundles/{seq}").get_json()
    report = verify_bundle(bundle, NoteVerifier.from_vkey(env.node.vkey))
    assert report.ok, report.reason
    assert report.checkpoint is not None and report.checkpoint.tree_size == seq + 1
    assert bundle["consistency"] == [], "the new checkpoint is the first to cover it"


def test_request_id_is_echoed_and_recorded(env: ServerEnv) -> None:
    resp = env.client.post(
        "/v1/ledger/entries",
        headers=env.auth("admin") | {"X-Request-Id": "crm-4711.a_b"},
        json={"action": "reply.checked"},
    )
    assert resp.headers["X-Request-Id"] == "crm-4711.a_b"
    assert resp.get_json()["request_id"] == "crm-4711.a_b"
    entry = _get(env, f"/v1/ledger/entries/{resp.get_json()['seq']}").get_json()
    assert entry["entry"]["request_id"] == "crm-4711.a_b"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 65, "semi;colon", "ünï"])
def test_unsafe_request_ids_are_replaced(env: ServerEnv, incoming: str) -> None:
    headers = env.auth("admin") | {"X-Request-Id": incoming}
    resp = env.client.post("/v1/ledger/entries", headers=headers, json={"action": "reply.checked"})
    rid = resp.headers["X-Request-Id"]
    assert re.fullmatch(r"req_[0-9a-f]{16}", rid)
    assert resp.get_json()["request_id"] == rid


def test_every_response_has_a_request_id(env: ServerEnv) -> None:
    ids = {env.client.get(url).headers["X-Request-Id"] for url in ["/healthz", "/openapi.json", "/nope"]}
    assert len(ids) == 3


def test_healthz(env: ServerEnv) -> None:
    got = env.client.get("/healthz").get_json()
    assert got == {"status": "ok", "ledger_size": 10, "origin": env.node.origin}


def test_reads_see_appends_of_another_process(env: ServerEnv) -> None:
    other = Node.open(env.settings)  # another gunicorn worker, in effect
    try:
        receipt = other.record("system:test", "test.elsewhere", request_id="from-other")
    finally:
        other.close()
    got = _get(env, f"/v1/ledger/entries/{receipt.seq}").get_json()
    assert got["entry"]["request_id"] == "from-other"
    assert env.client.get("/healthz").get_json()["ledger_size"] == receipt.seq + 1
