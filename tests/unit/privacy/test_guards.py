"""Disclosure guards: small groups are suppressed, noise has the scale the formulas promise, the budget is
charged atomically before anything is released, and released values are rounded."""

from __future__ import annotations

import json
import math
import re
import threading
from typing import Any

import numpy as np
import pytest

from appliance.privacy.errors import BudgetExhausted, DisclosureRefused, QueryInvalid
from appliance.privacy.guards import (
    BudgetStore,
    GuardSettings,
    InMemoryBudgetStore,
    PrivacyBudget,
    Released,
    apply_guards,
    gaussian_delta,
    gaussian_sigma,
    laplace_scale,
    preflight,
)
from appliance.privacy.plan import Aggregate, Lookup, Noise, QueryPlan
from appliance.privacy.sql import parse_sql

SETTINGS = GuardSettings()
BOUNDS = {"balance": (-2.0, 2.0), "tenure": (0.0, 40.0), "age": (0.0, 120.0), "flag": (0.0, 1.0)}


def _rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


def _budget(eps: float = 100.0, delta: float = 1e-3) -> PrivacyBudget:
    return PrivacyBudget.in_memory((eps, delta))


# --- minimum group size -------------------------------------------------------------------------------


def test_groups_below_the_minimum_are_suppressed_and_their_values_never_returned() -> None:
    plan = parse_sql("SELECT SUM(balance), COUNT(*) FROM customers GROUP BY region")
    raw = {
        "north": {"sum(balance)": 1234.5678, "count(*)": 10},
        "south": {"sum(balance)": 98765.4321, "count(*)": 9},
    }
    released = apply_guards(raw, {"north": 10, "south": 9, "west": 0}, plan, SETTINGS, None)
    assert released.groups == {"north": {"sum(balance)": 1234.57, "count(*)": 10}}
    assert [s.group for s in released.suppressed] == ["south", "west"]
    text = json.dumps(released.as_dict())
    assert "98765" not in text
    reason = released.suppressed[0].reason
    assert "fewer than 10 records" in reason
    assert "9" not in reason  # the exact size of a small group is not told


def test_every_group_too_small_refuses_everything() -> None:
    plan = parse_sql("SELECT SUM(balance) FROM customers GROUP BY region")
    with pytest.raises(DisclosureRefused, match="every group has fewer than 10 records"):
        apply_guards({"a": {"sum(balance)": 5.0}}, {"a": 4, "b": 0}, plan, SETTINGS, None)


def test_the_minimum_group_size_is_a_setting() -> None:
    plan = parse_sql("SELECT COUNT(*) FROM customers")
    settings = GuardSettings(min_group_size=3)
    released = apply_guards({"": {"count(*)": 3}}, {"": 3}, plan, settings, None)
    assert released.groups == {"": {"count(*)": 3}}
    with pytest.raises(DisclosureRefused):
        apply_guards({"": {"count(*)": 2}}, {"": 2}, plan, settings, None)


# --- results that do not match their plan ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "sizes", "message"),
    [
        (
            {"a": {"sum(balance)": 1.0}, "b": {"sum(balance)": 1.0}},
            {"a": 20},
            "group 'b' without a group size",
        ),
        ({}, {"a": 20}, "group 'a' has a size but no values"),
        ({"a": {"sum(x)": 1.0}}, {"a": 20}, "the plan asks for ['sum(balance)']"),
        ({"a": {"sum(balance)": "1"}}, {"a": 20}, "'1' is not a number"),
        ({"a": {"sum(balance)": math.inf}}, {"a": 20}, "the value is infinite"),
        ({"a": {"sum(balance)": 1.0}}, {"a": -1}, "sizes are integers >= 0"),
        ({"a": {"sum(balance)": 1.0}}, {"a": True}, "sizes are integers >= 0"),
        ({}, {}, "the result has no groups"),
        ({"a": {"sum(balance)": [1.0]}}, {"a": 20}, "[1.0] is not a number"),
    ],
)
def test_a_result_that_does_not_match_its_plan_releases_nothing(
    raw: dict[str, Any], sizes: dict[str, Any], message: str
) -> None:
    plan = parse_sql("SELECT SUM(balance) FROM customers GROUP BY region")
    with pytest.raises(DisclosureRefused) as info:
        apply_guards(raw, sizes, plan, SETTINGS, None)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("select", "value", "message"),
    [
        ("AVG(balance) AS x", {"sum": 1.0}, "the parts of mean are ['sum', 'count'], got ['sum']"),
        ("VARIANCE(balance) AS x", {"sum": 1.0, "count": 3}, "the parts of variance are ['sum', 'sum_sq'"),
        ("HISTOGRAM(age) AS x", 3.0, "a histogram is a list of bucket counts"),
        ("HISTOGRAM(age) AS x", "123", "a histogram is a list of bucket counts"),
        ("HISTOGRAM(age) AS x", [1.0, math.nan], "the value is NaN"),
    ],
)
def test_values_of_the_wrong_shape_release_nothing(select: str, value: Any, message: str) -> None:
    plan = parse_sql(f"SELECT {select} FROM customers")
    with pytest.raises(DisclosureRefused) as info:
        apply_guards({"": {"x": value}}, {"": 20}, plan, SETTINGS, None)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("noise", "message"),
    [
        (Noise("gaussian", 0.5, 0.0), "gaussian noise needs 0 < delta < 1"),
        (Noise("laplace", 0.5, 1e-6), "laplace noise is pure ε-DP and takes no delta"),
        (Noise("laplace", math.nan), "noise epsilon must be a finite number > 0"),
    ],
)
def test_a_bad_noise_built_in_code_is_refused_before_the_charge(noise: Noise, message: str) -> None:
    plan = QueryPlan(table="t", aggregates=(Aggregate("sum", "balance"),), noise=noise)
    budget = _budget()
    with pytest.raises(QueryInvalid) as info:
        apply_guards(
            {"": {"sum(balance)": 1.0}},
            {"": 20},
            plan,
            SETTINGS,
            _rng(),
            bounds=BOUNDS,
            budget=budget,
            analyst="a",
        )
    assert message in str(info.value)
    assert budget.spent("a") == (0.0, 0.0)


def test_lookups_do_not_pass_through_the_guards() -> None:
    plan = QueryPlan(table="customers", lookup=Lookup("balance", (1,)))
    with pytest.raises(QueryInvalid, match="a LOOKUP returns per-record Paillier ciphertexts"):
        apply_guards({}, {"": 1}, plan, SETTINGS, None)


# --- exact release and rounding -------------------------------------------------------------------------


def test_exact_release_finishes_parts_and_rounds() -> None:
    plan = parse_sql(
        "SELECT COUNT(*), AVG(balance) AS m, VARIANCE(balance) AS v, STDDEV(balance) AS s, "
        "HISTOGRAM(age) AS h, SCORE(0.5 * balance) AS sc FROM customers"
    )
    values = np.array([1.0, 2.0, 4.0, 7.0, 1.5, 0.25, 3.0, 3.0, 2.0, 1.0, 5.5])
    parts = {"sum": float(values.sum()), "sum_sq": float((values**2).sum()), "count": len(values)}
    raw: dict[str, dict[str, Any]] = {
        "": {
            "count(*)": 11.0000000001,  # CKKS-style near-integer
            "m": {"sum": parts["sum"], "count": parts["count"]},
            "v": parts,
            "s": parts,
            "h": [3.0000001, 7.9999999, 0.0],
            "sc": 1.23456,
        }
    }
    released = apply_guards(raw, {"": 11}, plan, SETTINGS, None)
    got = released.groups[""]
    assert got["count(*)"] == 11 and isinstance(got["count(*)"], int)
    assert got["m"] == round(values.mean(), 2)
    assert got["v"] == round(values.var(ddof=1), 2)
    assert got["s"] == round(values.std(ddof=1), 2)
    assert got["h"] == (3, 8, 0)
    assert got["sc"] == 1.23
    assert released.epsilon == 0.0 and released.mechanism is None


def test_finished_values_pass_and_undefined_ones_are_none() -> None:
    plan = parse_sql("SELECT AVG(balance) AS m, VARIANCE(balance) AS v, STDDEV(tenure) AS s FROM customers")
    raw: dict[str, dict[str, Any]] = {
        "": {"m": math.nan, "v": {"sum": 1.0, "sum_sq": 1.0, "count": 1}, "s": 2.71828}
    }
    released = apply_guards(raw, {"": 12}, plan, SETTINGS, None)
    assert released.groups[""] == {"m": None, "v": None, "s": 2.72}
    assert json.loads(json.dumps(released.as_dict()))["groups"][""]["m"] is None


@pytest.mark.parametrize(
    ("plan_decimals", "settings_decimals", "expected"),
    [
        (None, 2, 1234.57),
        (0, 2, 1235.0),
        (5, 2, 1234.57),  # an analyst cannot ask for finer than the node's setting
        (-2, 2, 1200.0),
        (None, 4, 1234.5678),
    ],
)
def test_rounding(plan_decimals: int | None, settings_decimals: int, expected: float) -> None:
    plan = QueryPlan(table="t", aggregates=(Aggregate("sum", "balance"),), decimals=plan_decimals)
    released = apply_guards(
        {"": {"sum(balance)": 1234.56781}}, {"": 50}, plan, GuardSettings(decimals=settings_decimals), None
    )
    assert released.groups[""]["sum(balance)"] == expected


def test_no_negative_zero_and_counts_round_to_tens_with_negative_decimals() -> None:
    plan = QueryPlan(table="t", aggregates=(Aggregate("sum", "balance"), Aggregate("count")), decimals=-1)
    released = apply_guards({"": {"sum(balance)": -0.001, "count(*)": 47}}, {"": 47}, plan, SETTINGS, None)
    value = released.groups[""]["sum(balance)"]
    assert value == 0.0 and math.copysign(1.0, value) == 1.0  # type: ignore[arg-type]
    assert released.groups[""]["count(*)"] == 50


# --- the noise formulas ---------------------------------------------------------------------------------


def test_laplace_scale_is_sensitivity_over_epsilon() -> None:
    assert laplace_scale(2.0, 0.5) == 4.0
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
        laplace_scale(1.0, 0.0)
    with pytest.raises(ValueError, match="sensitivity must be a finite number >= 0"):
        laplace_scale(-1.0, 1.0)


def test_classic_gaussian_sigma_is_dwork_roth() -> None:
    assert gaussian_sigma(2.0, 0.5, 1e-5, method="classic") == pytest.approx(
        2.0 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    )
    # Theorem A.1 holds for epsilon < 1 only: beyond it the analytic sigma is used.
    assert gaussian_sigma(1.0, 2.0, 1e-5, method="classic") == gaussian_sigma(1.0, 2.0, 1e-5)


@pytest.mark.parametrize(
    ("epsilon", "delta"), [(0.1, 1e-6), (0.5, 1e-5), (1.0, 1e-5), (3.0, 1e-8), (10.0, 1e-9)]
)
def test_analytic_gaussian_sigma_is_the_smallest_meeting_balle_wang(epsilon: float, delta: float) -> None:
    sigma = gaussian_sigma(1.0, epsilon, delta)
    assert gaussian_delta(sigma, 1.0, epsilon) <= delta
    assert gaussian_delta(sigma * 0.999, 1.0, epsilon) > delta  # any smaller sigma leaks more than delta
    assert gaussian_sigma(3.0, epsilon, delta) == pytest.approx(3 * sigma)  # linear in the sensitivity
    if epsilon < 1:
        assert sigma < gaussian_sigma(1.0, epsilon, delta, method="classic")


def test_analytic_gaussian_sigma_regression_value() -> None:
    # epsilon=1, delta=1e-5, sensitivity 1: the analytic sigma is about 3.73 (classic: 4.84 at epsilon<1).
    assert gaussian_sigma(1.0, 1.0, 1e-5) == pytest.approx(3.7306, abs=1e-3)


def test_gaussian_needs_delta_in_0_1() -> None:
    with pytest.raises(ValueError, match="0 < delta < 1"):
        gaussian_sigma(1.0, 1.0, 0.0)


# --- noise applied by the guards ----------------------------------------------------------------------

N_GROUPS = 4000


def _many_groups(plan: QueryPlan, value: Any) -> tuple[dict[str, Any], dict[str, int]]:
    names = [a.name for a in plan.aggregates]
    raw = {f"g{i}": dict.fromkeys(names, value) for i in range(N_GROUPS)}
    return raw, {f"g{i}": 50 for i in range(N_GROUPS)}


def _draws(plan: QueryPlan, value: float = 0.0, seed: int = 7, **kwargs: Any) -> np.ndarray:
    raw, sizes = _many_groups(plan, value)
    settings = GuardSettings(decimals=12, max_epsilon_per_query=5.0, max_delta_per_query=1e-3)
    released = apply_guards(
        raw, sizes, plan, settings, _rng(seed), bounds=BOUNDS, budget=_budget(), analyst="ann", **kwargs
    )
    name = plan.aggregates[0].name
    return np.array([released.groups[k][name] for k in sizes], dtype=float) - value


def test_laplace_noise_has_mean_zero_and_scale_sensitivity_over_epsilon() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 0.5) */ SUM(balance) FROM customers GROUP BY region")
    noise = _draws(plan, value=100.0)
    b = 2.0 / 0.5  # sensitivity max(|lo|, |hi|) = 2
    assert abs(noise.mean()) < 0.25  # standard error of the mean: sqrt(2) * 4 / sqrt(4000) = 0.09
    assert np.abs(noise).mean() == pytest.approx(b, rel=0.05)  # E|X| = b
    assert noise.std() == pytest.approx(math.sqrt(2) * b, rel=0.06)


def test_gaussian_noise_has_the_analytic_sigma_and_a_normal_shape() -> None:
    plan = parse_sql("SELECT /*+ NOISE(gaussian, 0.5, 1e-5) */ SUM(balance) FROM customers GROUP BY region")
    noise = _draws(plan)
    sigma = gaussian_sigma(2.0, 0.5, 1e-5)
    assert abs(noise.mean()) < 0.1 * sigma
    assert noise.std() == pytest.approx(sigma, rel=0.05)
    within = np.mean(np.abs(noise) < sigma)
    assert within == pytest.approx(0.6827, abs=0.03)  # Laplace would put ~0.76 within one std


def test_classic_gaussian_setting_is_used() -> None:
    plan = parse_sql("SELECT /*+ NOISE(gaussian, 0.5, 1e-5) */ SUM(balance) FROM customers GROUP BY region")
    raw, sizes = _many_groups(plan, 0.0)
    settings = GuardSettings(decimals=12, gaussian="classic")
    released = apply_guards(raw, sizes, plan, settings, _rng(), bounds=BOUNDS, budget=_budget(), analyst="a")
    noise = np.array([released.groups[k]["sum(balance)"] for k in sizes], dtype=float)
    assert noise.std() == pytest.approx(gaussian_sigma(2.0, 0.5, 1e-5, method="classic"), rel=0.05)


def test_epsilon_is_split_evenly_over_the_outputs() -> None:
    one = parse_sql("SELECT /*+ NOISE(laplace, 1) */ SUM(balance) FROM customers GROUP BY region")
    two = parse_sql(
        "SELECT /*+ NOISE(laplace, 1) */ SUM(balance), SUM(tenure) FROM customers GROUP BY region"
    )
    ratio = _draws(two).std() / _draws(one, seed=8).std()
    assert ratio == pytest.approx(2.0, rel=0.1)  # each of two outputs gets epsilon / 2


def test_count_noise_has_sensitivity_one_and_releases_non_negative_integers() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 1) */ COUNT(*) FROM customers GROUP BY region")
    raw, sizes = _many_groups(plan, 50)
    released = apply_guards(raw, sizes, plan, SETTINGS, _rng(), budget=_budget(), analyst="ann")
    counts = np.array([released.groups[k]["count(*)"] for k in sizes])
    assert all(isinstance(released.groups[k]["count(*)"], int) for k in sizes)
    assert (counts >= 0).all()
    assert np.abs(counts - 50).mean() == pytest.approx(1.0, rel=0.1)  # Laplace(1), rounded


def test_dot_sensitivity_is_max_weight_times_the_column_bound() -> None:
    plan = QueryPlan(
        table="t",
        aggregates=(Aggregate("dot", "balance", weights=(0.5, -3.0, 1.0)),),
        group_by=("region",),
        noise=Noise("laplace", 1.0),
    )
    assert np.abs(_draws(plan)).mean() == pytest.approx(3.0 * 2.0, rel=0.05)


def test_dot_by_name_needs_the_largest_weight() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 1) */ DOT(balance, 'risk') FROM customers GROUP BY region")
    assert np.abs(_draws(plan, weight_bounds={"risk": 0.25})).mean() == pytest.approx(0.5, rel=0.05)
    with pytest.raises(DisclosureRefused, match=re.escape("largest |weight| of the stored vector 'risk'")):
        _draws(plan)


def test_score_sum_sensitivity_comes_from_interval_arithmetic() -> None:
    plan = parse_sql(
        "SELECT /*+ NOISE(laplace, 1) */ SCORE_SUM(2 * tenure - balance + 1) FROM customers GROUP BY region"
    )
    # per row: 2 * [0, 40] - [-2, 2] + 1 = [-1, 83], so the sensitivity is 83
    assert np.abs(_draws(plan)).mean() == pytest.approx(83.0, rel=0.05)


def test_noisy_mean_is_clamped_to_the_bounds_and_close_for_large_groups() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 1) */ AVG(tenure) AS m FROM customers GROUP BY region")
    raw = {
        "big": {"m": {"sum": 20.0 * 100_000, "count": 100_000}},
        "tiny": {"m": {"sum": 40.0 * 10, "count": 10}},
    }
    released = apply_guards(
        raw,
        {"big": 100_000, "tiny": 10},
        plan,
        SETTINGS,
        _rng(),
        bounds=BOUNDS,
        budget=_budget(),
        analyst="a",
    )
    assert released.groups["big"]["m"] == pytest.approx(20.0, abs=0.05)
    assert 0.0 <= released.groups["tiny"]["m"] <= 40.0  # type: ignore[operator]


def test_noisy_variance_and_stddev_stay_in_range() -> None:
    plan = parse_sql(
        "SELECT /*+ NOISE(laplace, 1) */ VARIANCE(balance) AS v, STDDEV(balance) AS s "
        "FROM customers GROUP BY region"
    )
    values = np.linspace(-2, 2, 1000)
    parts = {"sum": float(values.sum()), "sum_sq": float((values**2).sum()), "count": 1000}
    raw = {f"g{i}": {"v": parts, "s": parts} for i in range(200)}
    released = apply_guards(
        raw, dict.fromkeys(raw, 1000), plan, SETTINGS, _rng(), bounds=BOUNDS, budget=_budget(), analyst="a"
    )
    v = np.array([g["v"] for g in released.groups.values()], dtype=float)
    s = np.array([g["s"] for g in released.groups.values()], dtype=float)
    assert (v >= 0).all() and (v <= 4.0 * 1000 / 999 + 0.01).all()
    assert np.median(v) == pytest.approx(values.var(ddof=1), rel=0.1)
    assert np.median(s) == pytest.approx(values.std(ddof=1), rel=0.1)


def test_noisy_histogram_is_non_negative_integers() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 0.5) */ HISTOGRAM(age) AS h FROM customers")
    released = apply_guards(
        {"": {"h": [0, 5, 100, 40]}},
        {"": 145},
        plan,
        SETTINGS,
        _rng(),
        bounds=BOUNDS,
        budget=_budget(),
        analyst="a",
    )
    h = released.groups[""]["h"]
    assert isinstance(h, tuple) and len(h) == 4
    assert all(isinstance(x, int) and x >= 0 for x in h)


def test_noisy_mean_needs_its_parts_and_refuses_before_charging() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 1) */ AVG(balance) AS m FROM customers")
    budget = _budget()
    with pytest.raises(DisclosureRefused, match=r"noisy mean needs its parts \['sum', 'count'\]"):
        apply_guards(
            {"": {"m": 1.5}}, {"": 50}, plan, SETTINGS, _rng(), bounds=BOUNDS, budget=budget, analyst="a"
        )
    assert budget.spent("a") == (0.0, 0.0)


def test_the_same_seed_gives_the_same_release() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 1) */ SUM(balance) FROM customers")

    def run() -> Released:
        return apply_guards(
            {"": {"sum(balance)": 3.0}},
            {"": 50},
            plan,
            SETTINGS,
            _rng(3),
            bounds=BOUNDS,
            budget=_budget(),
            analyst="a",
            query_id="q1",
        )

    assert run() == run()


# --- what is refused before anything is charged or released ---------------------------------------------


def test_missing_bounds_refuse_and_charge_nothing() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 1) */ SUM(income) FROM customers")
    budget = _budget()
    with pytest.raises(DisclosureRefused, match="needs declared bounds \\(lo, hi\\) for column 'income'"):
        apply_guards(
            {"": {"sum(income)": 1.0}},
            {"": 50},
            plan,
            SETTINGS,
            _rng(),
            bounds=BOUNDS,
            budget=budget,
            analyst="a",
        )
    assert budget.spent("a") == (0.0, 0.0)


def test_epsilon_over_the_per_query_maximum_is_refused() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 2) */ SUM(balance) FROM customers")
    budget = _budget()
    with pytest.raises(DisclosureRefused, match="asks for ε=2 but one query may spend at most ε=1"):
        apply_guards(
            {"": {"sum(balance)": 1.0}},
            {"": 50},
            plan,
            SETTINGS,
            _rng(),
            bounds=BOUNDS,
            budget=budget,
            analyst="a",
        )
    assert budget.spent("a") == (0.0, 0.0)


def test_delta_over_the_per_query_maximum_is_refused() -> None:
    plan = parse_sql("SELECT /*+ NOISE(gaussian, 1, 0.01) */ SUM(balance) FROM customers")
    with pytest.raises(
        DisclosureRefused, match=re.escape("asks for δ=0.01 but one query may spend at most δ=1e-05")
    ):
        apply_guards(
            {"": {"sum(balance)": 1.0}},
            {"": 50},
            plan,
            SETTINGS,
            _rng(),
            bounds=BOUNDS,
            budget=_budget(),
            analyst="a",
        )


def test_all_groups_small_refuses_without_charging() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 1) */ SUM(balance) FROM customers")
    budget = _budget()
    with pytest.raises(DisclosureRefused, match="every group"):
        apply_guards(
            {"": {"sum(balance)": 1.0}},
            {"": 5},
            plan,
            SETTINGS,
            _rng(),
            bounds=BOUNDS,
            budget=budget,
            analyst="a",
        )
    assert budget.spent("a") == (0.0, 0.0)


def test_noise_without_budget_or_rng_is_a_wiring_error() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 1) */ SUM(balance) FROM customers")
    raw, sizes = {"": {"sum(balance)": 1.0}}, {"": 50}
    with pytest.raises(ValueError, match="pass budget= and analyst="):
        apply_guards(raw, sizes, plan, SETTINGS, _rng(), bounds=BOUNDS)
    with pytest.raises(ValueError, match=r"numpy\.random\.Generator"):
        apply_guards(raw, sizes, plan, SETTINGS, None, bounds=BOUNDS, budget=_budget(), analyst="a")


# --- the privacy budget ---------------------------------------------------------------------------------


def test_budget_is_charged_per_query_and_exhaustion_releases_nothing() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 0.5) */ SUM(balance) FROM customers")
    budget = PrivacyBudget.in_memory((1.0, 0.0))
    raw, sizes = {"": {"sum(balance)": 1.0}}, {"": 50}

    def query() -> Released:
        return apply_guards(raw, sizes, plan, SETTINGS, _rng(), bounds=BOUNDS, budget=budget, analyst="ann")

    first = query()
    assert (first.epsilon, first.delta, first.mechanism) == (0.5, 0.0, "laplace")
    query()
    with pytest.raises(BudgetExhausted) as info:
        query()
    message = str(info.value)
    assert "needs ε=0.5" in message and "ε=0, δ=0 is left of ε=1" in message
    assert "ask an admin to raise the budget" in message
    assert budget.spent("ann") == (1.0, 0.0)
    assert budget.spent("bob") == (0.0, 0.0)  # budgets are per analyst

    budget.grant("ann", 1.5, 0.0)
    assert budget.remaining("ann") == (0.5, 0.0)
    assert query().epsilon == 0.5


def test_ten_charges_of_a_tenth_fit_a_budget_of_one() -> None:
    budget = PrivacyBudget.in_memory((1.0, 0.0))
    for i in range(10):
        budget.charge("ann", 0.1, 0.0, f"q{i}")
    with pytest.raises(BudgetExhausted):
        budget.charge("ann", 0.1, 0.0, "q10")


def test_delta_is_budgeted_too() -> None:
    budget = PrivacyBudget.in_memory((10.0, 1e-5))
    budget.charge("ann", 0.1, 1e-5, "q1")
    with pytest.raises(BudgetExhausted, match="δ=1e-06"):
        budget.charge("ann", 0.1, 1e-6, "q2")


def test_a_query_id_is_charged_once() -> None:
    budget = _budget()
    budget.charge("ann", 0.1, 0.0, "req-1")
    with pytest.raises(DisclosureRefused, match="query id 'req-1' was already charged"):
        budget.charge("ann", 0.1, 0.0, "req-1")


def test_concurrent_charges_never_overspend() -> None:
    budget = PrivacyBudget.in_memory((1.0, 0.0))
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker(i: int) -> None:
        start.wait()
        try:
            budget.charge("ann", 0.1, 0.0, f"q{i}")
            ok = True
        except BudgetExhausted:
            ok = False
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 10
    assert budget.spent("ann")[0] == pytest.approx(1.0)


def test_budget_arguments_are_checked() -> None:
    budget = _budget()
    assert isinstance(InMemoryBudgetStore(), BudgetStore)
    with pytest.raises(ValueError, match="non-empty query id"):
        budget.charge("ann", 0.1, 0.0, "")
    with pytest.raises(ValueError, match="finite ε >= 0"):
        budget.charge("ann", math.nan, 0.0, "q")
    with pytest.raises(ValueError, match="non-empty string"):
        budget.charge("", 0.1, 0.0, "q")
    with pytest.raises(ValueError, match="grant needs finite epsilon"):
        budget.grant("ann", -1.0, 0.0)


def test_preflight_refuses_early_and_charges_nothing() -> None:
    plan = parse_sql("SELECT /*+ NOISE(laplace, 0.5) */ SUM(balance) FROM customers")
    budget = PrivacyBudget.in_memory((0.4, 0.0))
    assert preflight(parse_sql("SELECT SUM(balance) FROM customers"), SETTINGS) == (0.0, 0.0)
    with pytest.raises(DisclosureRefused, match="needs declared bounds"):
        preflight(plan, SETTINGS)
    with pytest.raises(BudgetExhausted, match="nothing was computed"):
        preflight(plan, SETTINGS, bounds=BOUNDS, budget=budget, analyst="ann")
    budget.grant("ann", 0.5, 0.0)
    assert preflight(plan, SETTINGS, bounds=BOUNDS, budget=budget, analyst="ann") == (0.5, 0.0)
    assert budget.spent("ann") == (0.0, 0.0)


# --- settings and the release ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_group_size": 0}, "min_group_size must be at least 1"),
        ({"min_group_size": 2.5}, "min_group_size must be an integer"),
        ({"decimals": 20}, "decimals must be an integer from -12 to 12"),
        ({"max_epsilon_per_query": 0.0}, "max_epsilon_per_query must be a finite number > 0"),
        ({"max_delta_per_query": 1.0}, "max_delta_per_query must be in [0, 1)"),
        ({"default_budget": (1.0,)}, "default_budget is a pair"),
        ({"default_budget": (-1.0, 0.0)}, "default_budget needs finite epsilon >= 0"),
        ({"gaussian": "fast"}, 'gaussian must be "analytic" or "classic"'),
    ],
)
def test_guard_settings_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        GuardSettings(**kwargs)
    assert message in str(info.value)


def test_released_as_dict_is_plain_json() -> None:
    plan = parse_sql(
        "SELECT /*+ NOISE(laplace, 1) */ COUNT(*), HISTOGRAM(age) AS h FROM customers GROUP BY region"
    )
    raw: dict[str, dict[str, Any]] = {"a": {"count(*)": 30, "h": [10, 20]}, "b": {"count(*)": 2, "h": [1, 1]}}
    released = apply_guards(
        raw,
        {"a": 30, "b": 2},
        plan,
        SETTINGS,
        _rng(),
        bounds=BOUNDS,
        budget=_budget(),
        analyst="a",
        query_id="r1",
    )
    data = json.loads(json.dumps(released.as_dict()))
    assert set(data) == {"groups", "suppressed", "epsilon", "delta", "mechanism", "decimals", "query_id"}
    assert list(data["groups"]) == ["a"]
    assert isinstance(data["groups"]["a"]["h"], list)
    assert data["suppressed"] == [{"group": "b", "reason": "fewer than 10 records (the minimum group size)"}]
    assert (data["epsilon"], data["mechanism"], data["query_id"]) == (1.0, "laplace", "r1")
