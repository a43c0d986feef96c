"""How good a ranking of customers is, in the terms ops care about: who to contact so the most buyers are
reached.

AUC says how well the scores order buyers above non-buyers overall; *captured in the top 20%* says how
many buyers a campaign reaches when it contacts the fifth of customers with the highest scores (the
CoIL Challenge 2000 measure). Log loss and Brier judge the calibrated probabilities themselves.

Ties are split fairly: when the cut-off falls inside a group of equal scores, the group contributes
its positives in proportion to the places it gets, the expected count under a random tie-break.
Without that, a model that gives many customers the same score would be rewarded or punished by row
order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = ["TOP_SHARE", "captured_in_top", "summary", "top_count"]

TOP_SHARE = 0.2


def top_count(rows: int, share: float = TOP_SHARE) -> int:
    """How many rows "the top ``share``" is: rounded half up, at least one (800 of 4,000 for 20%)."""
    return max(1, min(rows, math.floor(rows * share + 0.5)))


def captured_in_top(y: np.ndarray, scores: np.ndarray, share: float = TOP_SHARE) -> float:
    """Expected number of positives among the ``top_count`` highest scores, ties split fairly."""
    y = np.asarray(y, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    k = top_count(len(scores), share)
    cut = np.sort(scores)[::-1][k - 1]
    above = scores > cut
    tied = scores == cut
    places = k - int(above.sum())
    return float(y[above].sum() + y[tied].sum() * places / int(tied.sum()))


def summary(y: np.ndarray, probabilities: np.ndarray, share: float = TOP_SHARE) -> dict[str, Any]:
    """Out-of-fold quality figures of calibrated probabilities, as plain JSON numbers."""
    y = np.asarray(y, dtype=np.int64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-15, 1 - 1e-15)
    positives = int(y.sum())
    captured = captured_in_top(y, p, share)
    both = 0 < positives < len(y)
    return {
        "rows": len(y),
        "positives": positives,
        "base_rate": positives / len(y),
        "auc": float(roc_auc_score(y, p)) if both else None,
        "average_precision": float(average_precision_score(y, p)) if both else None,
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "brier": float(np.mean((p - y) ** 2)),
        "mean_probability": float(p.mean()),
        "top_share": share,
        "top_rows": top_count(len(y), share),
        "top_positives": round(captured, 3),
        "top_capture": captured / positives if positives else None,
    }
