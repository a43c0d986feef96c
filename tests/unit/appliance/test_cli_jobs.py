"""`appliance jobs ...`: list, run (exit codes), pause/resume (recorded), history; on a real node."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from appliance import jobs as jobs_module
from appliance.cli_base import CLI_ACTOR
from appliance.cli_jobs import jobs
from appliance.jobs import job_lock
from appliance.node import Node
from appliance.settings import load_settings


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "node"
    Node.init(load_settings(node={"data_dir": path}))
    return path


@pytest.fixture
def data_dir(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of one initialised node (init takes most of a second)."""
    path = tmp_path / "node"
    shutil.copytree(template, path)
    return path


def _run(data_dir: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(jobs, list(args), obj={"data_dir": str(data_dir)}, catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def _entries(data_dir: Path, action: str) -> list[dict[str, Any]]:
    with Node.open(load_settings(node={"data_dir": data_dir}), readonly=True) as node:
        entries = (node.ledger.entry(i).as_dict() for i in range(node.ledger.size))
        return [e for e in entries if e["action"] == action]


def test_list_prints_a_table_and_json(data_dir: Path) -> None:
    table = _run(data_dir, "list").stdout
    assert "ledger.checkpoint" in table and "every 60 s" in table and "not registered yet" in table
    listed = json.loads(_run(data_dir, "list", "--json").stdout)
    assert [j["id"] for j in listed] == ["ledger.checkpoint", "outbox.deliver", "triggers.release_deferred"]


def test_run_prints_the_summary_and_history_shows_it(data_dir: Path) -> None:
    out = _run(data_dir, "run", "ledger.checkpoint").stdout
    assert out.startswith("ledger.checkpoint: succeeded in ")
    assert "tree_size: " in out
    (run,) = json.loads(_run(data_dir, "history", "ledger.checkpoint", "--json").stdout)
    assert run["status"] == "succeeded" and run["trigger"] == "manual" and run["duration_ms"] >= 0
    table = _run(data_dir, "history").stdout
    assert "ledger.checkpoint" in table and "succeeded" in table and "manual" in table
    listed = {j["id"]: j for j in json.loads(_run(data_dir, "list", "--json").stdout)}
    assert listed["ledger.checkpoint"]["last_run"]["status"] == "succeeded"


def test_a_failing_job_exits_1_and_is_recorded(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(node: Node, trigger: str) -> Mapping[str, Any]:
        raise RuntimeError("receiver unreachable")

    monkeypatch.setitem(jobs_module.TARGETS, "test.fail", fail)
    result = _run(data_dir, "run", "test.fail", code=1)
    assert "test.fail: failed" in result.stdout
    assert "error: RuntimeError: receiver unreachable" in result.stderr
    (entry,) = _entries(data_dir, "job.failed")
    assert entry["details"] == {
        "job": "test.fail",
        "error": "RuntimeError: receiver unreachable",
        "trigger": "manual",
    }


def test_a_job_running_elsewhere_exits_2_and_says_so(data_dir: Path) -> None:
    with (
        Node.open(load_settings(node={"data_dir": data_dir})) as node,
        job_lock(node, "outbox.deliver") as held,
    ):
        assert held
        result = _run(data_dir, "run", "outbox.deliver", code=2)
    assert "not run: job outbox.deliver is already running" in result.stderr
    (run,) = json.loads(_run(data_dir, "history", "outbox.deliver", "--json").stdout)
    assert run["status"] == "skipped" and run["detail"] == {"reason": "already running"}
    assert "already running" in _run(data_dir, "history").stdout


@pytest.mark.parametrize("command", ["run", "pause", "resume", "history"])
def test_an_unknown_job_exits_2_naming_the_known_ones(data_dir: Path, command: str) -> None:
    result = _run(data_dir, command, "ledger.nope", code=2)
    assert "no job 'ledger.nope'" in result.stderr


def test_pause_and_resume_are_recorded_with_the_cli_actor(data_dir: Path) -> None:
    assert _run(data_dir, "pause", "outbox.deliver").stdout.startswith("outbox.deliver paused")
    assert "already paused; nothing changed" in _run(data_dir, "pause", "outbox.deliver").stdout
    listed = {j["id"]: j for j in json.loads(_run(data_dir, "list", "--json").stdout)}
    assert listed["outbox.deliver"]["paused"] and listed["outbox.deliver"]["next_run_time"] is None
    assert "paused" in _run(data_dir, "list").stdout

    assert _run(data_dir, "resume", "outbox.deliver").stdout.startswith("outbox.deliver resumed; next run ")
    (paused,) = _entries(data_dir, "job.paused")
    (resumed,) = _entries(data_dir, "job.resumed")
    assert paused["actor"] == resumed["actor"] == CLI_ACTOR
    assert paused["details"] == resumed["details"] == {"job": "outbox.deliver"}


def test_history_limit_is_checked(data_dir: Path) -> None:
    result = _run(data_dir, "history", "--limit", "0", code=2)
    assert "0 is not in the range 1<=x<=1000" in result.stderr
