"""Playbook YAML: the shipped files load, and each kind of mistake is refused with file, key and fix."""

from __future__ import annotations

import copy
from datetime import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from predictors.errors import DataError, PlaybookError
from predictors.playbook import (
    DEFAULT_CAPS,
    DEFAULT_QUIET_HOURS,
    QuietHours,
    load_keywords,
    load_playbook,
    load_playbooks,
    normalize_text,
)

SHIPPED = Path(__file__).resolve().parents[3] / "config" / "playbooks"

BASE: dict[str, Any] = {
    "name": "demo_offer",
    "description": "a test playbook",
    "schedule": "0 9 * * *",
    "keywords": {"tires": {"zh": ["胎压异常"], "en": ["tire pressure"]}},
    "features": [
        {"name": "logins_7d", "kind": "count", "events": ["login"], "window": 7},
        {"name": "logins_30d", "kind": "count", "events": ["login"], "window": 30},
        {"name": "trend", "kind": "ratio", "numerator": "logins_7d", "denominator": "logins_30d"},
        {"name": "tire_hits_7d", "kind": "keyword_hits", "keywords": "tires", "window": 7},
    ],
    "rules": {"when": ["tire_hits_7d >= 3"]},
    "selection": {"mode": "threshold", "threshold": 1.0},
    "offer": {
        "channel": "sms",
        "industry": "automotive",
        "category": "service_appointment",
        "text": {"zh": "您好", "en": "Hello"},
    },
}


def write(tmp_path: Path, data: Any, name: str = "demo_offer.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def variant(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# -- the shipped playbooks -------------------------------------------------------------------------------
def test_shipped_playbooks_load() -> None:
    books = load_playbooks(SHIPPED)
    assert set(books) == {"tire_pressure_service", "churn_retention"}

    tire = books["tire_pressure_service"]
    assert tire.model is None and tire.rules is not None
    assert [str(c) for c in tire.rules.conditions] == ["tire_hits_7d >= 3"]
    kw = tire.feature("tire_hits_7d").keywords
    assert kw is not None and kw.name == "tire_pressure"
    assert "胎压异常" in kw.terms and "tpms" in kw.terms  # normalised: case folded
    assert tire.offer.channel == "sms" and set(tire.offer.text) == {"zh", "en"}
    assert tire.selection.mode == "threshold" and tire.selection.holdout == pytest.approx(0.10)
    assert tire.max_window_days == 30

    churn = books["churn_retention"]
    assert churn.model == "churn_retention" and churn.rules is None
    assert churn.target is not None and churn.target.events == ("subscription_cancelled",)
    assert churn.target.horizon_days == 30
    assert churn.target.eligible.exclude_events == ("subscription_cancelled",)
    assert churn.max_window_days == 90
    kinds = {f.kind for f in churn.features}
    assert {"count", "ratio", "recency", "sum", "distinct_days", "attribute", "tenure_days"} <= kinds
    assert churn.contact.quiet_hours == QuietHours(time(20, 0), time(9, 0))
    assert churn.schedule == "0 8 * * 1"
    # frozen values: equal when loaded twice, usable as keys
    again = load_playbooks(SHIPPED)
    assert again == books and hash(again["churn_retention"]) == hash(churn)


def test_shared_keywords_file_loads() -> None:
    sets = load_keywords(SHIPPED / "keywords.yaml")
    assert {"tire_pressure", "cancel_intent"} <= set(sets)
    assert all(t == normalize_text(t) for s in sets.values() for t in s.terms)


def test_a_valid_playbook_gets_the_documented_defaults(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, BASE))
    assert pb.enabled is True
    assert pb.contact.caps == DEFAULT_CAPS
    assert pb.contact.quiet_hours == DEFAULT_QUIET_HOURS
    assert pb.contact.regions is None
    assert pb.selection.holdout == pytest.approx(0.10)
    assert pb.rules is not None and pb.rules.match == "all"
    assert pb.feature_names == ("logins_7d", "logins_30d", "trend", "tire_hits_7d")
    assert pb.feature("tire_hits_7d").events == ("search", "telemetry")  # keyword_hits default
    assert pb.source.endswith("demo_offer.yaml")


def test_quiet_hours_can_be_switched_off_explicitly(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, variant(contact={"quiet_hours": None})))
    assert pb.contact.quiet_hours is None


def test_region_codes_stay_strings_under_yaml_1_2_booleans(tmp_path: Path) -> None:
    path = tmp_path / "demo_offer.yaml"
    path.write_text(
        yaml.safe_dump(variant(contact={"regions": ["CN"]}), allow_unicode=True).replace("- CN", "- NO"),
        encoding="utf-8",
    )
    assert load_playbook(path).contact.regions == ("NO",)


def test_a_model_playbook_defaults_its_model_name_to_the_playbook(tmp_path: Path) -> None:
    data = variant(
        rules=None,
        selection={"mode": "top_k", "k": 0.02},
        target={"events": ["subscription_cancelled"], "horizon_days": 30},
    )
    pb = load_playbook(write(tmp_path, data))
    assert pb.model == "demo_offer"
    assert pb.selection.k == pytest.approx(0.02)
    with pytest.raises(DataError, match="has no rules"):
        pb.rule_scores(pd.DataFrame({"tire_hits_7d": [1.0]}))


# -- mistakes --------------------------------------------------------------------------------------------
def _features(*extra: dict[str, Any], drop: int | None = None) -> list[dict[str, Any]]:
    feats = copy.deepcopy(BASE["features"])
    if drop is not None:
        feats.pop(drop)
    return [*feats, *extra]


BAD: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "unknown feature kind",
        variant(features=_features({"name": "x", "kind": "median", "events": ["login"], "window": 7})),
        ["features[4]", "median", "count"],
    ),
    (
        "duplicate feature name",
        variant(
            features=_features({"name": "logins_7d", "kind": "count", "events": ["purchase"], "window": 7})
        ),
        ["features[4] (logins_7d)", "used twice"],
    ),
    (
        "ratio to an unknown feature",
        variant(
            features=_features(
                {"name": "r", "kind": "ratio", "numerator": "logins_7d", "denominator": "nope"}
            )
        ),
        ["features[4] (r).denominator", "'nope' is not a feature"],
    ),
    (
        "ratio of a ratio",
        variant(
            features=_features(
                {"name": "r", "kind": "ratio", "numerator": "trend", "denominator": "logins_7d"}
            )
        ),
        ["features[4] (r).numerator", "itself a ratio"],
    ),
    (
        "window 0",
        variant(features=_features({"name": "w", "kind": "count", "events": ["login"], "window": 0})),
        ["features[4] (w).window", "greater than or equal to 1"],
    ),
    (
        "window over a year",
        variant(features=_features({"name": "w", "kind": "count", "events": ["login"], "window": 400})),
        ["features[4] (w).window", "365"],
    ),
    (
        "missing zh offer text",
        variant(
            offer={"channel": "sms", "industry": "retail", "category": "x", "text": {"en": "Hello"}},
        ),
        ["offer.text.zh", "is required"],
    ),
    (
        "unknown event kind",
        variant(features=_features({"name": "p", "kind": "count", "events": ["purchse"], "window": 7})),
        ["features[4] (p).events", "'purchse' is not a known event kind"],
    ),
    (
        "undefined keyword set",
        variant(features=_features({"name": "k", "kind": "keyword_hits", "keywords": "brakes", "window": 7})),
        ["features[4] (k).keywords", "'brakes' is not defined"],
    ),
    (
        "misspelt key",
        variant(selection={"mode": "threshold", "threshold": 1.0, "holdot": 0.1}),
        ["selection.holdot", "not a playbook key"],
    ),
    ("schedule with 4 fields", variant(schedule="0 9 * *"), ["schedule", "4 fields", "5-field cron"]),
    ("rules and a model", variant(model="other"), ["model", "not both"]),
    (
        "rules with top_k and no floor",
        variant(selection={"mode": "top_k", "k": 100}),
        ["selection", "min_score"],
    ),
    (
        "model playbook without a target",
        variant(rules=None, selection={"mode": "top_k", "k": 100}),
        ["target", "needs a target"],
    ),
    (
        "rule that is not a comparison",
        variant(rules={"when": ["tire_hits_7d is big"]}),
        ["rules.when[0]", "<feature> <op> <number>"],
    ),
    (
        "rule on an unknown feature",
        variant(rules={"when": ["tires >= 3"]}),
        ["rules.when[0]", "'tires' is not a feature"],
    ),
    (
        "holdout above half",
        variant(selection={"mode": "threshold", "threshold": 1.0, "holdout": 0.7}),
        ["selection.holdout", "0.5"],
    ),
    ("name not lower_snake", variant(name="Tire-Offer"), ["name", "lower_snake_case"]),
    (
        "quiet hours start equals end",
        variant(contact={"quiet_hours": {"start": "21:00", "end": "21:00"}}),
        ["contact.quiet_hours", "equal"],
    ),
    (
        "reserved feature name",
        variant(features=_features({"name": "label", "kind": "count", "events": ["login"], "window": 7})),
        ["features[4] (label)", "reserved"],
    ),
    (
        "unknown offer channel",
        variant(
            offer={"channel": "fax", "industry": "retail", "category": "x", "text": {"zh": "a", "en": "b"}}
        ),
        ["offer.channel", "sms"],
    ),
    (
        "empty keyword set",
        variant(keywords={"tires": {"zh": [], "en": []}}),
        ["keywords.tires", "at least one term"],
    ),
]


@pytest.mark.parametrize(("data", "fragments"), [(d, f) for _, d, f in BAD], ids=[b[0] for b in BAD])
def test_bad_playbooks_are_refused_with_file_key_and_fix(
    tmp_path: Path, data: dict[str, Any], fragments: list[str]
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(PlaybookError) as info:
        load_playbook(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nname: b\n", encoding="utf-8")
    with pytest.raises(PlaybookError, match="duplicate key 'name'"):
        load_playbook(path)


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(PlaybookError, match="is a mapping"):
        load_playbook(path)


def test_duplicate_playbook_names_in_a_directory_are_refused(tmp_path: Path) -> None:
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, BASE, "b.yaml")
    with pytest.raises(
        PlaybookError, match=r"b\.yaml: playbook name 'demo_offer' is already used by .*a\.yaml"
    ):
        load_playbooks(tmp_path)


def test_a_set_defined_in_the_playbook_and_the_shared_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keywords.yaml").write_text(
        yaml.safe_dump({"keywords": {"tires": {"en": ["tpms"]}}}), encoding="utf-8"
    )
    write(tmp_path, BASE)
    with pytest.raises(PlaybookError, match=r"keywords\.tires: is also defined in the shared keywords\.yaml"):
        load_playbooks(tmp_path)


def test_shared_sets_are_found_by_playbooks_in_the_same_directory(tmp_path: Path) -> None:
    (tmp_path / "keywords.yaml").write_text(
        yaml.safe_dump(
            {"keywords": {"brakes": {"zh": ["刹车异响"], "en": ["brake noise"]}}}, allow_unicode=True
        ),
        encoding="utf-8",
    )
    data = variant(
        features=_features({"name": "b", "kind": "keyword_hits", "keywords": "brakes", "window": 30})
    )
    write(tmp_path, data)
    books = load_playbooks(tmp_path)
    assert set(books) == {"demo_offer"}  # keywords.yaml is not a playbook
    assert books["demo_offer"].feature("b").keywords.terms == ("刹车异响", "brake noise")  # type: ignore[union-attr]


def test_event_vocabulary_can_be_extended_by_the_caller(tmp_path: Path) -> None:
    data = variant(features=_features({"name": "t", "kind": "count", "events": ["test_drive"], "window": 7}))
    path = write(tmp_path, data)
    with pytest.raises(PlaybookError, match="event_kinds="):
        load_playbook(path)
    pb = load_playbook(path, event_kinds=["login", "search", "telemetry", "test_drive"])
    assert pb.feature("t").events == ("test_drive",)


def test_a_missing_directory_is_refused() -> None:
    with pytest.raises(PlaybookError, match="is not a directory"):
        load_playbooks("/nonexistent/playbooks")


# -- normalisation and rules -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＴＩＲＥ ＰＲＥＳＳＵＲＥ", "tire pressure"),
        ("Tire  Pressure\tWarning", "tire pressure warning"),
        ("胎壓異常", "胎压异常"),
        ("TPMS_LOW", "tpms_low"),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_rule_scores_all_and_any(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "logins_7d": [5.0, 0.0, 5.0, np.nan],
            "logins_30d": [1.0, 1.0, 1.0, 1.0],
            "trend": [0.0, 0.0, 0.0, 0.0],
            "tire_hits_7d": [3.0, 4.0, 2.0, 9.0],
        }
    )
    both = load_playbook(write(tmp_path, variant(rules={"when": ["tire_hits_7d >= 3", "logins_7d > 1"]})))
    assert both.rule_scores(frame).tolist() == [1.0, 0.0, 0.0, 0.0]  # NaN never satisfies a rule
    either = load_playbook(
        write(tmp_path, variant(rules={"match": "any", "when": ["tire_hits_7d >= 3", "logins_7d > 1"]}))
    )
    assert either.rule_scores(frame).tolist() == [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(DataError, match="lacks"):
        both.rule_scores(frame.drop(columns=["logins_7d"]))
