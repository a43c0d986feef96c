"""The `appliance` command: init, keys, ledger; bad input exits 2 with a message, never a traceback."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

from appliance.cli import cli


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_NODE__DATA_DIR", str(tmp_path / "node"))
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    return invoke


def test_init_creates_private_keys_and_prints_api_keys_once(run, tmp_path):
    out = run("init", "--demo").output
    data = tmp_path / "node"
    for name in (
        "keys/signing.key",
        "keys/pseudonym.key",
        "keys/masking.key",
        "keys/field.keys",
        "keys/api_keys.json",
        "demo-api-keys.json",
    ):
        assert stat.S_IMODE(os.stat(data / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    tokens = json.loads((data / "demo-api-keys.json").read_text())
    assert set(tokens) == {"admin", "agent", "supervisor", "analyst", "custodian", "auditor", "ops"}
    for token in tokens.values():
        assert token in out
        assert token not in (data / "keys/api_keys.json").read_text()  # stored hashed only
    assert "already" in run("init", "--if-missing").output
    assert "already holds a node" in run("init", code=2).output
    # The demo's model playbook has a live model trained on the demo history: its job can run at once.
    models = {m["name"]: m for m in json.loads(run("model", "list", "--json").output)}
    churn = models["churn_retention"]
    assert churn["live"] is not None and churn["versions"][0]["metrics"]["auc"] > 0.6


def test_keys_create_list_revoke_are_recorded_in_the_ledger(run):
    run("init")
    token = run("keys", "create", "auditor", "--label", "external audit").output.strip()
    key_id = token.split("_")[1]
    assert key_id in run("keys", "list").output
    run("keys", "revoke", key_id)
    assert "revoked" in run("keys", "list").output
    assert "no API key" in run("keys", "revoke", "nope", code=2).output
    head = json.loads(run("ledger", "head").output)
    assert head["size"] == 1 + 7 + 2 + 2  # init, 7 keys, masking profiles, policy, created + revoked


def test_prove_and_export_roundtrip_through_the_offline_verifier(run, tmp_path):
    from ledger.verify_cli import main as verify_main

    run("init")
    for i in range(5):
        run("ledger", "append", "--action", "test.note", "--details", json.dumps({"i": i}))
    proof = json.loads(run("ledger", "prove", "--seq", "3", "--size", "10").output)
    assert (
        verify_main(
            [
                "inclusion",
                "--leaf-hash",
                proof["leaf_hash"],
                "--index",
                "3",
                "--size",
                "10",
                "--root",
                proof["root_hash"],
                "--path",
                ",".join(proof["path"]),
            ]
        )
        == 0
    )
    cons = json.loads(run("ledger", "prove", "--from", "4", "--size", "12").output)
    assert (
        verify_main(
            [
                "consistency",
                "--old-size",
                "4",
                "--new-size",
                "12",
                "--old-root",
                cons["first_root"],
                "--new-root",
                cons["second_root"],
                "--path",
                ",".join(cons["path"]),
            ]
        )
        == 0
    )
    out = tmp_path / "b.json"
    run("ledger", "export", "--seq", "2", "--seq", "11", "--out", str(out))
    assert verify_main(["bundle", str(out), "--pubkey", str(tmp_path / "node" / "ledger.pub")]) == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["ledger", "prove", "--seq", "999"], "not in the tree"),
        (["ledger", "prove"], "exactly one of"),
        (["ledger", "append", "--action", "Bad"], "dotted lower-case"),
        (["ledger", "append", "--action", "a.b", "--details", "{x"], "not JSON"),
        (["ledger", "append", "--action", "a.b", "--subject", "13800138000"], "not a pseudonym"),
        (["ledger", "append", "--action", "a.b", "--details", '{"f": 0.5}'], "floats"),
        (["ledger", "export", "--seq", "500", "--out", "x.json"], "does not exist"),
        (["keys", "create", "root"], "Invalid value"),
    ],
)
def test_bad_input_exits_2_with_a_reason(run, args, fragment):
    run("init")
    assert fragment in run(*args, code=2).output


def test_no_node_and_bad_settings_exit_2(run, monkeypatch):
    assert "appliance init" in run("ledger", "head", code=2).output
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "99999")
    out = run("init", code=2).output
    assert "server.port" in out and "APPLIANCE_SERVER__PORT" in out


def test_ledger_verify_names_the_first_bad_entry(run, tmp_path):
    run("init")
    for i in range(3):
        run("ledger", "append", "--action", "test.note", "--details", json.dumps({"i": i}))
    assert run("ledger", "verify").output.startswith("OK: 13 entries")
    seg_dir = tmp_path / "node" / "ledger" / "segments"
    seg = seg_dir / sorted(os.listdir(seg_dir))[0]
    data = bytearray(seg.read_bytes())
    data[-10] ^= 0x01
    seg.write_bytes(bytes(data))
    out = run("ledger", "verify", code=1).output
    assert out.startswith("INVALID: entry 12 (seg-0000000000000000.log offset")
