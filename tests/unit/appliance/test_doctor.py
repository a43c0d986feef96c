"""``appliance doctor``: a healthy node passes; loose key permissions and an altered ledger fail it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from appliance.doctor import run_checks
from appliance.node import Node
from appliance.settings import load_settings


@pytest.fixture
def data(tmp_path: Path) -> Path:
    settings = load_settings(node={"data_dir": tmp_path / "node"})
    Node.init(settings)
    return tmp_path / "node"


def _doctor(data: Path, *args: str) -> tuple[int, list[dict[str, str]]]:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(data), "doctor", "--json", *args], catch_exceptions=False
    )
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.output)


def test_a_fresh_node_is_healthy_and_says_what_is_not_set_up(data: Path) -> None:
    code, checks = _doctor(data)
    status = {c["name"]: c["status"] for c in checks}
    assert code == 0
    assert status["keys"] == status["disk"] == status["ledger"] == status["store"] == status["policy"] == "ok"
    assert (
        status["privacy"] == "warn"
        and "keygen" in next(c for c in checks if c["name"] == "privacy")["detail"]
    )
    assert status["anchors"] == "warn"


def test_loose_key_permissions_fail_with_the_fix(data: Path) -> None:
    os.chmod(data / "keys" / "signing.key", 0o644)
    code, checks = _doctor(data, "--quick")
    keys = next(c for c in checks if c["name"] == "keys")
    assert code == 1 and keys["status"] == "fail" and "chmod 600" in keys["detail"]


def test_an_altered_ledger_fails_the_check(data: Path) -> None:
    segment = next((data / "ledger" / "segments").glob("seg-*.log"))
    raw = bytearray(segment.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    segment.write_bytes(bytes(raw))
    checks = list(run_checks(load_settings(node={"data_dir": data})))
    ledger = next(c for c in checks if c.name == "ledger")
    assert ledger.status == "fail"


def test_no_node_is_one_failure(tmp_path: Path) -> None:
    code, checks = _doctor(tmp_path / "nothing")
    assert code == 1 and [c["name"] for c in checks] == ["node"]
