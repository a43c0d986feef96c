"""Scoring throughput: ``Model.score`` (schema check, matrix, LightGBM, calibration) vs ``Booster.predict``.

Goal (issue 6, proactive service): pure scoring >= 100,000 rows/s on 2 cores, so a nightly run over a
few million customers takes seconds, not the scheduler's whole window. The model is the one
``predictors.train`` fits on the Caravan data (85 features; needs the ``ISLP`` bench extra) or, without
it, on a synthetic 50-feature table; the 1,000,000 rows to score are drawn from the same distribution.
The peer is LightGBM's own ``Booster.predict`` on the same float64 array: the ratio shows what the
schema check and calibration cost.

    python bench/bench_scoring.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib.resources
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from predictors.model import Model  # noqa: E402
from predictors.training import train  # noqa: E402


def training_frame(rng: np.random.Generator) -> tuple[str, pd.DataFrame, str]:
    try:
        import ISLP  # noqa: F401

        frame = pd.read_csv(importlib.resources.files("ISLP") / "data" / "Caravan.csv")
        return "Caravan (ISLP)", frame, "Purchase"
    except ImportError:
        x = rng.normal(size=(20_000, 50))
        logit = x[:, :10] @ rng.normal(size=10) * 0.6 - 2.5
        y = rng.random(20_000) < 1 / (1 + np.exp(-logit))
        frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(50)])
        frame["y"] = y.astype(int)
        return "synthetic, 50 features", frame, "y"


def best_rate(fn: Callable[[], object], rows: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return rows / min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="200,000 rows, one timing each")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(20261124)
    name, frame, target = training_frame(rng)
    model = train(frame, target, threads=args.threads).model
    model = Model(model.files, threads=args.threads)
    rows = 200_000 if args.quick else 1_000_000
    repeats = 1 if args.quick else 5
    features = frame.drop(columns=[target])
    big = features.iloc[rng.integers(0, len(features), size=rows)].reset_index(drop=True)
    x = np.ascontiguousarray(big.to_numpy(dtype=np.float64))
    booster = model.booster
    assert np.allclose(
        model.score(big.iloc[:1000]), model.calibration.apply(booster.predict(x[:1000], raw_score=True))
    )
    raw = best_rate(lambda: booster.predict(x, num_threads=args.threads), rows, repeats)
    ours_frame = best_rate(lambda: model.score(big), rows, repeats)
    ours_array = best_rate(lambda: model.score(x), rows, repeats)
    print(
        f"scoring bench: model on {name}: {len(model.schema.features)} features, {model.rounds} trees; "
        f"{rows:,} rows, {args.threads} threads"
    )
    print(f"  {'LightGBM Booster.predict (ndarray)':<44} {raw:>12,.0f} rows/s")
    print(
        f"  {'Model.score (DataFrame: check+matrix+calib)':<44} {ours_frame:>12,.0f} rows/s   "
        f"ratio {ours_frame / raw:.2f}"
    )
    print(
        f"  {'Model.score (ndarray: shape check+calib)':<44} {ours_array:>12,.0f} rows/s   "
        f"ratio {ours_array / raw:.2f}"
    )
    verdict = "met" if min(ours_frame, ours_array) >= 100_000 else "NOT met"
    print(f"  target >= 100,000 rows/s on 2 cores: {verdict}")


if __name__ == "__main__":
    main()
