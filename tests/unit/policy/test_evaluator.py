from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policy.errors import TextRejected, UnknownChannel, UnknownIndustry, UnknownRegion
from policy.evaluator import PRECEDENCE, Evaluator, decide
from policy.library import PolicyLibrary

MANIFEST: dict[str, Any] = {
    "name": "test",
    "version": "2.0.0",
    "industries": ["finance", "retail"],
    "channels": ["chat", "sms", "email"],
    "region_groups": {"EU": ["DE", "FR"]},
}


def rule(rid: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": rid,
        "source": f"Test Act Art. {rid}",
        "kind": "phrases",
        "action": "block",
        "scope": {"regions": ["*"]},
    }
    base.update(fields)
    return base


def evaluator(*rules: dict[str, Any], **kwargs: Any) -> Evaluator:
    return Evaluator(PolicyLibrary.from_data(MANIFEST, list(rules)), **kwargs)


def check(ev: Evaluator, text: str, region: str = "CN", industry: str = "finance", channel: str = "chat"):
    return ev.check_reply(text, region=region, industry=industry, channel=channel)


def test_precedence_order_and_decisions() -> None:
    assert PRECEDENCE == ("block", "review", "rewrite", "disclaimer", "allow")
    assert decide(["rewrite", "block", "review"]) == "block"
    assert decide(["rewrite", "review"]) == "review"
    assert decide(["disclaimer", "rewrite"]) == "rewrite"
    assert decide(["disclaimer"]) == "rewrite"
    assert decide(["allow"]) == "allow"
    assert decide([]) == "allow"


def test_block_returns_no_text_and_every_finding() -> None:
    ev = evaluator(
        rule("B-1", phrases=["保本"]),
        rule("R-1", action="rewrite", rewrite="优质", phrases=["顶级"]),
    )
    d = check(ev, "顶级产品，保本")
    assert d.decision == "block"
    assert d.text == ""
    assert [(f.rule, f.action, f.start, f.end, f.matched) for f in d.findings] == [
        ("R-1", "rewrite", 0, 2, "顶级"),
        ("B-1", "block", 5, 7, "保本"),
    ]
    assert d.findings[1].source == "Test Act Art. B-1"
    assert d.policy_version.startswith("2.0.0+")


def test_review_beats_rewrite_but_keeps_the_rewritten_text() -> None:
    ev = evaluator(
        rule("V-1", action="review", phrases=["最"], exceptions=["最近"]),
        rule("R-1", action="rewrite", rewrite="优质", phrases=["最佳"]),
    )
    d = check(ev, "最近推出最佳方案")
    assert d.decision == "review"
    assert d.text == "最近推出优质方案"
    assert d.rules == ("R-1", "V-1")


def test_rewrites_apply_right_to_left_at_original_offsets() -> None:
    ev = evaluator(rule("R-1", action="rewrite", rewrite="great", phrases=["best", "top notch"]))
    text = "The best plan and the TOP  NOTCH service, best!"
    d = check(ev, text)
    assert d.decision == "rewrite"
    assert d.text == "The great plan and the great service, great!"
    assert [text[f.start : f.end] for f in d.findings] == ["best", "TOP  NOTCH", "best"]


def test_overlapping_rewrites_take_the_earliest_longest() -> None:
    ev = evaluator(
        rule("R-1", action="rewrite", rewrite="A", phrases=["abc def"]),
        rule("R-2", action="rewrite", rewrite="B", phrases=["def ghi"]),
    )
    assert check(ev, "abc def ghi").text == "A ghi"


def test_exception_cancels_only_the_overlapping_match() -> None:
    ev = evaluator(rule("V-1", action="review", phrases=["最"], exceptions=["最近", "最后"]))
    assert check(ev, "最近很忙，最后再说").decision == "allow"
    d = check(ev, "最近我们最便宜")
    assert d.decision == "review"
    assert [(f.start, f.matched) for f in d.findings] == [(4, "最")]


def test_contained_matches_of_one_rule_are_one_finding() -> None:
    ev = evaluator(rule("B-1", phrases=["保本", "保本保息", "保息"]))
    d = check(ev, "承诺保本保息")
    assert [(f.start, f.end) for f in d.findings] == [(2, 6)]


def test_evasions_are_caught_with_original_offsets() -> None:
    ev = evaluator(rule("B-1", phrases=["保本保息", "guaranteed return"]))
    text = "我们 保 本 保 息，plus the G.U.A.R.A.N.T.E.E.D return"
    d = check(ev, text)
    assert [f.matched for f in d.findings] == ["保 本 保 息", "G.U.A.R.A.N.T.E.E.D return"]
    assert check(ev, "保證 本金").decision == "allow"  # unrelated words stay unrelated


def test_word_boundaries_for_ascii_phrases() -> None:
    ev = evaluator(rule("B-1", phrases=["cure"]))
    assert check(ev, "a secure procurement").decision == "allow"
    assert check(ev, "a cure").decision == "block"


def test_disclaimer_appended_once_unless_present() -> None:
    ev = evaluator(
        rule(
            "D-1",
            kind="disclaimer",
            action="disclaimer",
            disclaimer="投资有风险，入市需谨慎。",
            triggers=["投资", "基金"],
            satisfied_by=["投资有风险"],
        )
    )
    d = check(ev, "基金投资，投资理财")
    assert d.decision == "rewrite"
    assert d.text == "基金投资，投资理财\n投资有风险，入市需谨慎。"
    assert len(d.findings) == 1 and d.findings[0].matched == "基金"
    assert check(ev, "基金投资。投资有风险").decision == "allow"
    assert check(ev, "今天天气很好").decision == "allow"


def test_disclaimer_text_itself_satisfies_without_satisfied_by() -> None:
    ev = evaluator(
        rule(
            "D-1",
            kind="disclaimer",
            action="disclaimer",
            disclaimer="Investing involves risk.",
            triggers=["invest"],
        )
    )
    assert check(ev, "Invest now. Investing involves risk.").decision == "allow"
    assert check(ev, "Invest now.").text == "Invest now.\nInvesting involves risk."


def test_pattern_rule_runs_on_normalised_text_with_original_offsets() -> None:
    ev = evaluator(rule("P-1", kind="pattern", action="review", pattern=r"收益\s?\d{1,3}%"))
    text = "年化收益 ８％ 哦"
    d = check(ev, text)
    assert d.decision == "review"
    assert d.findings[0].matched == "收益 ８％"


def test_claim_needs_a_number_near_the_term() -> None:
    ev = evaluator(
        rule("C-1", kind="claim", phrases=["guaranteed"], exceptions=["not guaranteed"], claim={"window": 12})
    )
    assert check(ev, "guaranteed 10% return").findings[0].matched == "guaranteed 10%"
    assert check(ev, "a 7.5% yield, guaranteed").findings[0].matched == "7.5% yield, guaranteed"
    assert check(ev, "guaranteed delivery in 3 days").decision == "allow"
    assert check(ev, "returns are not guaranteed, 5% is an estimate").decision == "allow"
    assert check(ev, "guaranteed and then a very long detour before 10%").decision == "allow"


def test_claim_side_after_only() -> None:
    ev = evaluator(rule("C-1", kind="claim", phrases=["保证收益"], claim={"side": "after"}))
    assert check(ev, "保证收益百分之八").decision == "block"
    assert check(ev, "8%，保证收益").decision == "allow"


def test_region_inheritance_and_groups() -> None:
    ev = evaluator(
        rule("CN-1", phrases=["aaa"], scope={"regions": ["CN"]}),
        rule("EU-1", phrases=["bbb"], scope={"regions": ["EU"]}),
        rule("GD-1", phrases=["ccc"], scope={"regions": ["CN-GD"]}),
    )
    assert check(ev, "aaa", region="CN-GD").decision == "block"
    assert check(ev, "ccc", region="CN").decision == "allow"
    assert check(ev, "ccc", region="CN-GD").decision == "block"
    assert check(ev, "bbb", region="FR-75").decision == "block"
    assert check(ev, "bbb", region="DE").decision == "block"
    assert check(ev, "bbb", region="US").decision == "allow"
    assert check(ev, "aaa", region="HK").decision == "allow"


def test_industry_channel_and_dates_scope() -> None:
    ev = evaluator(
        rule(
            "F-1", phrases=["aaa"], scope={"regions": ["*"], "industries": ["finance"], "channels": ["sms"]}
        ),
        rule(
            "D-1",
            phrases=["bbb"],
            scope={"regions": ["*"], "effective_from": "2025-01-01", "effective_to": "2025-12-31"},
        ),
    )
    assert check(ev, "aaa", channel="sms").decision == "block"
    assert check(ev, "aaa", channel="chat").decision == "allow"
    assert check(ev, "aaa", industry="retail", channel="sms").decision == "allow"
    at = {
        d: datetime(*d, 12, tzinfo=UTC) for d in [(2024, 12, 31), (2025, 1, 1), (2025, 12, 31), (2026, 1, 1)]
    }
    decisions = [
        ev.check_reply("bbb", region="CN", industry="retail", channel="chat", at=t).decision
        for t in at.values()
    ]
    assert decisions == ["allow", "block", "block", "allow"]


def test_unknown_region_industry_channel_are_errors_listing_known_values() -> None:
    ev = evaluator(rule("B-1", phrases=["x"]))
    with pytest.raises(UnknownRegion):
        check(ev, "x", region="XX")
    with pytest.raises(UnknownIndustry) as info:
        check(ev, "x", industry="crypto")
    assert "finance, retail" in str(info.value) and info.value.known == ("finance", "retail")
    with pytest.raises(UnknownChannel, match="chat, sms, email"):
        check(ev, "x", channel="fax")


def test_empty_text_is_allowed_and_long_text_is_rejected() -> None:
    ev = evaluator(rule("B-1", phrases=["x"]), max_chars=100)
    assert check(ev, "").decision == "allow"
    assert check(ev, "   ").text == "   "
    with pytest.raises(TextRejected, match="101 characters, over the 100-character limit"):
        check(ev, "a" * 101)


def test_one_megabyte_text_is_rejected_by_default() -> None:
    ev = evaluator(rule("B-1", phrases=["x"]))
    with pytest.raises(TextRejected):
        check(ev, "a" * 1_000_000)


def test_large_text_under_the_limit_is_checked_in_time() -> None:
    ev = evaluator(
        rule("B-1", phrases=["保本"]),
        rule("P-1", kind="pattern", action="review", pattern=r"收益\s{0,3}\d{1,3}%"),
        rule("C-1", kind="claim", phrases=["guaranteed"]),
    )
    text = ("您好，这是一个普通的答复。" * 7000)[:99_990] + "保本"
    d = check(ev, text)
    assert d.decision == "block" and d.findings[-1].matched == "保本"


def test_allow_action_is_informational() -> None:
    ev = evaluator(rule("I-1", action="allow", phrases=["hello"]))
    d = check(ev, "hello there")
    assert d.decision == "allow" and d.text == "hello there" and d.rules == ("I-1",)


def test_non_text_rules_are_ignored_by_check_reply() -> None:
    ev = evaluator(
        rule(
            "R-1",
            kind="recommendation",
            condition={"attr": "item.alcohol", "op": "is_true"},
        )
    )
    assert check(ev, "alcohol").decision == "allow"
