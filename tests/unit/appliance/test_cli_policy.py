"""`appliance policy ...`: decisions with exit codes, publish/rollback/versions, YAML tests, lint, diff."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from appliance.node import DEFAULT_POLICIES, Node
from appliance.settings import load_settings


@pytest.fixture
def node_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_NODE__DATA_DIR", str(tmp_path / "node"))
    Node.init(load_settings())
    return tmp_path


def _run(*args: str, code: int = 0, input: str | None = None):
    result = CliRunner().invoke(cli, ["policy", *args], input=input, catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def _last_entry() -> dict:
    with Node.open(load_settings(), readonly=True) as node:
        return node.ledger.entry(node.ledger.size - 1).as_dict()


@pytest.mark.parametrize(
    ("args", "code", "decision"),
    [
        (("--region", "CN", "--industry", "retail", "最近上新了"), 0, "allow"),
        (("--region", "CN", "--industry", "finance", "保本保息"), 4, "block"),
        (("--region", "CN", "--industry", "retail", "我们的服务是最佳的"), 3, None),
    ],
)
def test_check_prints_json_and_exits_by_decision(node_dir, args, code, decision) -> None:
    out = json.loads(_run("check", *args, code=code).stdout)
    if decision is not None:
        assert out["decision"] == decision
    else:
        assert out["decision"] in ("rewrite", "review")
    entry = _last_entry()
    assert entry["action"] == "reply.checked" and entry["details"]["decision"] == out["decision"]


def test_check_reads_stdin_and_refuses_bad_input(node_dir) -> None:
    assert json.loads(_run("check", "--region", "US", "--industry", "retail", "-", input="hi").stdout)[
        "decision"
    ]
    assert (
        "unknown to policy library"
        in _run("check", "--region", "CN", "--industry", "mining", "x", code=2).output
    )
    assert "ISO 3166" in _run("check", "--region", "ZZ", "--industry", "retail", "x", code=2).output


def test_publish_versions_rollback_and_diff(node_dir) -> None:
    lib = node_dir / "lib"
    shutil.copytree(DEFAULT_POLICIES, lib)
    text = (lib / "library.yaml").read_text(encoding="utf-8")
    (lib / "library.yaml").write_text(
        text.replace("\nversion: 1.0.0\n", "\nversion: 1.1.0\n"), encoding="utf-8"
    )
    rules = lib / "rules" / "us-finance.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("action: block", "action: review", 1), "utf-8")
    assert "it is live" in _run("publish", str(lib)).output
    listing = _run("versions").output.splitlines()
    assert len(listing) == 2 and listing[1].startswith("* 1.1.0+") and listing[0].startswith("  1.0.0+")
    old, new = (line[2:].split()[0] for line in listing)
    changed = json.loads(_run("diff", old, new).stdout)
    assert changed["changed"], changed
    assert "is live again" in _run("rollback", old).output
    assert _run("versions").output.splitlines()[0].startswith("* 1.0.0+")
    assert _last_entry()["action"] == "policy.rolled_back"
    assert "no published policy version" in _run("rollback", "9.9.9+000000000000", code=2).output


def test_publish_of_a_broken_library_exits_2_and_keeps_the_live_version(node_dir) -> None:
    lib = node_dir / "lib"
    shutil.copytree(DEFAULT_POLICIES, lib)
    (lib / "library.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    before = _run("versions").output
    assert "library.yaml" in _run("publish", str(lib), code=2).output
    assert _run("versions").output == before


def test_shipped_cases_pass_with_full_coverage(node_dir) -> None:
    out = _run("test", str(DEFAULT_POLICIES / "tests"), "--min-coverage", "1.0").output
    assert "rule coverage 100%" in out and "FAIL" not in out


def test_a_failing_case_exits_1(node_dir) -> None:
    cases = node_dir / "cases"
    cases.mkdir()
    (cases / "wrong.yaml").write_text(
        "cases:\n  - name: expects allow but is blocked\n"
        "    check_reply: {text: 保本保息, region: CN, industry: finance}\n"
        "    expect: {decision: allow}\n",
        encoding="utf-8",
    )
    result = _run("test", str(cases), code=1)
    assert "FAIL" in result.output


def test_lint_of_the_shipped_library_has_no_errors(node_dir) -> None:
    assert "0 errors" in _run("lint").output
