"""Evidence bundles (format 2) from a real node: selection, cosignatures, anchors, CLI and HTTP, refusals.

The anchors are real anchorings on an in-process Ethereum chain (eth-tester), the witness is a real
witness server on 127.0.0.1; every bundle is checked with the offline verifier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ServerEnv
from support.witness_server import RunningWitness, start_witness

from appliance.anchoring import AnchorService
from appliance.cli import cli
from appliance.errors import LedgerQueryInvalid, NothingSelected
from appliance.evidence import Selection, export_bundle
from appliance.ledger_query import find_entries
from ledger.bundle import BUNDLE_FORMAT_V2, load_bundle, verify_bundle
from ledger.checkpoint import NoteVerifier, parse_checkpoint
from ledger.verify_cli import main as verify_main
from ledger.witness import WitnessVerifier

ALICE = "cust:" + "a1" * 8
BOB = "cust:" + "b2" * 8
ACTOR = "admin:test"


@pytest.fixture
def history(env: ServerEnv, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Entries about two subjects, two anchorings on a real chain, a witness that cosigned in between."""
    from support.eth_chain import in_process_chain

    node = env.node
    node._anchoring = AnchorService(node, in_process_chain().anchor)
    w = start_witness(tmp_path / "w", "witness.example/w1", [NoteVerifier.from_vkey(node.vkey)])
    try:
        node.witnesses.add(w.url, w.vkey, actor=ACTOR)
        for i in range(6):
            node.record("agent:1", "record.read" if i % 2 else "reply.checked", [ALICE if i < 4 else BOB])
        first = node.anchoring.anchor_now(actor=ACTOR)["anchored"]
        node.record("agent:1", "record.read", [ALICE, BOB])
        node.ledger.sign_checkpoint()
        assert node.witnesses.tick()["cosigned"] == ["witness.example/w1"]
        node.record("agent:1", "record.masked", [BOB])
        second = node.anchoring.anchor_now(actor=ACTOR)["anchored"]
        assert first and second and second["tree_size"] > first["tree_size"]
        yield {"witness": w, "anchors": (first, second)}
    finally:
        w.close()


def _verify(env: ServerEnv, bundle: dict[str, Any], witness: RunningWitness | None = None) -> None:
    keys = [WitnessVerifier.from_vkey(witness.vkey)] if witness else []
    report = verify_bundle(bundle, NoteVerifier.from_vkey(env.node.vkey), witnesses=keys)
    assert report.ok, report.reason


def test_subject_bundle_carries_cosignatures_anchors_and_proofs(
    env: ServerEnv, history: dict[str, Any]
) -> None:
    node = env.node
    bundle = export_bundle(node, Selection(subject=ALICE), actor=ACTOR)
    assert bundle["format"] == BUNDLE_FORMAT_V2
    assert [e["seq"] for e in bundle["entries"]] == [s for s, _ in find_entries(node.ledger, subject=ALICE)][
        : len(bundle["entries"])
    ]
    assert all(ALICE in json.loads(e["entry"])["subject"] for e in bundle["entries"])
    # The cosigned checkpoint covers every ALICE entry, so it is the bundle's: the witness vouches for it.
    _verify(env, bundle, history["witness"])
    cp = parse_checkpoint(bundle["checkpoint"]).checkpoint
    # Both anchorings are in, with their checkpoints: the second is newer than the bundle's checkpoint.
    anchored = {a["tree_size"] for a in bundle["anchors"]}
    assert anchored == {history["anchors"][0]["tree_size"], history["anchors"][1]["tree_size"]}
    sizes = {parse_checkpoint(c["checkpoint"]).checkpoint.tree_size for c in bundle["consistency"]}
    assert anchored - {cp.tree_size} <= sizes
    assert max(sizes) > cp.tree_size, "a later anchored checkpoint, proven from the bundle's"
    # The export itself is a ledger entry about the subject.
    (_, exported), *_ = find_entries(node.ledger, action="ledger.exported", newest_first=True)
    assert exported.subject == (ALICE,) and exported.details["entries"] == len(bundle["entries"])


def test_filters_combine_and_seqs_are_added(env: ServerEnv, history: dict[str, Any]) -> None:
    node = env.node
    reads = export_bundle(node, Selection(subject=ALICE, action="record.*"), actor=ACTOR)
    want = [s for s, e in find_entries(node.ledger, subject=ALICE) if e.action.startswith("record.")]
    assert [e["seq"] for e in reads["entries"]] == want
    plus = export_bundle(node, Selection(subject=BOB, action="record.masked", seqs=(0,)), actor=ACTOR)
    masked = [s for s, _ in find_entries(node.ledger, subject=BOB, action="record.masked")]
    assert [e["seq"] for e in plus["entries"]] == sorted({0, *masked})
    _verify(env, plus)
    now = datetime.now(UTC)
    recent = export_bundle(
        node, Selection(since=now - timedelta(minutes=5), until=now + timedelta(minutes=5)), actor=ACTOR
    )
    assert len(recent["entries"]) >= 8
    _verify(env, recent)


def test_refusals(env: ServerEnv, history: dict[str, Any]) -> None:
    node = env.node
    size = node.ledger.refresh()
    with pytest.raises(NothingSelected):
        export_bundle(node, Selection(subject="cust:" + "c3" * 8), actor=ACTOR)
    with pytest.raises(NothingSelected):
        export_bundle(node, Selection(since=datetime.now(UTC) + timedelta(days=1)), actor=ACTOR)
    with pytest.raises(LedgerQueryInvalid, match="at most 2"):
        export_bundle(node, Selection(subject=ALICE), actor=ACTOR, max_entries=2)
    with pytest.raises(LedgerQueryInvalid, match="pseudonym"):
        export_bundle(node, Selection(subject="alice@example.com"), actor=ACTOR)
    assert node.ledger.refresh() == size, "a refused export records nothing"


# -- HTTP --------------------------------------------------------------------------------------------------
def test_http_bundles(env: ServerEnv, history: dict[str, Any]) -> None:
    get = lambda q: env.client.get(f"/v1/ledger/bundles?{q}", headers=env.auth("auditor"))  # noqa: E731
    resp = get(f"subject={ALICE}&action=record.*")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="bundle-')
    bundle = load_bundle(resp.get_data())
    _verify(env, bundle, history["witness"])
    assert bundle["selection"]["subject"] == ALICE and bundle["selection"]["action"] == "record.*"
    (_, exported), *_ = find_entries(env.node.ledger, action="ledger.exported", newest_first=True)
    assert exported.actor.startswith("auditor:") and exported.request_id == resp.headers["X-Request-Id"]
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert get(f"from={since}").status_code == 200
    env.problem(get(f"subject={ALICE}&limit=2"), 422, "invalid-ledger-query")
    env.problem(get("subject=cust:" + "c3" * 8), 404, "nothing-selected")
    env.problem(get("subject=alice@example.com"), 422, "invalid-ledger-query")
    env.problem(get("action=Record"), 422, "invalid-ledger-query")
    env.problem(get("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"), 422, "invalid-ledger-query")
    env.problem(get("from=yesterday"), 400, "invalid-parameter")
    env.problem(get("limit=0&subject=" + ALICE), 400, "invalid-parameter")
    env.problem(get("limit=10001&subject=" + ALICE), 400, "invalid-parameter")
    env.problem(get(""), 400, "invalid-parameter")
    env.problem(get("colour=red"), 400, "invalid-parameter")
    assert env.client.get("/v1/ledger/bundles?subject=" + ALICE, headers=env.auth("agent")).status_code == 403


# -- CLI -----------------------------------------------------------------------------------------------------
def test_cli_export_and_verify(
    env: ServerEnv, history: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPLIANCE_NODE__DATA_DIR", str(env.settings.data_dir))
    runner = CliRunner()
    out = tmp_path / "alice.json"
    result = runner.invoke(
        cli, ["ledger", "export", "--subject", ALICE, "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "1 cosignature(s), 2 anchor(s)" in result.output
    pub = tmp_path / "node.pub"
    pub.write_text(env.node.vkey + "\n")
    wkey = tmp_path / "w.vkey"
    wkey.write_text(history["witness"].vkey + "\n")
    assert verify_main(["bundle", str(out), "--pubkey", str(pub), "--witness-key", str(wkey)]) == 0
    assert verify_main(["bundle", str(out), "--pubkey", str(pub), "--witness-key", str(wkey), "--json"]) == 0

    def fails(*args: str, fragment: str) -> None:
        before = out.stat().st_mtime_ns
        r = runner.invoke(cli, ["ledger", "export", *args, "--out", str(out)], catch_exceptions=False)
        assert r.exit_code == 2 and fragment in r.output and "Traceback" not in r.output, r.output
        assert out.stat().st_mtime_ns == before, "nothing half-written"

    fails(fragment="select entries")
    fails("--subject", "cust:" + "c3" * 8, fragment="no entry")
    fails("--subject", ALICE, "--max-entries", "2", fragment="at most 2")
    fails("--from", "last tuesday", fragment="ISO 8601")
    fails("--from", "2026-02-01", "--to", "2026-01-01", fragment="swap")
    fails("--seq", "99999", fragment="does not exist")
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    r = runner.invoke(cli, ["ledger", "export", "--from", day, "--action", "record.read", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert verify_main(["bundle", str(out), "--pubkey", str(pub)]) == 0
