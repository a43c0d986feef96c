"""The JSON form of a query plan: every shape QueryPlan.as_dict writes reads back equal; every mistake is
refused with the key path and the fix."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from appliance.privacy._plan_json import MAX_LOOKUP_IDS, MAX_WEIGHTS, plan_from_dict
from appliance.privacy.errors import QueryInvalid
from appliance.privacy.plan import Aggregate, Lookup, Noise, Predicate, QueryPlan

FULL = QueryPlan(
    table="customers",
    aggregates=(
        Aggregate("sum", "balance"),
        Aggregate("count", None, alias="n"),
        Aggregate("count", "has_complaint"),
        Aggregate("mean", "balance", alias="avg balance"),
        Aggregate("variance", "tenure"),
        Aggregate("stddev", "tenure"),
        Aggregate("histogram", "age"),
        Aggregate("dot", "balance", weights=(0.5, -1.0, 2.25)),
        Aggregate("dot", "tenure", alias="risk_dot", weights_ref="risk_V3"),
        Aggregate(
            "score",
            None,
            alias="risk",
            coefficients=(("balance", 0.3), ("tenure", 0.1), ("has_complaint", -2.0)),
            bias=1.5,
            reduce="mean",
        ),
        Aggregate("score", None, alias="risk_total", coefficients=(("balance", 1.0),), reduce="sum"),
    ),
    where=(
        Predicate("region", "=", ("CN-GD",)),
        Predicate("segment", "!=", ("gold",)),
        Predicate("channel", "in", ("web", "app")),
        Predicate("has_complaint", "not in", (1,)),
    ),
    group_by=("product", "city"),
    noise=Noise("gaussian", 0.5, 1e-6),
    decimals=1,
)


def _minimal(**extra: Any) -> dict[str, Any]:
    return {"table": "customers", "select": [{"func": "count"}], **extra}


def test_full_plan_round_trips_through_dict_and_json_text() -> None:
    assert plan_from_dict(FULL.as_dict()) == FULL
    assert plan_from_dict(json.loads(json.dumps(FULL.as_dict()))) == FULL
    assert QueryPlan.from_dict(FULL.as_dict()) == FULL


def test_lookup_plan_round_trips() -> None:
    plan = QueryPlan(table="customers", lookup=Lookup("balance", (3, 1, 2)))
    assert plan_from_dict(plan.as_dict()) == plan


def test_missing_optional_keys_take_friendly_defaults() -> None:
    plan = plan_from_dict(_minimal())
    assert plan == QueryPlan(table="customers", aggregates=(Aggregate("count"),))
    nulls = plan_from_dict(_minimal(where=None, group_by=None, noise=None, lookup=None, decimals=None))
    assert nulls == plan


def test_noise_delta_defaults_to_zero_for_laplace() -> None:
    plan = plan_from_dict(_minimal(noise={"mechanism": "LAPLACE", "epsilon": 1}))
    assert plan.noise == Noise("laplace", 1.0, 0.0)
    assert isinstance(plan.noise.epsilon, float)


def test_score_defaults_reduce_mean_and_bias_zero() -> None:
    plan = plan_from_dict({"table": "t", "select": [{"func": "score", "coefficients": {"a": 2}}]})
    assert plan.aggregates[0] == Aggregate("score", None, coefficients=(("a", 2.0),), bias=0.0, reduce="mean")
    assert plan.aggregates[0].name == "score(*)"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"column": "region", "value": "CN-GD"}, Predicate("region", "=", ("CN-GD",))),
        ({"column": "region", "value": ["a", "b"]}, Predicate("region", "in", ("a", "b"))),
        ({"column": "region", "op": "<>", "value": "a"}, Predicate("region", "!=", ("a",))),
        ({"column": "region", "op": "NOT IN", "value": ["a"]}, Predicate("region", "not in", ("a",))),
        ({"column": "flag", "op": "=", "value": 0}, Predicate("flag", "=", (0,))),
        ({"column": "flag", "op": "!=", "value": -3}, Predicate("flag", "!=", (-3,))),
    ],
)
def test_predicate_forms(where: dict[str, Any], expected: Predicate) -> None:
    assert plan_from_dict(_minimal(where=[where])).where == (expected,)


def test_func_is_case_insensitive_and_default_alias_is_dropped() -> None:
    plan = plan_from_dict({"table": "t", "select": [{"func": "SUM", "column": "b", "as": "sum(b)"}]})
    assert plan.aggregates == (Aggregate("sum", "b"),)


def test_a_million_weights_are_accepted() -> None:
    weights = [0.25] * MAX_WEIGHTS
    plan = plan_from_dict({"table": "t", "select": [{"func": "dot", "column": "b", "weights": weights}]})
    agg = plan.aggregates[0]
    assert agg.weights is not None and len(agg.weights) == MAX_WEIGHTS


def test_integer_weights_become_floats() -> None:
    plan = plan_from_dict({"table": "t", "select": [{"func": "dot", "column": "b", "weights": [1, 2]}]})
    assert plan.aggregates[0].weights == (1.0, 2.0)
    assert all(type(w) is float for w in plan.aggregates[0].weights or ())


def _sel(**agg: Any) -> dict[str, Any]:
    return {"table": "customers", "select": [{"func": "count"}, agg]}


REFUSED: list[tuple[Any, str]] = [
    ([1, 2], "a query plan is a JSON object"),
    ({"select": [{"func": "count"}]}, '"table" is missing'),
    (_minimal(grup_by=["x"]), "plan: unknown key 'grup_by'; did you mean 'group_by'"),
    (_minimal(extra=1), "plan: unknown key 'extra'; allowed keys: table, select"),
    ({"table": "Customers", "select": [{"func": "count"}]}, "table: 'Customers' is not a valid name"),
    ({"table": "Customers", "select": [{"func": "count"}]}, "did you mean 'customers'"),
    ({"table": 5, "select": [{"func": "count"}]}, "table: 5 is not a name"),
    ({"table": "t"}, "select: give at least one output"),
    ({"table": "t", "select": {"func": "count"}}, "select: {'func': 'count'} is not a list"),
    (_sel(func="median", column="b"), "select[1].func: 'median' is not supported; use one of sum, count"),
    (_sel(column="b"), "select[1].func is missing"),
    (_sel(func="sum"), "select[1].column is missing; sum needs a column"),
    (_sel(func="sum", column="b", colum="x"), "select[1]: unknown key 'colum'; did you mean 'column'"),
    (_sel(func="sum", column="b", weights=[1.0]), "select[1].weights: only dot takes weights"),
    (_sel(func="sum", column="b", bias=1.0), "select[1].bias: only score takes bias"),
    (_sel(func="dot", column="b"), "select[1]: dot needs exactly one of weights"),
    (_sel(func="dot", column="b", weights=[1.0], weights_ref="w"), "dot needs exactly one of weights"),
    (_sel(func="dot", column="b", weights=[]), "select[1].weights: the list is empty"),
    (_sel(func="dot", column="b", weights=[1.0, math.nan]), "select[1].weights[1]: nan is not finite"),
    (_sel(func="dot", column="b", weights=[math.inf]), "select[1].weights[0]: inf is not finite"),
    (_sel(func="dot", column="b", weights=[True]), "select[1].weights[0]: True is not a number"),
    (_sel(func="dot", column="b", weights=["1"]), "select[1].weights[0]: '1' is not a number"),
    (_sel(func="dot", column="b", weights=[10**400]), "select[1].weights[0]: 1000"),
    (
        _sel(func="dot", column="b", weights_ref="bad name"),
        "select[1].weights_ref: 'bad name' is not a weight",
    ),
    (_sel(func="score"), "select[1].coefficients: score needs coefficients"),
    (_sel(func="score", coefficients={}), "select[1].coefficients: score needs coefficients"),
    (_sel(func="score", coefficients={"a": "x"}), "select[1].coefficients.a: 'x' is not a number"),
    (_sel(func="score", coefficients={"A b": 1}), "select[1].coefficients key: 'A b' is not a valid name"),
    (_sel(func="score", column="b", coefficients={"a": 1}), "select[1].column: score takes its columns"),
    (_sel(func="score", coefficients={"a": 1}, bias=True), "select[1].bias: True is not a number"),
    (_sel(func="score", coefficients={"a": 1}, reduce="max"), "select[1].reduce: 'max' is not supported"),
    (_sel(func="sum", column="b", **{"as": ""}), "select[1].as: '' is not a usable output name"),
    (_sel(func="sum", column="b", **{"as": 3}), "select[1].as: 3 is not an output name"),
    (_sel(func="count", **{"as": "count(*)"}), "output name 'count(*)' is already used by select[0]"),
    (
        {"table": "t", "select": [{"func": "sum", "column": "region"}], "group_by": ["region"]},
        "select[0]: column 'region' is a group_by attribute",
    ),
    (
        {"table": "t", "select": [{"func": "score", "coefficients": {"region": 1}}], "group_by": ["region"]},
        "select[0]: column 'region' is a group_by attribute",
    ),
    (_minimal(where=[{"column": "r", "op": ">", "value": 1}]), "where[0].op: '>' is not supported"),
    (_minimal(where=[{"column": "r", "op": "in", "value": "a"}]), "where[0].value: 'in' takes a list"),
    (_minimal(where=[{"column": "r", "op": "=", "value": ["a"]}]), "where[0].value: '=' takes one value"),
    (_minimal(where=[{"column": "r", "value": 1.5}]), "where[0].value: 1.5 is not a category or an integer"),
    (_minimal(where=[{"column": "r", "value": True}]), "where[0].value: True is a boolean; write 1 or 0"),
    (_minimal(where=[{"column": "r", "value": ["a", None]}]), "where[0].value[1]: None is not a category"),
    (_minimal(where=[{"column": "r", "value": []}]), "where[0].value: the list is empty"),
    (_minimal(where=[{"column": "r", "value": 2**63}]), "where[0].value: 9223372036854775808 does not fit"),
    (_minimal(where=[{"value": "a"}]), "where[0].column is missing"),
    (_minimal(where=[{"column": "r"}]), "where[0].value is missing"),
    (_minimal(where=[{"column": "r", "value": "a", "neg": True}]), "where[0]: unknown key 'neg'"),
    (_minimal(where={"column": "r"}), "where: {'column': 'r'} is not a list"),
    (_minimal(group_by="product"), "group_by: 'product' is not a list"),
    (_minimal(group_by=["a", "a"]), "group_by[1]: 'a' is listed twice"),
    (_minimal(group_by=["a", "b", "c", "d", "e"]), "group_by: 5 items; at most 4"),
    (_minimal(noise="laplace"), "noise: noise is an object"),
    (_minimal(noise={"epsilon": 1}), "noise.mechanism is missing"),
    (_minimal(noise={"mechanism": "laplace"}), "noise.epsilon is missing"),
    (_minimal(noise={"mechanism": "exponential", "epsilon": 1}), "noise.mechanism: 'exponential' is not a"),
    (_minimal(noise={"mechanism": "laplace", "epsilon": 0}), "noise.epsilon: 0.0 must be > 0"),
    (_minimal(noise={"mechanism": "laplace", "epsilon": -1}), "noise.epsilon: -1.0 must be > 0"),
    (_minimal(noise={"mechanism": "laplace", "epsilon": math.nan}), "noise.epsilon: nan is not finite"),
    (_minimal(noise={"mechanism": "laplace", "epsilon": math.inf}), "noise.epsilon: inf is not finite"),
    (_minimal(noise={"mechanism": "laplace", "epsilon": True}), "noise.epsilon: True is not a number"),
    (_minimal(noise={"mechanism": "laplace", "epsilon": 1, "delta": 1e-6}), "noise.delta: laplace noise"),
    (_minimal(noise={"mechanism": "gaussian", "epsilon": 1}), "noise.delta: gaussian noise needs 0 < delta"),
    (
        _minimal(noise={"mechanism": "gaussian", "epsilon": 1, "delta": 1}),
        "gaussian noise needs 0 < delta < 1",
    ),
    (_minimal(noise={"mechanism": "laplace", "epsilon": 1, "sigma": 2}), "noise: unknown key 'sigma'"),
    ({"table": "t", "lookup": {"column": "b"}}, "lookup.ids is missing"),
    ({"table": "t", "lookup": {"column": "b", "ids": []}}, "lookup.ids: the list is empty"),
    ({"table": "t", "lookup": {"column": "b", "ids": [0]}}, "lookup.ids[0]: 0 is not a record id"),
    ({"table": "t", "lookup": {"column": "b", "ids": [-4]}}, "lookup.ids[0]: -4 is not a record id"),
    ({"table": "t", "lookup": {"column": "b", "ids": [1, "2"]}}, "lookup.ids[1]: '2' is not a record id"),
    ({"table": "t", "lookup": {"column": "b", "ids": [True]}}, "lookup.ids[0]: True is not a record id"),
    ({"table": "t", "lookup": {"column": "b", "ids": [1.0]}}, "lookup.ids[0]: 1.0 is not a record id"),
    ({"table": "t", "lookup": {"column": "b", "ids": [5, 5]}}, "lookup.ids[1]: id 5 is listed twice"),
    (
        {"table": "t", "lookup": {"column": "b", "ids": list(range(1, MAX_LOOKUP_IDS + 2))}},
        "lookup.ids: 1001 items; at most 1000",
    ),
    (_minimal(lookup={"column": "b", "ids": [1]}), "a lookup returns per-record encrypted values"),
    ({"table": "t", "lookup": {"column": "b", "ids": [1]}, "decimals": 1}, "takes no decimals"),
    (_minimal(decimals=True), "decimals: True is not a number of decimals"),
    (_minimal(decimals=13), "decimals: 13 is not a number of decimals; use an integer from -12 to 12"),
    (_minimal(decimals="2"), "decimals: '2' is not a number of decimals"),
    (_minimal(decimals=1.0), "decimals: 1.0 is not a number of decimals"),
]


@pytest.mark.parametrize(("data", "message"), REFUSED, ids=[m[:48] for _, m in REFUSED])
def test_mistakes_are_refused_with_the_key_path_and_fix(data: Any, message: str) -> None:
    with pytest.raises(QueryInvalid) as info:
        plan_from_dict(data)
    assert message in str(info.value)


def test_too_many_weights_are_refused_before_reading_them() -> None:
    data = {"table": "t", "select": [{"func": "dot", "column": "b", "weights": [0.0] * (MAX_WEIGHTS + 1)}]}
    with pytest.raises(QueryInvalid, match=r"select\[0\]\.weights: 1000001 items; at most 1000000"):
        plan_from_dict(data)
