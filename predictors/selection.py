"""Selection: which scored customers become candidates, and which of them form the control group.

Order is by score, highest first, ties by customer id (ascending), so the same scores always give the
same candidates. ``top_k`` takes the first ``k`` (a count, or ``ceil(k × scored)`` for a share below
1); ``threshold`` takes every score at or above the threshold; ``min_score`` is a floor in both
modes. Missing (NaN) scores are never selected.

The holdout is drawn *among the selected* and *from the customer id alone*: a keyed hash of
``(playbook, run_id, customer_id)`` turned into a uniform in [0, 1), held out when below the share.
Because it ignores the score, treated and holdout customers have the same score distribution in
expectation, which is what makes "converted when contacted" vs "converted anyway" a fair comparison
(the lift report). Because it ignores global random state, a run's control group can be recomputed
and audited from the ledger's ``run`` and the customer's id.

The hash: BLAKE2b keyed with the playbook name, over the run id, gives two 64-bit words; each
customer id is mixed with them through the SplitMix64 finaliser (a bijective avalanche mix), all in
numpy. It is not a cryptographic PRF per customer, and need not be: nobody gains by predicting the
control group, and every customer costs a few vector operations instead of a Python hash call.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from predictors.errors import DataError
from predictors.playbook import SelectionSpec

__all__ = ["Selection", "holdout_uniform", "select"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit flips each output bit with probability about 1/2."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    result: np.ndarray = x ^ (x >> np.uint64(31))
    return result


def holdout_uniform(customer_ids: np.ndarray, *, playbook: str, run_id: str) -> np.ndarray:
    """A uniform in [0, 1) per customer, reproducible from (playbook, run_id, customer_id) alone."""
    digest = hashlib.blake2b(
        run_id.encode("utf-8"), key=playbook.encode("utf-8")[:64], digest_size=16, person=b"holdout-v1"
    ).digest()
    k0 = np.uint64(int.from_bytes(digest[:8], "little"))
    k1 = np.uint64(int.from_bytes(digest[8:], "little"))
    ids = np.asarray(customer_ids, dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix((_mix(ids ^ k0) + _GOLDEN) ^ k1)
    result: np.ndarray = (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return result


@dataclass(frozen=True, eq=False)
class Selection:
    """The candidates of one run, best first: ids, scores, 1-based rank and the holdout flag (read-only
    arrays of equal length). ``scored`` is how many customers were scored."""

    customer_ids: np.ndarray
    scores: np.ndarray
    rank: np.ndarray
    holdout: np.ndarray
    scored: int
    playbook: str
    run_id: str

    def __len__(self) -> int:
        return len(self.customer_ids)

    @property
    def treated(self) -> np.ndarray:
        result: np.ndarray = ~self.holdout
        return result


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def select(
    customer_ids: np.ndarray,
    scores: np.ndarray,
    selection: SelectionSpec,
    *,
    run_id: str,
    playbook: str,
) -> Selection:
    """Candidates of one run under ``selection``, with a holdout drawn among them (module docstring)."""
    ids = np.asarray(customer_ids)
    values = np.asarray(scores, dtype=np.float64)
    if ids.ndim != 1 or values.ndim != 1 or len(ids) != len(values):
        raise DataError(
            f"select needs one score per customer id: got {ids.shape} ids and {values.shape} scores"
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise DataError(f"customer ids must be integers, not {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if len(ids) > 1:
        ordered = np.sort(ids)
        if (ordered[1:] == ordered[:-1]).any():
            raise DataError("customer ids repeat; score each customer once")
    if not run_id:
        raise DataError("run_id is empty; the holdout is drawn from it, so every run needs its own id")
    n = len(ids)
    ok = ~np.isnan(values)
    if selection.min_score is not None:
        ok &= values >= selection.min_score
    if selection.mode == "threshold":
        assert selection.threshold is not None
        ok &= values >= selection.threshold
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((ids[idx], -values[idx]))]
    if selection.mode == "top_k":
        k = selection.k
        assert k is not None
        limit = int(k) if isinstance(k, int) else math.ceil(float(k) * n)
        order = order[:limit]
    chosen = ids[order]
    holdout = holdout_uniform(chosen, playbook=playbook, run_id=run_id) < selection.holdout
    return Selection(
        customer_ids=_readonly(chosen),
        scores=_readonly(values[order]),
        rank=_readonly(np.arange(1, len(order) + 1, dtype=np.int64)),
        holdout=_readonly(holdout),
        scored=n,
        playbook=playbook,
        run_id=run_id,
    )
