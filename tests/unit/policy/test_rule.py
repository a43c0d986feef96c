from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from policy.rule import AllOf, Compare, Manifest, NotOf, Rule


def rule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "T-001",
        "source": "Test Act Art. 1",
        "kind": "phrases",
        "action": "block",
        "scope": {"regions": ["CN"]},
        "phrases": ["保本"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_minimal_rule_validates_with_default_scope() -> None:
    r = Rule.model_validate(rule())
    assert r.scope.industries == ["*"] and r.scope.channels == ["*"]
    assert r.all_phrases() == ["保本"]


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="phrase"):
        Rule.model_validate(rule(phrase=["x"]))


def test_field_of_another_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="not used by kind 'phrases'"):
        Rule.model_validate(rule(pattern="x"))


def test_action_must_fit_kind() -> None:
    with pytest.raises(ValidationError, match="does not fit kind"):
        Rule.model_validate(rule(action="disclaimer"))


def test_rewrite_needs_approved_phrasing() -> None:
    with pytest.raises(ValidationError, match="needs `rewrite:`"):
        Rule.model_validate(rule(action="rewrite"))
    assert Rule.model_validate(rule(action="rewrite", rewrite="优质")).rewrite == "优质"


def test_rewrite_text_without_rewrite_action_is_refused() -> None:
    with pytest.raises(ValidationError, match="only used by action 'rewrite'"):
        Rule.model_validate(rule(rewrite="x"))


def test_missing_source_and_regions_are_refused() -> None:
    data = rule()
    del data["source"]
    with pytest.raises(ValidationError, match="source"):
        Rule.model_validate(data)
    with pytest.raises(ValidationError, match="regions"):
        Rule.model_validate(rule(scope={"industries": ["finance"]}))


def test_dates_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="before effective_from"):
        Rule.model_validate(
            rule(scope={"regions": ["CN"], "effective_from": "2025-01-02", "effective_to": "2025-01-01"})
        )


def test_empty_phrase_is_refused() -> None:
    with pytest.raises(ValidationError, match="empty phrase"):
        Rule.model_validate(rule(phrases=["  "]))


def test_id_shape() -> None:
    with pytest.raises(ValidationError):
        Rule.model_validate(rule(id="lower-case"))


def test_disclaimer_needs_text_and_triggers() -> None:
    with pytest.raises(ValidationError, match="needs a non-empty `disclaimer`"):
        Rule.model_validate(rule(kind="disclaimer", action="disclaimer", phrases=None, triggers=["投资"]))


def test_structured_condition_parses() -> None:
    r = Rule.model_validate(
        rule(
            kind="recommendation",
            phrases=None,
            condition={
                "all": [
                    {"attr": "item.alcohol", "op": "is_true"},
                    {"not": {"attr": "customer.age", "op": ">=", "value": 18}},
                ]
            },
        )
    )
    assert isinstance(r.condition, AllOf)
    assert isinstance(r.condition.all[0], Compare)
    assert isinstance(r.condition.all[1], NotOf)


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"attr": "item.sugar", "op": ">", "value": "high"}, "compares numbers"),
        ({"attr": "item.sugar", "op": ">", "value": True}, "compares numbers"),
        ({"attr": "item.kind", "op": "in", "value": "food"}, "needs a list"),
        ({"attr": "item.alcohol", "op": "is_true", "value": True}, "takes no value"),
        ({"attr": "order.total", "op": ">", "value": 1}, "must be 'item.<name>'"),
        ({"attr": "item.__class__", "op": "exists"}, None),
        ({"foo": 1}, "a condition is"),
        ({"attr": "item.x", "op": "~=", "value": 1}, None),
    ],
)
def test_bad_conditions_are_refused(cond: dict[str, Any], message: str | None) -> None:
    data = rule(kind="recommendation", phrases=None, condition=cond)
    if cond.get("attr") == "item.__class__":
        # a dunder is a valid identifier; it is looked up as a mapping key, never as an attribute
        Rule.model_validate(data)
        return
    with pytest.raises(ValidationError) as info:
        Rule.model_validate(data)
    if message:
        assert message in str(info.value)


def test_contact_rule_needs_a_limit() -> None:
    with pytest.raises(ValidationError, match="needs quiet_hours"):
        Rule.model_validate(rule(kind="contact", phrases=None, contact={}))


def test_manifest_semver_and_vocabulary() -> None:
    ok = {"name": "x", "version": "1.2.3", "industries": ["finance"], "channels": ["chat"]}
    assert Manifest.model_validate(ok).version == "1.2.3"
    with pytest.raises(ValidationError, match="version"):
        Manifest.model_validate({**ok, "version": "1.2"})
    with pytest.raises(ValidationError, match="lower-case word"):
        Manifest.model_validate({**ok, "industries": ["Finance"]})
    with pytest.raises(ValidationError, match="twice"):
        Manifest.model_validate({**ok, "channels": ["chat", "chat"]})
