"""`appliance store ...` on a real node in tmp_path: imports, rotation, stats, demo; ledger entries."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from appliance.node import Node
from appliance.settings import load_settings


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_NODE__DATA_DIR", str(tmp_path / "node"))
    monkeypatch.setenv("APPLIANCE_STORE__IMPORT_BATCH_ROWS", "2")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    invoke("init")
    return invoke


def _entries(tmp_path, action: str) -> list[dict]:
    with Node.open(load_settings(node={"data_dir": tmp_path / "node"}), readonly=True) as node:
        entries = [node.ledger.entry(i) for i in range(node.ledger.size)]
    return [e.as_dict() for e in entries if e.action == action]


CSV = (
    "external_id,region,full_name,mobile,segment\n"
    "C1,CN,张三,13800138000,mass\n"
    "C2,CN,李四,13900139000,sme\n"
    "C3,US,Jane Doe,,mass\n"
)


def test_init_creates_the_store_and_a_private_field_keyring(run, tmp_path):
    keys = tmp_path / "node" / "keys" / "field.keys"
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    assert (tmp_path / "node" / "store.db").exists()
    stats = json.loads(run("store", "stats").output)
    assert (stats["backend"], stats["customers"]) == ("sqlite", 0)
    assert [k["status"] for k in stats["field_keys"]] == ["active"]


def test_import_records_counts_and_the_file_digest(run, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    out = run("store", "import", str(path)).output
    assert "imported 3 customers" in out and "2 batches" in out
    assert json.loads(run("store", "stats").output)["customers"] == 3
    [entry] = _entries(tmp_path, "store.imported")
    assert entry["actor"] == "admin:cli" and entry["subject"] == []
    assert entry["details"] == {
        "kind": "customers",
        "format": "csv",
        "rows": 3,
        "batches": 2,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "complete": True,
    }
    assert "13800138000" not in json.dumps(entry, ensure_ascii=False) and "张三" not in json.dumps(entry)


def test_a_bad_row_exits_2_naming_file_line_and_field(run, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(CSV + "C4,CN,王五,12345,mass\n", encoding="utf-8")
    result = run("store", "import", str(path), code=2)
    assert f"{path} line 5: field mobile: does not look like a CN_MOBILE value" in result.output
    assert "nothing from this batch was written" in result.output
    assert json.loads(run("store", "stats").output)["customers"] == 0
    assert _entries(tmp_path, "store.imported") == []


def test_dry_run_and_event_import(run, tmp_path):
    customers = tmp_path / "c.jsonl"
    customers.write_text(
        "\n".join(json.dumps(r) for r in [{"external_id": "C1", "region": "US", "full_name": "Ann"}]) + "\n"
    )
    assert "1 customers rows checked" in run("store", "import", str(customers), "--dry-run").output
    assert json.loads(run("store", "stats").output)["customers"] == 0
    run("store", "import", str(customers), "--format", "jsonl")
    events = tmp_path / "e.txt"
    events.write_text(
        "external_id,ts,kind\nC1,2024-05-01T08:00:00Z,login\nC1,2024-05-02T08:00:00Z,purchase\n"
    )
    assert "give --format" in run("store", "import", str(events), "--kind", "events", code=2).output
    run("store", "import", str(events), "--kind", "events", "--format", "csv")
    assert json.loads(run("store", "stats").output)["events"] == 2


def test_rotate_keys_and_demo(run, tmp_path):
    out = run("store", "demo", "--customers", "8", "--seed", "5").output
    assert "8 customers" in out
    assert "seed 5" in run("store", "demo", "--customers", "8", "--seed", "5", code=2).output
    before = json.loads(run("store", "stats").output)
    [old] = before["field_keys"]
    out = run("store", "rotate-keys").output
    assert f"retired: {old['key_id']}" in out
    after = json.loads(run("store", "stats").output)
    states = {k["key_id"]: (k["status"], k["values"]) for k in after["field_keys"]}
    assert states[old["key_id"]] == ("retired", 0)
    [(new_id, (status, values))] = [(k, v) for k, v in states.items() if k != old["key_id"]]
    assert status == "active" and values == old["values"] > 0
    [rotated] = _entries(tmp_path, "store.keys_rotated")
    assert rotated["details"]["new_key_id"] == new_id and rotated["details"]["retired"] == [old["key_id"]]
    assert _entries(tmp_path, "store.demo_loaded")[0]["details"]["customers"] == 8


def test_node_on_postgresql(tmp_path, monkeypatch, pg_server):
    """The node wires store.url through: init, import and reopen against the real server."""
    pg_server.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public", database="appliance_test")
    monkeypatch.setenv("APPLIANCE_NODE__DATA_DIR", str(tmp_path / "node"))
    monkeypatch.setenv("APPLIANCE_STORE__URL", pg_server.url("appliance_test"))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    path = tmp_path / "c.csv"
    path.write_text(CSV, encoding="utf-8")
    result = runner.invoke(cli, ["store", "import", str(path)])
    assert result.exit_code == 0, result.output
    stats = json.loads(runner.invoke(cli, ["store", "stats"]).output)
    assert (stats["backend"], stats["customers"]) == ("postgresql", 3)
    assert not (tmp_path / "node" / "store.db").exists()
