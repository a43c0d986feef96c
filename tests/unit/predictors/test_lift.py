"""Lift report: Wilson and Newcombe intervals against the published examples, the z-test against scipy,
and the per-playbook grouping with empty groups."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from predictors.errors import DataError
from predictors.lift import (
    event_conversions,
    lift_report,
    newcombe_interval,
    two_proportion_p,
    wilson_interval,
)

# Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score, no correction).
WILSON = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0000),
    (0, 10, 0.0000, 0.2775),
]
# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score).
NEWCOMBE = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), WILSON)
def test_wilson_interval_known_values(x: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(x, n)
    assert got == pytest.approx((low, high), abs=6e-5)


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE)
def test_newcombe_hybrid_interval_known_values(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    assert newcombe_interval(*counts) == pytest.approx(expected, abs=6e-5)


@pytest.mark.parametrize("counts", [(56, 70, 48, 80), (9, 10, 3, 10), (120, 1000, 95, 1000), (3, 40, 1, 45)])
def test_z_test_p_value_equals_the_uncorrected_chi_square_test(counts: tuple[int, int, int, int]) -> None:
    x1, n1, x2, n2 = counts
    _, p, _, _ = chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
    assert two_proportion_p(*counts) == pytest.approx(p, rel=1e-9)
    assert two_proportion_p(0, 10, 0, 20) == 1.0  # no variation at all


def triggers(rows: list[tuple[str, str, str | None, int]]) -> pd.DataFrame:
    data = [(p, s, o) for p, s, o, k in rows for _ in range(k)]
    return pd.DataFrame(data, columns=["playbook", "status", "outcome"])


def test_lift_report_per_playbook() -> None:
    frame = triggers(
        [
            ("tires", "raised", "converted", 56),
            ("tires", "raised", "declined", 10),
            ("tires", "raised", None, 4),  # no outcome yet: counted, not converted
            ("tires", "holdout", "converted", 48),
            ("tires", "holdout", None, 32),
            ("tires", "suppressed", "converted", 50),  # never part of the comparison
            ("tires", "deferred", None, 5),
            ("churn", "raised", "converted", 3),
            ("churn", "raised", "contacted", 7),
        ]
    )
    rows = lift_report(frame)
    assert [r.playbook for r in rows] == ["churn", "tires"]
    churn, tires = rows
    assert (tires.treated_n, tires.treated_conversions, tires.holdout_n, tires.holdout_conversions) == (
        70,
        56,
        80,
        48,
    )
    assert tires.treated_rate == pytest.approx(0.8) and tires.holdout_rate == pytest.approx(0.6)
    assert tires.lift == pytest.approx(0.2)
    assert (tires.ci_low, tires.ci_high) == pytest.approx((0.0524, 0.3339), abs=6e-5)
    assert tires.relative_lift == pytest.approx(0.2 / 0.6)
    assert tires.p_value is not None and 0.005 < tires.p_value < 0.01
    assert tires.note is None

    assert (churn.treated_n, churn.treated_conversions, churn.holdout_n) == (10, 3, 0)
    assert churn.treated_rate == pytest.approx(0.3) and churn.holdout_rate is None
    assert churn.lift is None and churn.ci_low is None and churn.ci_high is None and churn.p_value is None
    assert churn.note is not None and "no holdout triggers yet" in churn.note
    assert churn.as_dict()["playbook"] == "churn"


def test_lift_with_no_holdout_conversions_has_no_relative_lift() -> None:
    (row,) = lift_report(triggers([("p", "raised", "converted", 10), ("p", "holdout", None, 20)]))
    assert (row.ci_low, row.ci_high) == pytest.approx((0.6791, 1.0), abs=6e-5)
    assert row.relative_lift is None and "relative lift is undefined" in (row.note or "")


def test_lift_report_edge_inputs() -> None:
    assert lift_report(triggers([("p", "suppressed", None, 3)])) == []
    assert lift_report(pd.DataFrame(columns=["playbook", "status", "outcome"])) == []
    with pytest.raises(DataError, match="missing outcome"):
        lift_report(pd.DataFrame({"playbook": ["p"], "status": ["raised"]}))
    with pytest.raises(DataError, match="at least one trial"):
        wilson_interval(0, 0)


def test_event_conversions_count_the_target_inside_the_horizon_only() -> None:
    t0 = pd.Timestamp("2026-10-01T12:00:00Z")
    trig = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5],
            "created": [t0, t0, t0, t0, t0 + pd.Timedelta(days=20)],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 3, 5],
            "ts": [
                t0 + pd.Timedelta(days=13, hours=23),  # inside (created, created + 14 d]
                t0 - pd.Timedelta(seconds=1),  # before the trigger: not caused by it
                t0 + pd.Timedelta(days=14, seconds=1),  # after the horizon
                t0,  # at the very moment of the trigger: not after it
                t0 + pd.Timedelta(days=21),  # customer 5's window is still open
            ],
        }
    )
    now = (t0 + pd.Timedelta(days=30)).to_pydatetime()
    got = event_conversions(trig, events, 14, now)
    assert got.tolist() == [True, False, False, False, None]


def test_lift_on_events_leaves_open_triggers_out_and_names_the_goal() -> None:
    frame = pd.DataFrame(
        {
            "playbook": ["p"] * 6,
            "status": ["raised", "raised", "raised", "holdout", "holdout", "holdout"],
            "converted": [True, False, None, True, False, False],
        }
    )
    (row,) = lift_report(frame, basis="events", goals={"p": "decrease"})
    assert (row.treated_n, row.treated_conversions, row.holdout_n, row.holdout_conversions) == (2, 1, 3, 1)
    assert (row.basis, row.goal, row.open) == ("events", "decrease", 1)
    with pytest.raises(DataError, match="missing converted"):
        lift_report(frame.drop(columns="converted"), basis="events")
    with pytest.raises(DataError, match="basis"):
        lift_report(frame, basis="vibes")
