"""Training: recovers signal, not noise; calibrated; early stopping; time-aware folds; clear refusals.

Synthetic tables with known structure (numpy, fixed seeds) so each claim can fail: a model that learnt
nothing would score AUC ~0.5 on the signal table; one that memorised would stop late on the noise table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from predictors.errors import DataError
from predictors.training import fit_platt, time_folds, train


def synthetic(n: int = 2000, *, signal: bool = True, seed: int = 1) -> pd.DataFrame:
    """Ten numeric features; with signal, y depends on x0 (up) and x1 (down); base rate ~12%."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10))
    logit = 1.8 * x[:, 0] - 1.2 * x[:, 1] - 2.6 if signal else np.full(n, -2.0)
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(10)])
    frame["y"] = y.astype(int)
    return frame


@pytest.fixture(scope="module")
def signal_model():
    return train(synthetic(), "y", threads=1)


@pytest.fixture(scope="module")
def noise_model():
    return train(synthetic(signal=False), "y", threads=1)


def test_recovers_signal_out_of_fold(signal_model):
    m = signal_model.metrics
    assert m["auc"] > 0.85
    assert m["top_capture"] > 0.5  # far above the 20% a random contact list reaches
    assert m["rows"] == 2000 and m["validation"] == "stratified" and m["folds"] == 5
    assert [name for name, _ in m["top_features"][:2]] == ["x0", "x1"]


def test_finds_nothing_in_noise_and_stops_early(signal_model, noise_model):
    assert 0.4 < noise_model.metrics["auc"] < 0.6
    assert noise_model.metrics["rounds"] < signal_model.metrics["rounds"] / 2
    assert noise_model.metrics["rounds"] < 100


def test_calibrated_mean_matches_base_rate_despite_class_weights(signal_model, noise_model):
    for trained in (signal_model, noise_model):
        m = trained.metrics
        assert m["minority_weight"] == pytest.approx(
            math.sqrt((m["rows"] - m["positives"]) / m["positives"]), 1e-4
        )
        assert trained.oof_scores.mean() == pytest.approx(m["base_rate"], abs=0.01)
        assert trained.model.score(synthetic(seed=7)).mean() == pytest.approx(m["base_rate"], abs=0.03)
    # reliability: in the top decile of predictions, the predicted and observed rates agree
    p, y = signal_model.oof_scores, signal_model.oof_labels
    top = p >= np.quantile(p, 0.9)
    assert p[top].mean() == pytest.approx(y[top].mean(), abs=0.08)
    # noise: nobody should look like a sure buyer
    assert noise_model.oof_scores.max() < 0.3


def test_metrics_are_plain_out_of_fold_figures(signal_model):
    m = signal_model.metrics
    for key in ("auc", "average_precision", "log_loss", "brier", "base_rate", "top_positives", "top_capture"):
        assert isinstance(m[key], float)
    assert m["top_rows"] == 400
    assert m["log_loss"] < -(
        m["base_rate"] * math.log(m["base_rate"]) + (1 - m["base_rate"]) * math.log(1 - m["base_rate"])
    )  # better than predicting the base rate for everyone
    assert len(signal_model.oof_rows) == 2000


def test_same_seed_same_trees():
    a = train(synthetic(800), "y", threads=1, seed=3)
    b = train(synthetic(800), "y", threads=1, seed=3)
    assert a.model.files["model.txt"] == b.model.files["model.txt"]
    assert a.metrics == b.metrics


def test_categorical_feature_with_signal_is_used():
    rng = np.random.default_rng(5)
    n = 1500
    plan = rng.choice(["basic", "gold", "silver"], size=n)
    y = rng.random(n) < np.where(plan == "gold", 0.4, 0.05)
    frame = pd.DataFrame({"plan": plan, "noise": rng.normal(size=n), "y": np.where(y, "yes", "no")})
    trained = train(frame, "y", threads=1)
    assert trained.model.schema.features[0].levels == ("basic", "gold", "silver")
    assert trained.metrics["auc"] > 0.7  # the best possible here is ~0.78 (one binary split)
    gold, basic = trained.model.score(pd.DataFrame({"plan": ["gold", "basic"], "noise": [0.0, 0.0]}))
    assert gold > 0.25 > 0.1 > basic


def test_fit_platt_recovers_a_known_logistic_map():
    rng = np.random.default_rng(2)
    margin = rng.normal(scale=2.0, size=20000)
    y = rng.random(20000) < 1.0 / (1.0 + np.exp(-(0.5 * margin - 1.0)))
    calibration = fit_platt(margin, y.astype(int))
    assert calibration.slope == pytest.approx(0.5, abs=0.05)
    assert calibration.intercept == pytest.approx(-1.0, abs=0.08)
    # a margin that carries no information keeps the order but predicts the base rate
    flat = fit_platt(rng.normal(size=5000), (rng.random(5000) < 0.1).astype(int))
    assert flat.apply(np.array([-3.0, 3.0])) == pytest.approx([0.1, 0.1], abs=0.03)


def test_time_folds_are_expanding_windows_that_never_split_a_time():
    times = np.array([5, 1, 1, 2, 3, 3, 3, 4, 6, 6, 7, 8], dtype=float)
    folds = time_folds(times, 3)
    assert len(folds) == 3
    previous = 0
    for train_rows, valid_rows in folds:
        assert times[train_rows].max() < times[valid_rows].min()  # only the past predicts the future
        assert len(train_rows) > previous
        previous = len(train_rows)
    with pytest.raises(DataError, match="too few distinct times"):
        time_folds(np.array([1.0, 1.0, 1.0, 2.0]), 3)


def test_time_folds_with_one_more_cutoff_than_folds_of_nearly_equal_size():
    """Regression: weekly cutoffs of 2731, 2723, 2715 and 2725 rows gave an empty first slice."""
    times = np.repeat([1.0, 2.0, 3.0, 4.0], [2731, 2723, 2715, 2725])
    folds = time_folds(times, 3)
    assert [sorted(set(times[v])) for _, v in folds] == [[2.0], [3.0], [4.0]]
    assert [sorted(set(times[t])) for t, _ in folds] == [[1.0], [1.0, 2.0], [1.0, 2.0, 3.0]]


def test_time_validation_trains_on_the_past():
    frame = synthetic(1500)
    frame["day"] = pd.date_range("2026-01-01", periods=1500, freq="h").strftime("%Y-%m-%dT%H:%M:%SZ")
    trained = train(frame, "y", validation="time", time_column="day", folds=4, threads=1)
    assert trained.metrics["validation"] == "time"
    assert trained.model.schema.time_column == "day" and "day" not in trained.model.schema.names
    assert trained.metrics["rows"] == 1200  # the first of five slices is never validated
    assert trained.metrics["auc"] > 0.8


def test_refusals():
    frame = synthetic(300)
    with pytest.raises(DataError, match="needs a time column"):
        train(frame, "y", validation="time")
    with pytest.raises(DataError, match="at least 2 folds"):
        train(frame, "y", folds=1)
    few = frame.assign(y=[1, 1, 1] + [0] * 297)
    with pytest.raises(DataError, match=r"3 positive row.* too few for 5-fold"):
        train(few, "y")


def test_caravan_from_islp_beats_chance_by_a_wide_margin():
    """The real CoIL 2000 training set: out-of-fold AUC and buyers in the top 20% well above chance."""
    pytest.importorskip("ISLP")
    import importlib.resources

    trained = train(str(importlib.resources.files("ISLP") / "data" / "Caravan.csv"), "Purchase", threads=2)
    m = trained.metrics
    assert m["rows"] == 5822 and m["positives"] == 348 and trained.model.schema.positive_label == "yes"
    assert m["auc"] > 0.72
    assert m["top_capture"] > 0.45  # a random fifth of the customers holds 20% of the buyers
    assert m["mean_probability"] == pytest.approx(m["base_rate"], abs=0.005)
