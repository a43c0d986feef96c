"""``appliance-verify`` on format 2 bundles: the report, --json, witnesses, fork (exit 3), --rpc on anvil."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.bundle import build_bundle_v2
from ledger.checkpoint import Checkpoint, NoteSigner, SignedCheckpoint, sign_checkpoint
from ledger.entry import canonical_json_stdlib
from ledger.verify_cli import main
from ledger.witness import WitnessSigner, merge_signatures

ORIGIN = "appliance.example/ledger"
LOG = NoteSigner.generate(ORIGIN)
W1, W2 = WitnessSigner.generate("witness.example/w1"), WitnessSigner.generate("witness.example/w2")


def _raws(n: int) -> list[bytes]:
    raws, prev = [], "0" * 64
    for seq in range(n):
        obj = {
            "action": "record.read",
            "actor": "agent:1",
            "details": {},
            "prev": prev,
            "request_id": None,
            "seq": seq,
            "subject": [f"cust:{seq:016x}"],
            "time": "2026-01-01T00:00:00.000000Z",
        }
        raws.append(canonical_json_stdlib(obj))
        prev = merkle.leaf_hash(raws[-1]).hex()
    return raws


RAWS = _raws(12)
LEAVES = [merkle.leaf_hash(r) for r in RAWS]
FORKED = [merkle.leaf_hash(b"rewritten"), *LEAVES[1:]]


def signed(size: int, leaves: list[bytes] = LEAVES) -> SignedCheckpoint:
    return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.root_hash(leaves[:size]), 1_767_225_600_000), LOG)


def anchor(size: int, leaves: list[bytes] = LEAVES) -> dict[str, Any]:
    return {
        "chain": "ethereum",
        "network": "31337",
        "contract": "0x" + "ab" * 20,
        "tree_size": size,
        "root": merkle.root_hash(leaves[:size]).hex(),
        "tx": "0x" + "cd" * 32,
        "block": 7,
        "status": "confirmed",
        "time": "2026-01-01T00:00:00Z",
    }


def make_bundle(
    size: int = 10, old: int = 6, leaves: list[bytes] = LEAVES, anchors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    s = signed(size, leaves)
    text = merge_signatures(s.text, W1.cosign(s.body, 1_767_225_700) + "\n")
    entries = [(q, RAWS[q], merkle.inclusion_proof(leaves[:size], q)) for q in (2, 5)]
    cons = [(signed(old).text, merkle.consistency_proof(leaves[:size], old))]
    return build_bundle_v2(
        ORIGIN,
        text,
        entries,
        cons,
        anchors if anchors is not None else [anchor(old)],
        {"subject": "cust:0000000000000002"},
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {
        "pub": LOG.vkey() + "\n",
        "w1": W1.vkey() + "\n",
        "w2": W2.vkey() + "\n",
        "bundle": json.dumps(make_bundle()),
        "forked": json.dumps(make_bundle(leaves=FORKED, anchors=[])),
        "ck6": signed(6).text,
        "ck10": signed(10).text,
        "ck10f": signed(10, FORKED).text,
        "ck6f": signed(6, FORKED).text,
        "other": sign_checkpoint(
            Checkpoint(ORIGIN, 10, merkle.root_hash(FORKED[:10]), 1), NoteSigner.generate(ORIGIN)
        ).text,
    }
    paths = {}
    for name, text in out.items():
        paths[name] = tmp_path / name
        paths[name].write_text(text)
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_report_names_what_was_checked(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, out, err = run(
        capsys, "bundle", files["bundle"], "--pubkey", files["pub"], "--witness-key", files["w1"]
    )
    assert (code, err) == (0, ""), out
    lines = out.splitlines()
    assert lines[0].startswith("OK: checkpoint of appliance.example/ledger at size 10 verified")
    assert all(line.startswith("  ") for line in lines[1:])
    assert "  witness witness.example/w1+" in out and "cosigned at 2026-01-01T" in out
    assert "anchor ethereum 31337" in out and "on chain: not checked (no --rpc)" in out
    assert "selection (as exported, not signed): subject=cust:0000000000000002" in out
    # The key may be given as the vkey itself.
    assert (
        run(capsys, "bundle", files["bundle"], "--pubkey", files["pub"], "--witness-key", W1.vkey())[0] == 0
    )


def test_json_report(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    code, out, _ = run(
        capsys, "bundle", files["bundle"], "--pubkey", files["pub"], "--witness-key", files["w1"], "--json"
    )
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["exit_status"] == 0 and report["fork"] is None
    assert report["witnesses"][0]["ok"] and report["witnesses"][0]["time"] == 1_767_225_700
    assert report["anchors"][0]["onchain"] is None and report["checkpoint"]["tree_size"] == 10
    code, out, _ = run(
        capsys, "bundle", files["bundle"], "--pubkey", files["pub"], "--witness-key", files["w2"], "--json"
    )
    report = json.loads(out)
    assert code == 1 and not report["ok"] and "not cosigned by witness witness.example/w2" in report["reason"]


def test_witness_options(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    base = ["bundle", files["bundle"], "--pubkey", files["pub"]]
    code, out, _ = run(capsys, *base, "--witness-key", files["w1"], "--witness-key", files["w2"])
    assert code == 1 and out.startswith("INVALID: cosignatures: 1 of the 2 trusted witnesses")
    code, out, _ = run(
        capsys, *base, "--witness-key", files["w1"], "--witness-key", files["w2"], "--min-witnesses", 1
    )
    assert code == 0, out
    code, _, err = run(capsys, *base, "--witness-key", files["w1"], "--min-witnesses", 2)
    assert code == 2 and "only 1 --witness-key" in err
    code, _, err = run(capsys, *base, "--witness-key", files["pub"])
    assert code == 2 and err.startswith("error: --witness-key") and "0x04" in err
    code, _, err = run(capsys, *base, "--witness-key", files["pub"].parent / "missing")
    assert code == 2 and "cannot read" in err


def test_a_forked_bundle_exits_3_with_both_checkpoints(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, out, err = run(capsys, "bundle", files["forked"], "--pubkey", files["pub"])
    assert (code, err) == (3, "")
    first, *rest = out.splitlines()
    assert first.startswith("fork: the log signed two conflicting checkpoints: size 6 with root")
    assert "  checkpoint A, signed by the log:" in rest and "  checkpoint B, signed by the log:" in rest
    assert f"    {ORIGIN}" in rest
    code, out, _ = run(capsys, "bundle", files["forked"], "--pubkey", files["pub"], "--json")
    report = json.loads(out)
    assert code == 3 and report["exit_status"] == 3 and report["fork"]["prefix_root"]


def test_fork_command(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    pub = files["pub"]
    code, out, _ = run(capsys, "fork", files["ck10"], files["ck10f"], "--pubkey", pub)
    assert code == 3 and out.startswith("fork: the log signed two conflicting checkpoints of size 10")
    assert run(capsys, "fork", files["ck10"], files["ck10"], "--pubkey", pub)[:2] == (
        0,
        f"OK: no fork: both checkpoints are of size 10 with root {merkle.root_hash(LEAVES[:10]).hex()}\n",
    )
    code, _, err = run(capsys, "fork", files["ck6"], files["ck10"], "--pubkey", pub)
    assert code == 2 and "give --path" in err and "--from 6 --size 10" in err
    good = ",".join(h.hex() for h in merkle.consistency_proof(LEAVES[:10], 6))
    assert run(capsys, "fork", files["ck10"], files["ck6"], "--pubkey", pub, "--path", good)[0] == 0
    forked = ",".join(h.hex() for h in merkle.consistency_proof(FORKED[:10], 6))
    code, out, _ = run(capsys, "fork", files["ck6"], files["ck10f"], "--pubkey", pub, "--path", forked)
    assert code == 3 and "whose first 6 entries have root" in out
    code, out, _ = run(
        capsys, "fork", files["ck6"], files["ck10"], "--pubkey", pub, "--path", ",".join(["00" * 32] * 3)
    )
    assert code == 1 and "proves nothing" in out
    code, out, _ = run(capsys, "fork", files["ck10"], files["other"], "--pubkey", pub)
    assert code == 1 and "only checkpoints the log signed" in out


def test_rpc_needs_a_reachable_node(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    pytest.importorskip("web3", reason="--rpc uses the Ethereum back end, which needs web3")
    code, _, err = run(
        capsys, "bundle", files["bundle"], "--pubkey", files["pub"], "--rpc", "http://127.0.0.1:9"
    )
    assert code == 2 and "RPC unreachable" in err and "not checked on chain" in err
    code, _, err = run(capsys, "bundle", files["bundle"], "--pubkey", files["pub"], "--rpc", "127.0.0.1:8545")
    assert code == 2 and "not an http(s)" in err


def test_rpc_checks_the_anchors_on_a_real_chain(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, anvil: str
) -> None:
    """Anchored on anvil by the real back end; the verifier finds it there, and not a forged tx."""
    pytest.importorskip("web3", reason="--rpc uses the Ethereum back end, which needs web3")
    from support.anvil import Anvil

    from ledger.anchors.ethereum import EthereumAnchor

    _, key = Anvil(int(anvil.rsplit(":", 1)[1])).new_account()
    contract = EthereumAnchor.deploy(anvil, key)
    record = EthereumAnchor.connect(anvil, contract, key, confirmations=1).anchor(
        6, merkle.root_hash(LEAVES[:6])
    )
    bundle = make_bundle(anchors=[record.as_dict()])
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    (tmp_path / "pub").write_text(LOG.vkey())
    code, out, err = run(capsys, "bundle", tmp_path / "b.json", "--pubkey", tmp_path / "pub", "--rpc", anvil)
    assert (code, err) == (0, ""), out
    assert "anchors found on chain: 1" in out.splitlines()[0] and "on chain: ok" in out
    bundle["anchors"][0]["tx"] = "0x" + "ee" * 32
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    code, out, _ = run(
        capsys, "bundle", tmp_path / "b.json", "--pubkey", tmp_path / "pub", "--rpc", anvil, "--json"
    )
    report = json.loads(out)
    assert code == 1 and report["reason"].startswith("anchors[0] is not on chain as recorded")
    assert report["anchors"][0]["onchain"] != "ok"
