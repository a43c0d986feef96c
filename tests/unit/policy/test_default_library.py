"""The shipped library (config/policies) against its own test cases: every case passes, every rule is
exercised, the linter is clean, and the harness itself reports failures and coverage honestly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.errors import LibraryInvalid, PolicyError
from policy.evaluator import Evaluator
from policy.harness import lint, run_tests
from policy.library import PolicyLibrary

ROOT = Path(__file__).resolve().parents[3] / "config" / "policies"
CASES = ROOT / "tests"


@pytest.fixture(scope="module")
def library() -> PolicyLibrary:
    return PolicyLibrary.from_dir(ROOT)


def test_version_and_every_rule_cites_a_source(library: PolicyLibrary) -> None:
    assert library.version == "1.0.0"
    assert len(library.rules) >= 20
    for rule in library.rules:
        assert len(rule.source) > 10, rule.id


def test_every_case_passes(library: PolicyLibrary) -> None:
    report = run_tests(library, CASES)
    failures = [f"{c.file}: {c.name}: {'; '.join(c.problems)}" for c in report.failures]
    assert not failures, "\n".join(failures)
    assert len(report.cases) >= 50


def test_every_rule_is_covered(library: PolicyLibrary) -> None:
    report = run_tests(library, CASES)
    assert report.uncovered == ()
    assert report.coverage == 1.0
    assert report.covered == frozenset(r.id for r in library.rules)


def test_benign_cases_exist_for_each_text_rule_file() -> None:
    benign = 0
    for path in CASES.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text("utf-8"))["cases"]:
            if (
                case.get("check_reply")
                and case["expect"].get("rules") == []
                and case["expect"].get("decision") == "allow"
            ):
                benign += 1
    assert benign >= 15


def test_lint_is_clean(library: PolicyLibrary) -> None:
    assert [str(i) for i in lint(library)] == []


def test_evaluator_compiles_once_and_checks(library: PolicyLibrary) -> None:
    ev = Evaluator(library)
    d = ev.check_reply("本产品保本保息", region="CN-GD", industry="finance", channel="chat")
    assert d.decision == "block"
    assert d.findings[0].rule == "CN-FIN-025-PRINCIPAL"
    assert d.policy_version == library.version_id


# -- the harness itself ----------------------------------------------------------------------------------
def write_cases(tmp: Path, cases: list[dict[str, Any]]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "cases.yaml").write_text(yaml.safe_dump({"cases": cases}, allow_unicode=True), "utf-8")
    return tmp


def test_failing_case_is_reported_and_does_not_count_for_coverage(
    library: PolicyLibrary, tmp_path: Path
) -> None:
    cases = write_cases(
        tmp_path,
        [
            {
                "name": "wrong expectation",
                "check_reply": {"text": "保本保息", "region": "CN", "industry": "finance"},
                "expect": {"decision": "allow"},
            },
            {
                "name": "right expectation",
                "check_reply": {"text": "国家级", "region": "CN", "industry": "retail"},
                "expect": {"decision": "block", "rules": ["CN-ADV-009-STATE-LEVEL"]},
            },
        ],
    )
    report = run_tests(library, cases)
    assert not report.passed
    assert [c.name for c in report.failures] == ["wrong expectation"]
    assert "decision 'block', expected 'allow'" in report.failures[0].problems[0]
    assert report.covered == frozenset({"CN-ADV-009-STATE-LEVEL"})
    assert "CN-FIN-025-PRINCIPAL" in report.uncovered


def test_expected_error_case(library: PolicyLibrary, tmp_path: Path) -> None:
    cases = write_cases(
        tmp_path,
        [
            {
                "name": "error expected but none",
                "check_reply": {"text": "x", "region": "CN", "industry": "retail"},
                "expect": {"error": "UnknownRegion"},
            }
        ],
    )
    assert run_tests(library, cases).failures[0].problems == (
        "expected UnknownRegion, but no error was raised",
    )


def test_malformed_case_file(library: PolicyLibrary, tmp_path: Path) -> None:
    cases = write_cases(tmp_path, [{"name": "two inputs", "expect": {}}])
    with pytest.raises(LibraryInvalid, match="exactly one of"):
        run_tests(library, cases)
    with pytest.raises(PolicyError, match=r"no \*\.yaml case files"):
        run_tests(library, tmp_path / "empty")


def test_lint_finds_problems() -> None:
    manifest = {"name": "t", "version": "1.0.0", "industries": ["finance"], "channels": ["chat"]}
    base = {"source": "Act Art. 1", "kind": "phrases", "scope": {"regions": ["CN"]}}
    lib = PolicyLibrary.from_data(
        manifest,
        [
            {**base, "id": "SHADOW", "action": "block", "phrases": ["最近优惠"], "exceptions": ["最近"]},
            {**base, "id": "UNUSED", "action": "block", "phrases": ["保本"], "exceptions": ["天气"]},
            {**base, "id": "DUP", "action": "block", "phrases": ["稳赚", "稳赚"]},
            {**base, "id": "WEAK", "action": "block", "phrases": ["零风险"], "source": "common sense"},
            {
                **base,
                "id": "UNREACH",
                "action": "review",
                "phrases": ["稳赚"],
                "scope": {"regions": ["CN-GD"]},
            },
            {
                **base,
                "id": "OLD",
                "action": "block",
                "phrases": ["旧词"],
                "scope": {"regions": ["CN"], "effective_to": "2000-01-01"},
            },
            {**base, "id": "TRIP", "action": "rewrite", "rewrite": "零风险的方案", "phrases": ["顶级"]},
        ],
    )
    codes = {(i.rule, i.code) for i in lint(lib)}
    assert ("SHADOW", "shadowed-phrase") in codes
    assert ("UNUSED", "unused-exception") in codes
    assert ("DUP", "duplicate-phrase") in codes
    assert ("WEAK", "weak-source") in codes
    assert ("UNREACH", "unreachable") in codes
    assert ("OLD", "unreachable") in codes
    assert ("TRIP", "rewrite-trips-rule") in codes
    assert all(i.message for i in lint(lib))
