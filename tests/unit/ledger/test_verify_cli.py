"""``appliance-verify``: verdicts as exit codes 0/1/2, one line each, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ledger import merkle
from ledger.bundle import build_bundle
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.entry import canonical_json_stdlib
from ledger.verify_cli import main

ROOT_DIR = Path(__file__).resolve().parents[3]
ORIGIN = "appliance.example/ledger"
SIZE = 7


def _entries(n: int) -> list[bytes]:
    raws, prev = [], "0" * 64
    for seq in range(n):
        obj: dict[str, object] = {
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


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture(scope="module")
def leaves() -> list[bytes]:
    return [merkle.leaf_hash(r) for r in _entries(SIZE)]


@pytest.fixture
def files(tmp_path: Path, signer: NoteSigner, leaves: list[bytes]) -> dict[str, Path]:
    raws = _entries(SIZE)
    cps = {
        s: sign_checkpoint(
            Checkpoint(ORIGIN, s, merkle.root_hash(leaves[:s]), 1_767_225_600_000), signer
        ).text
        for s in (3, SIZE)
    }
    bundle = build_bundle(
        ORIGIN,
        cps[SIZE],
        [(s, raws[s], merkle.inclusion_proof(leaves, s)) for s in (2, 3)],
        [(cps[3], merkle.consistency_proof(leaves, 3))],
    )
    tampered = json.loads(json.dumps(bundle))
    tampered["entries"][0]["entry"] = tampered["entries"][0]["entry"].replace("agent:1", "agent:2")
    public = signer.public_key
    paths = {
        "vkey": signer.vkey() + "\n",
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "hex": public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex(),
        "other_vkey": NoteSigner.generate("other.example/log").vkey(),
        "bad_key": "not a key\n",
        "checkpoint": cps[SIZE],
        "tampered_checkpoint": cps[SIZE].replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n"),
        "bundle": json.dumps(bundle),
        "tampered_bundle": json.dumps(tampered),
        "not_json": "{not json",
        "spaced_checkpoint": cps[SIZE].replace(ORIGIN, ORIGIN.replace(".", " ", 1), 1),
        "spaced_bundle": json.dumps({**bundle, "origin": ORIGIN.replace(".", " ", 1)}),
    }
    out = {}
    for name, text in paths.items():
        out[name] = tmp_path / name
        out[name].write_text(text, "utf-8")
    out["missing"] = tmp_path / "missing"
    return out


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _expect(result: tuple[int, str, str], code: int, needle: str = "") -> str:
    got, out, err = result
    assert got == code, (out, err)
    if code == 2:
        assert out == ""
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert needle in err
        return err
    assert err == ""
    assert out.startswith("OK: " if code == 0 else "INVALID: ") and out.count("\n") == 1, out
    assert needle in out
    return out


# -- inclusion / consistency ----------------------------------------------------------------------------


def _hexes(hashes: list[bytes]) -> str:
    return ",".join(h.hex() for h in hashes)


def test_inclusion_ok_invalid_and_unusable(capsys: pytest.CaptureFixture[str], leaves: list[bytes]) -> None:
    root, path = merkle.root_hash(leaves), merkle.inclusion_proof(leaves, 4)
    args = ["inclusion", "--leaf-hash", leaves[4].hex(), "--index", 4, "--size", SIZE, "--root", root.hex()]
    _expect(_run(capsys, *args, "--path", _hexes(path)), 0, "index 4")
    _expect(_run(capsys, *args, "--path", _hexes(path).upper()), 0)
    _expect(_run(capsys, *args, "--path", _hexes(path[:-1])), 1, "wrong number of hashes")
    _expect(_run(capsys, *args, "--path", _hexes(path[::-1])), 1, "leads from the leaf to root")
    _expect(_run(capsys, *args, "--path", _hexes(path)[:-1]), 2, "--path")
    _expect(_run(capsys, *args, "--path", "xyz"), 2, "64 hex characters")
    _expect(_run(capsys, *args[:4], -1, *args[5:], "--path", _hexes(path)), 2, "--index")
    _expect(_run(capsys, *args[:4], SIZE, *args[5:], "--path", _hexes(path)), 2, "not below --size")
    _expect(_run(capsys, *args), 2, "required: --path")


def test_inclusion_in_a_tree_of_one_takes_an_empty_path(capsys: pytest.CaptureFixture[str]) -> None:
    leaf = merkle.leaf_hash(b"only")
    args = ["inclusion", "--leaf-hash", leaf.hex(), "--index", 0, "--size", 1, "--root", leaf.hex()]
    _expect(_run(capsys, *args, "--path", ""), 0)


def test_consistency_ok_invalid_and_unusable(capsys: pytest.CaptureFixture[str], leaves: list[bytes]) -> None:
    old, new = merkle.root_hash(leaves[:3]).hex(), merkle.root_hash(leaves).hex()
    path = _hexes(merkle.consistency_proof(leaves, 3))
    base = ["consistency", "--old-size", 3, "--new-size", SIZE, "--old-root", old, "--new-root", new]
    _expect(_run(capsys, *base, "--path", path), 0, "prefix")
    _expect(_run(capsys, *base[:6], new, *base[7:], "--path", path), 1, "does not prove")
    _expect(_run(capsys, *base[:2], 9, *base[3:], "--path", path), 2, "larger than --new-size")
    _expect(_run(capsys, *base[:2], "3.0", *base[3:], "--path", path), 2, "--old-size")


# -- checkpoint / bundle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["vkey", "pem", "hex"])
def test_checkpoint_verifies_with_every_key_format(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], leaves: list[bytes], key: str
) -> None:
    out = _expect(_run(capsys, "checkpoint", files["checkpoint"], "--pubkey", files[key]), 0)
    assert f"size {SIZE}" in out and merkle.root_hash(leaves).hex() in out
    assert "2026-01-01T00:00:00.000Z" in out


def test_checkpoint_verdicts(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    cp, key = files["checkpoint"], files["vkey"]
    _expect(_run(capsys, "checkpoint", files["tampered_checkpoint"], "--pubkey", key), 1, "does not verify")
    _expect(_run(capsys, "checkpoint", files["bundle"], "--pubkey", key), 1, "blank line")
    _expect(_run(capsys, "checkpoint", cp, "--pubkey", files["other_vkey"]), 1, "origin")
    for key in ("vkey", "pem", "hex"):  # an origin that cannot name a key is tampering, not bad input
        _expect(_run(capsys, "checkpoint", files["spaced_checkpoint"], "--pubkey", files[key]), 1, "origin")
        _expect(_run(capsys, "bundle", files["spaced_bundle"], "--pubkey", files[key]), 1, "origin")
    _expect(_run(capsys, "checkpoint", files["missing"], "--pubkey", key), 2, "cannot read")
    _expect(_run(capsys, "checkpoint", cp, "--pubkey", files["missing"]), 2, "cannot read")
    _expect(_run(capsys, "checkpoint", cp, "--pubkey", files["bad_key"]), 2, "--pubkey")
    _expect(_run(capsys, "checkpoint", cp), 2, "--pubkey")


@pytest.mark.parametrize("key", ["vkey", "pem"])
def test_bundle_verifies(capsys: pytest.CaptureFixture[str], files: dict[str, Path], key: str) -> None:
    _expect(
        _run(capsys, "bundle", files["bundle"], "--pubkey", files[key]),
        0,
        "entries checked: 2, consistency proofs checked: 1",
    )


def test_bundle_verdicts(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    key = files["vkey"]
    _expect(_run(capsys, "bundle", files["tampered_bundle"], "--pubkey", key), 1, "entries[0].leaf_hash")
    _expect(_run(capsys, "bundle", files["bundle"], "--pubkey", files["other_vkey"]), 1, "checkpoint:")
    _expect(_run(capsys, "bundle", files["not_json"], "--pubkey", key), 2, "not JSON")
    _expect(_run(capsys, "bundle", files["checkpoint"], "--pubkey", key), 2, "not JSON")
    _expect(_run(capsys, "bundle", files["missing"].parent, "--pubkey", key), 2, "cannot read")
    _expect(_run(capsys, "bundle", files["bundle"], "--pubkey", files["bad_key"]), 2, "--pubkey")


# -- usage -------------------------------------------------------------------------------------------------


def test_help_reads_well_and_returns_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert "examples:" in out and "exit status" in out
    for command in ("checkpoint", "bundle", "inclusion", "consistency"):
        assert f"appliance-verify {command}" in out
        code, sub, _ = _run(capsys, command, "--help")
        assert code == 0 and f"usage: appliance-verify {command}" in sub


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["inclusion", "--bogus"], ["checkpoint"]])
def test_usage_errors_return_two(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    _expect(_run(capsys, *argv), 2, "--help")


def test_exit_codes_through_a_real_process(files: dict[str, Path]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}

    def run(*argv: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ledger.verify_cli", *map(str, argv)],
            cwd=ROOT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = run("bundle", files["bundle"], "--pubkey", files["vkey"])
    invalid = run("bundle", files["tampered_bundle"], "--pubkey", files["vkey"])
    unusable = run("bundle", files["not_json"], "--pubkey", files["vkey"])
    usage = run("inclusion", "--index", "-3")
    assert [p.returncode for p in (ok, invalid, unusable, usage)] == [0, 1, 2, 2]
    assert ok.stdout.startswith("OK: ") and invalid.stdout.startswith("INVALID: ")
    for p in (unusable, usage):
        assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1
    assert all("Traceback" not in p.stderr for p in (ok, invalid, unusable, usage))


@pytest.mark.parametrize("key", ["vkey", "pem"])
def test_every_byte_flip_of_a_checkpoint_file_is_invalid_not_unusable(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], key: str
) -> None:
    raw = files["checkpoint"].read_bytes()
    flipped = files["checkpoint"].with_name("flipped")
    for pos in range(len(raw)):
        flipped.write_bytes(raw[:pos] + bytes([raw[pos] ^ 0x01]) + raw[pos + 1 :])
        _expect(_run(capsys, "checkpoint", flipped, "--pubkey", files[key]), 1)
