"""Selection: top-k and threshold, deterministic ties, and a holdout that is reproducible and score-blind."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from predictors.errors import DataError
from predictors.playbook import SelectionSpec
from predictors.selection import holdout_uniform, select


def spec(mode: str = "top_k", **kw: object) -> SelectionSpec:
    return SelectionSpec(mode, **kw)  # type: ignore[arg-type]


def test_top_k_takes_the_best_scores_with_ties_by_customer_id() -> None:
    ids = np.array([50, 10, 40, 20, 30], dtype=np.int64)
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.9])
    sel = select(ids, scores, spec(k=4, holdout=0.0), run_id="r", playbook="p")
    assert sel.customer_ids.tolist() == [10, 30, 40, 50]
    assert sel.scores.tolist() == [0.9, 0.9, 0.9, 0.5]
    assert sel.rank.tolist() == [1, 2, 3, 4]
    assert not sel.holdout.any() and sel.treated.all()
    assert sel.scored == 5 and len(sel) == 4


def test_top_k_share_is_rounded_up_over_all_scored() -> None:
    ids = np.arange(1, 1001, dtype=np.int64)
    sel = select(ids, np.linspace(0, 1, 1000), spec(k=0.025, holdout=0.0), run_id="r", playbook="p")
    assert len(sel) == 25
    assert sel.customer_ids.tolist() == list(range(1000, 975, -1))


def test_threshold_min_score_and_missing_scores() -> None:
    ids = np.arange(1, 7, dtype=np.int64)
    scores = np.array([0.2, np.nan, 0.7, 0.69999, 1.0, 0.7])
    sel = select(ids, scores, spec("threshold", threshold=0.7, holdout=0.0), run_id="r", playbook="p")
    assert sel.customer_ids.tolist() == [5, 3, 6]
    floor = select(ids, scores, spec(k=10, min_score=0.5, holdout=0.0), run_id="r", playbook="p")
    assert floor.customer_ids.tolist() == [5, 3, 6, 4]  # NaN never selected, 0.2 under the floor


def test_arrays_are_read_only() -> None:
    sel = select(np.arange(3), np.ones(3), spec(k=3), run_id="r", playbook="p")
    with pytest.raises(ValueError, match="read-only"):
        sel.holdout[0] = True


def test_the_same_inputs_give_the_same_selection_and_holdout() -> None:
    rng = np.random.default_rng(0)
    ids = rng.choice(10**9, 50_000, replace=False).astype(np.int64)
    scores = rng.random(50_000)
    a = select(ids, scores, spec(k=0.5), run_id="run-1", playbook="churn")
    b = select(ids.copy(), scores.copy(), spec(k=0.5), run_id="run-1", playbook="churn")
    assert np.array_equal(a.customer_ids, b.customer_ids)
    assert np.array_equal(a.holdout, b.holdout)
    other_run = select(ids, scores, spec(k=0.5), run_id="run-2", playbook="churn")
    other_book = select(ids, scores, spec(k=0.5), run_id="run-1", playbook="tires")
    assert not np.array_equal(a.holdout, other_run.holdout)
    assert not np.array_equal(a.holdout, other_book.holdout)
    # reproducible from (playbook, run_id, customer_id) alone
    again = holdout_uniform(a.customer_ids, playbook="churn", run_id="run-1") < 0.10
    assert np.array_equal(again, a.holdout)


def test_holdout_share_is_about_ten_percent_on_large_n() -> None:
    n = 200_000
    ids = np.arange(1, n + 1, dtype=np.int64)  # consecutive ids: the worst case for a weak hash
    sel = select(ids, np.ones(n), spec("threshold", threshold=0.5), run_id="daily-2024-05-01", playbook="p")
    share = sel.holdout.mean()
    sd = math.sqrt(0.1 * 0.9 / n)
    assert abs(share - 0.10) < 5 * sd


def test_holdout_uniforms_are_uniform() -> None:
    u = holdout_uniform(np.arange(100_000, dtype=np.int64), playbook="p", run_id="r")
    assert ((u >= 0) & (u < 1)).all()
    counts = np.bincount((u * 20).astype(int), minlength=20)
    expected = len(u) / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 50  # 19 degrees of freedom: the 99.99th percentile is about 50


def test_holdout_is_independent_of_score() -> None:
    rng = np.random.default_rng(1)
    n = 100_000
    ids = np.arange(1, n + 1, dtype=np.int64)
    scores = rng.random(n)
    sel = select(ids, scores, spec("threshold", threshold=0.0), run_id="r", playbook="p")
    # the flag of a customer does not change when the scores do
    flipped = select(ids, 1.0 - scores, spec("threshold", threshold=0.0), run_id="r", playbook="p")
    by_id = dict(zip(sel.customer_ids.tolist(), sel.holdout.tolist(), strict=True))
    assert all(
        by_id[c] == h for c, h in zip(flipped.customer_ids.tolist(), flipped.holdout.tolist(), strict=True)
    )
    # and treated and holdout have the same score distribution
    held, treated = sel.scores[sel.holdout], sel.scores[~sel.holdout]
    se = math.sqrt(held.var() / len(held) + treated.var() / len(treated))
    assert abs(held.mean() - treated.mean()) < 5 * se
    deciles = np.quantile(sel.scores, np.linspace(0.1, 0.9, 9))
    shares = [
        sel.holdout[(sel.scores >= lo) & (sel.scores < hi)].mean() for lo, hi in itertools.pairwise(deciles)
    ]
    assert max(shares) - min(shares) < 0.02


def test_top_k_draws_the_holdout_among_the_selected() -> None:
    ids = np.arange(1, 10_001, dtype=np.int64)
    sel = select(ids, ids / 10_000, spec(k=1000, holdout=0.2), run_id="r", playbook="p")
    assert len(sel) == 1000  # the holdout is part of the k, not added on top
    assert sel.customer_ids.min() == 9001
    assert 0.15 < sel.holdout.mean() < 0.25


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match="one score per customer"):
        select(np.arange(3), np.ones(2), spec(k=1), run_id="r", playbook="p")
    with pytest.raises(DataError, match="repeat"):
        select(np.array([1, 2, 1]), np.ones(3), spec(k=1), run_id="r", playbook="p")
    with pytest.raises(DataError, match="run_id"):
        select(np.arange(3), np.ones(3), spec(k=1), run_id="", playbook="p")
    with pytest.raises(DataError, match="integers"):
        select(np.array([1.5, 2.5]), np.ones(2), spec(k=1), run_id="r", playbook="p")
