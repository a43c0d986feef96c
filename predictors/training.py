"""Training a propensity model: LightGBM, cross-validated, weighted for the rare class, calibrated.

The procedure, and why:

1. **Cross-validation picks the number of boosting rounds.** Stratified folds by default (keeps the
   rare positives spread evenly); ``validation="time"`` uses expanding windows ordered by a time column
   (train on the past, validate on the next slice), for training sets built from event history where
   a shuffled split would let the model see the future. Early stopping watches the mean validation
   loss over the folds; the final model is refit on all rows with that many rounds.
2. **Class imbalance** (buyers are often a few percent): the minority class is weighted by
   ``sqrt(majority / minority)``: enough to make the trees look for the rare class, short of full
   balancing, which on a few hundred positives mostly amplifies their noise.
3. **Calibration undoes the weighting.** Weighted trees overstate the positive probability; Platt
   scaling of the margin, fitted on the out-of-fold predictions (never on rows the model saw), maps
   margins back to probabilities that match the base rate, without reordering customers.
4. **Conservative defaults** for small, noisy tables: shallow trees (8 leaves, depth 4), at least 20 rows
   per leaf, half of the features per tree, row bagging, L2 regularisation and a small learning rate.
   They are generic choices for tabular data of thousands of rows, not tuned to one data set; pass
   ``params`` to override any of them.

Quality figures are computed on out-of-fold predictions, so they estimate performance on new customers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from predictors.dataset import DEFAULT_MAX_LEVELS, Table, TrainingSet, training_set
from predictors.errors import DataError
from predictors.metrics import summary
from predictors.model import Calibration, Model, booster_feature_names

__all__ = [
    "DEFAULT_PARAMS",
    "TrainedModel",
    "fit_platt",
    "stratified_folds",
    "time_folds",
    "train",
]

Validation = Literal["stratified", "time"]
Fold = tuple[np.ndarray, np.ndarray]

DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.03,
    "num_leaves": 8,
    "max_depth": 4,
    "min_data_in_leaf": 20,
    "min_sum_hessian_in_leaf": 1.0,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "max_bin": 63,
    "cat_smooth": 10.0,
    "min_data_per_group": 40,
    "max_cat_to_onehot": 4,
}


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """The refit model plus the out-of-fold predictions its metrics were computed from."""

    model: Model
    oof_rows: np.ndarray  # positions of the rows that had an out-of-fold prediction
    oof_scores: np.ndarray  # their calibrated out-of-fold probabilities
    oof_labels: np.ndarray

    @property
    def metrics(self) -> dict[str, Any]:
        return self.model.metrics

    def save(self, directory: str | Path) -> Path:
        return self.model.save(directory)


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[Fold]:
    """Shuffled folds with the same share of positives in each."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(len(y)), y)]


def time_folds(times: np.ndarray, folds: int) -> list[Fold]:
    """Expanding windows: the rows sorted by time are cut into ``folds + 1`` slices; fold k trains on
    slices 0..k and validates on slice k+1. A cut never separates rows with the same time."""
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    n = len(order)
    cuts: list[int] = []
    for i in range(1, folds + 1):
        # The ideal cut falls inside a run of equal times; move it to the nearer end of that run (a
        # run's start alone would, with a few equally sized cutoffs, empty the first slice).
        ideal = n * i / (folds + 1)
        value = ordered[min(n - 1, int(ideal))]
        left = int(np.searchsorted(ordered, value, side="left"))
        right = int(np.searchsorted(ordered, value, side="right"))
        cut = left if ideal - left <= right - ideal else right
        if cuts and cut <= cuts[-1]:
            cut = right
        cuts.append(cut)
    bounds = [0, *cuts, n]
    out: list[Fold] = []
    for k in range(folds):
        train_end, valid_end = bounds[k + 1], bounds[k + 2]
        if train_end == 0 or valid_end <= train_end:
            raise DataError(
                f"time-aware validation: too few distinct times for {folds} folds (a slice is empty); "
                "use fewer folds or a finer time column"
            )
        out.append((np.sort(order[:train_end]), np.sort(order[train_end:valid_end])))
    return out


def fit_platt(margin: np.ndarray, y: np.ndarray) -> Calibration:
    """Platt scaling by Newton's method, with Platt's smoothed targets so a few hundred positives do not
    make the extreme scores over-confident."""
    m = np.asarray(margin, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pos = float(y.sum())
    neg = float(len(y) - pos)
    t = np.where(y > 0.5, (pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0))
    a, b = 1.0, math.log((pos + 1.0) / (neg + 1.0)) - float(m.mean())

    def loss(a_: float, b_: float) -> float:
        z = a_ * m + b_
        return float(np.sum(np.logaddexp(0.0, z) - t * z))

    current = loss(a, b)
    for _ in range(100):
        p = 0.5 * (1.0 + np.tanh(0.5 * (a * m + b)))
        r = p - t
        g = np.array([np.dot(r, m), r.sum()])
        w = p * (1.0 - p)
        h = np.array([[np.dot(w, m * m) + 1e-12, np.dot(w, m)], [np.dot(w, m), w.sum() + 1e-12]])
        step = np.linalg.solve(h, g)
        scale = 1.0
        while scale > 1e-8:
            na, nb = a - scale * step[0], b - scale * step[1]
            new = loss(na, nb)
            if new <= current:
                break
            scale /= 2.0
        else:
            break
        a, b, done = na, nb, current - new < 1e-12 * max(1.0, abs(current))
        current = new
        if done:
            break
    if a < 1e-6:  # no usable signal: keep the ranking, predict the base rate
        a = 1e-6
        b = math.log((pos + 1.0) / (neg + 1.0)) - a * float(m.mean())
    return Calibration(float(a), float(b))


def _minority_weight(y: np.ndarray) -> tuple[int, float]:
    pos = int(y.sum())
    neg = len(y) - pos
    minority = 1 if pos <= neg else 0
    return minority, math.sqrt(max(pos, neg) / max(1, min(pos, neg)))


def _folds(data: TrainingSet, validation: str, folds: int, seed: int) -> list[Fold]:
    if validation == "time":
        assert data.times is not None
        return time_folds(data.times, folds)
    return stratified_folds(data.y, folds, seed)


def train(
    frame: pd.DataFrame | Table | str | Path,
    target: str,
    *,
    id_column: str | None = None,
    validation: Validation = "stratified",
    time_column: str | None = None,
    folds: int = 5,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    threads: int = 0,
    max_rounds: int = 3000,
    patience: int = 100,
    max_levels: int = DEFAULT_MAX_LEVELS,
) -> TrainedModel:
    """Train, validate and calibrate a binary propensity model on ``frame`` (a CSV path, table or DataFrame).

    ``threads=0`` lets LightGBM use every core. Raises :class:`DataError` for unusable input.
    """
    if validation not in ("stratified", "time"):
        raise DataError(f"validation must be 'stratified' or 'time', not {validation!r}")
    if validation == "time" and not time_column:
        raise DataError("time-aware validation needs a time column (--time-column) to order the rows by")
    if folds < 2:
        raise DataError(f"cross-validation needs at least 2 folds, not {folds}")
    data = training_set(frame, target, id_column=id_column, time_column=time_column, max_levels=max_levels)
    pos, neg = data.positives, data.rows - data.positives
    if min(pos, neg) < folds:
        raise DataError(
            f"{data.source}: {min(pos, neg)} {'positive' if pos <= neg else 'negative'} row(s) are too few "
            f"for {folds}-fold validation; add data or use fewer folds"
        )
    splits = _folds(data, validation, folds, seed)
    minority, weight = _minority_weight(data.y)
    weights = np.where(data.y == minority, weight, 1.0)
    lgb_params: dict[str, Any] = {
        **DEFAULT_PARAMS,
        **dict(params or {}),
        "objective": "binary",
        "metric": "binary_logloss",
        "verbose": -1,
        "deterministic": True,
        "force_col_wise": True,
        "seed": seed,
        "num_threads": threads,
    }
    names = booster_feature_names(len(data.schema.features))
    categorical = list(data.schema.categorical_indices)

    def dataset() -> lgb.Dataset:
        return lgb.Dataset(
            data.x,
            label=data.y,
            weight=weights,
            feature_name=names,
            categorical_feature=categorical,
            free_raw_data=False,
            params={"verbose": -1},
        )

    cv = lgb.cv(
        lgb_params,
        dataset(),
        num_boost_round=max_rounds,
        folds=splits,
        callbacks=[lgb.early_stopping(patience, verbose=False)],
        return_cvbooster=True,
    )
    rounds = len(cast(list[float], cv["valid binary_logloss-mean"]))
    boosters = cast(lgb.CVBooster, cv["cvbooster"]).boosters
    margin = np.full(data.rows, np.nan)
    for (_, valid), booster in zip(splits, boosters, strict=True):
        margin[valid] = booster.predict(data.x[valid], raw_score=True, num_iteration=rounds)
    rows = np.flatnonzero(~np.isnan(margin))
    calibration = fit_platt(margin[rows], data.y[rows])
    oof = calibration.apply(margin[rows])
    final = lgb.train(lgb_params, dataset(), num_boost_round=rounds)
    gain = final.feature_importance(importance_type="gain")
    top = np.argsort(-gain, kind="stable")[:10]
    metrics: dict[str, Any] = {
        **summary(data.y[rows], oof),
        "validation": validation,
        "folds": folds,
        "rounds": rounds,
        "minority_weight": round(weight, 6),
        "training_rows": data.rows,
        "top_features": [[data.schema.names[j], round(float(gain[j]), 3)] for j in top if gain[j] > 0],
    }
    model = Model.build(
        final,
        data.schema,
        calibration,
        metrics,
        params={k: v for k, v in lgb_params.items() if k != "num_threads"}
        | {"max_rounds": max_rounds, "patience": patience},
        training_data_digest=data.digest,
        threads=threads,
    )
    return TrainedModel(model, rows, oof, data.y[rows])
