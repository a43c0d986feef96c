from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policy.errors import PolicyError, UnknownIndustry, UnknownRegion
from policy.library import PolicyLibrary
from policy.recommend import filter_recommendations, holds
from policy.rule import Compare

MANIFEST: dict[str, Any] = {
    "name": "test",
    "version": "1.0.0",
    "industries": ["food", "retail"],
    "channels": ["chat", "email"],
    "region_groups": {"EU": ["DE", "FR"]},
}


def rule(rid: str, condition: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": rid,
        "source": f"Test Act Art. {rid}",
        "kind": "recommendation",
        "action": "block",
        "message": f"blocked by {rid}",
        "scope": {"regions": ["*"]},
        "condition": condition,
    }
    base.update(fields)
    return base


SUGAR = rule(
    "SUGAR",
    {
        "all": [
            {"attr": "item.category", "op": "in", "value": ["food", "snack"], "default": ""},
            {"attr": "item.sugar_g_per_100g", "op": ">", "value": 22.5},
        ]
    },
    scope={"regions": ["GB-ENG"]},
)
MINORS = rule(
    "MINORS",
    {
        "all": [
            {
                "any": [
                    {"attr": "item.alcohol", "op": "is_true"},
                    {"attr": "item.age_restricted", "op": "is_true"},
                ]
            },
            {"attr": "customer.age", "op": "<", "value": 18},
        ]
    },
)
CONSENT = rule(
    "CONSENT",
    {"not": {"attr": "customer.consent.marketing", "op": "is_true"}},
    scope={"regions": ["EU"], "channels": ["email"]},
)
LIB = PolicyLibrary.from_data(MANIFEST, [SUGAR, MINORS, CONSENT])


def run(customer: dict[str, Any], items: list[dict[str, Any]], region: str = "GB-ENG", **kw: Any):
    return filter_recommendations(
        LIB, customer, items, region=region, industry=kw.pop("industry", "food"), **kw
    )


def ids(items: list[Any]) -> list[Any]:
    return [i["id"] for i in items]


def test_threshold_is_strictly_greater() -> None:
    items = [
        {"id": "a", "category": "snack", "sugar_g_per_100g": 22.5},
        {"id": "b", "category": "snack", "sugar_g_per_100g": 22.6},
        {"id": "c", "category": "snack", "sugar_g_per_100g": 60},
    ]
    res = run({"age": 30}, items)
    assert ids(res.allowed) == ["a"]
    assert [b["item"]["id"] for b in res.blocked] == ["b", "c"]
    reason = res.blocked[0]["reasons"][0]
    assert reason == {"rule": "SUGAR", "message": "blocked by SUGAR", "source": "Test Act Art. SUGAR"}
    assert res.policy_version == LIB.version_id


def test_missing_data_fails_closed_but_default_lets_non_food_pass() -> None:
    res = run({"age": 30}, [{"id": "cereal", "category": "food"}, {"id": "charger"}])
    assert ids(res.allowed) == ["charger"]
    assert "missing" in res.blocked[0]["reasons"][0]["message"]


def test_wrong_type_is_unknown_not_an_exception() -> None:
    res = run({"age": 30}, [{"id": "x", "category": "food", "sugar_g_per_100g": "lots"}])
    assert ids([b["item"] for b in res.blocked]) == ["x"]


def test_on_unknown_allow() -> None:
    lib = PolicyLibrary.from_data(
        MANIFEST, [rule("UNK", {"attr": "item.sugar_g_per_100g", "op": ">", "value": 1}, on_unknown="allow")]
    )
    res = filter_recommendations(lib, {}, [{"id": 1}], region="CN", industry="food")
    assert ids(res.allowed) == [1]


def test_region_scope() -> None:
    item = {"id": "c", "category": "snack", "sugar_g_per_100g": 60}
    assert ids(run({"age": 30}, [item], region="GB-SCT").allowed) == ["c"]
    assert ids(run({"age": 30}, [item], region="GB").allowed) == ["c"]


def test_minors_and_unset_flags() -> None:
    items = [{"id": "beer", "alcohol": True}, {"id": "knife", "age_restricted": True}, {"id": "juice"}]
    res = run({"age": 16}, items, region="CN")
    assert ids(res.allowed) == ["juice"]
    assert ids(run({"age": 30}, items, region="CN").allowed) == ["beer", "knife", "juice"]
    unknown_age = run({}, items, region="CN")
    assert ids(unknown_age.allowed) == ["juice"]


def test_consent_by_channel_and_group() -> None:
    no = {"consent": {"marketing": False}}
    yes = {"consent": {"marketing": True}}
    assert ids(run(no, [{"id": 1}], region="FR-75", channel="email").allowed) == []
    assert ids(run(yes, [{"id": 1}], region="FR-75", channel="email").allowed) == [1]
    assert ids(run(no, [{"id": 1}], region="DE", channel="chat").allowed) == [1]
    # channel unknown: channel-scoped rules bind (fail closed)
    assert ids(run({}, [{"id": 1}], region="DE").allowed) == []


def test_several_rules_give_several_reasons() -> None:
    lib = PolicyLibrary.from_data(MANIFEST, [MINORS, rule("ALC", {"attr": "item.alcohol", "op": "is_true"})])
    res = filter_recommendations(
        lib, {"age": 10}, [{"id": "beer", "alcohol": True}], region="CN", industry="food"
    )
    assert [r["rule"] for r in res.blocked[0]["reasons"]] == ["ALC", "MINORS"]


def test_effective_dates() -> None:
    lib = PolicyLibrary.from_data(
        MANIFEST,
        [
            rule(
                "DATE",
                {"attr": "item.x", "op": "is_true"},
                scope={"regions": ["*"], "effective_from": "2030-01-01"},
            )
        ],
    )
    item = [{"id": 1, "x": True}]
    assert ids(filter_recommendations(lib, {}, item, region="CN", industry="food").allowed) == [1]
    later = datetime(2030, 6, 1, tzinfo=UTC)
    assert ids(filter_recommendations(lib, {}, item, region="CN", industry="food", at=later).allowed) == []


@pytest.mark.parametrize(
    ("cond", "item", "expected"),
    [
        ({"attr": "item.n", "op": ">=", "value": 2}, {"n": 2}, True),
        ({"attr": "item.n", "op": "<=", "value": 2}, {"n": 3}, False),
        ({"attr": "item.n", "op": "==", "value": 1}, {"n": True}, False),
        ({"attr": "item.s", "op": "==", "value": "a"}, {"s": "a"}, True),
        ({"attr": "item.s", "op": "!=", "value": "a"}, {"s": "b"}, True),
        ({"attr": "item.s", "op": "not_in", "value": ["a"]}, {"s": "b"}, True),
        ({"attr": "item.s", "op": "exists"}, {}, False),
        ({"attr": "item.s", "op": "missing"}, {}, True),
        ({"attr": "item.b", "op": "is_false"}, {"b": False}, True),
        ({"attr": "item.b", "op": "is_false"}, {}, None),
        ({"attr": "item.b", "op": "is_true"}, {"b": "yes"}, None),
        ({"attr": "item.n", "op": ">", "value": 1}, {"n": float("nan")}, None),
        ({"attr": "item.n", "op": ">", "value": 1, "default": 0}, {}, False),
    ],
)
def test_compare_semantics(cond: dict[str, Any], item: dict[str, Any], expected: bool | None) -> None:
    assert holds(Compare.model_validate(cond), item, {}) is expected


def test_bad_input() -> None:
    with pytest.raises(UnknownRegion):
        run({}, [], region="ZZ")
    with pytest.raises(UnknownIndustry):
        run({}, [], industry="crypto")
    with pytest.raises(PolicyError, match="item #0"):
        run({}, ["not a mapping"])  # type: ignore[list-item]


def test_default_library_hfss_rule() -> None:
    from pathlib import Path

    lib = PolicyLibrary.from_dir(Path(__file__).resolve().parents[3] / "config" / "policies")
    res = filter_recommendations(
        lib,
        {"age": 30},
        [{"id": "fudge", "category": "confectionery", "sugar_g_per_100g": 60}],
        region="GB-ENG",
        industry="retail",
    )
    assert res.blocked[0]["reasons"][0]["rule"] == "GB-ENG-HFSS-SUGAR"
