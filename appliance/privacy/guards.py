"""Disclosure guards: what may leave the custodian after a query result is decrypted.

The engine computes over ciphertexts and the custodian decrypts; this module decides what the analyst
gets. In order, all before anything is released:

1. **Minimum group size.** A group with fewer than ``min_group_size`` records (default 10) is
   suppressed: its values are never returned, only the group key and the reason (not its exact size).
   If every group is below the minimum, ``DisclosureRefused`` and nothing at all is released.
2. **Differential privacy** (when the plan asks for noise). The query's ε (and δ) must fit the
   per-query maximum and the analyst's remaining budget; the budget is charged atomically *before*
   noise is drawn and values are released, so an exhausted budget (``BudgetExhausted``) releases
   nothing.
3. **Rounding** of released values to ``decimals`` (the plan may ask for coarser, never finer).

DP choices (documented here because the lead writes the docs from them):

- Neighbouring datasets differ by adding or removing one record. Every column has declared bounds
  ``(lo, hi)`` (``bounds``), which the data owner promises (values are clipped to them at encryption);
  sensitivities follow from them: count 1; sum ``max(|lo|, |hi|)``; sum of squares
  ``max(lo², hi²)``; dot ``max|w| * max(|lo|, |hi|)``; a score per row lies in
  ``[bias + Σ min(a·lo, a·hi), bias + Σ max(a·lo, a·hi)]`` (interval arithmetic) and its sum has the
  larger magnitude of the two as sensitivity; a histogram changes one bucket by 1 (L1 = L2 = 1).
- Mean = noisy sum / noisy count; variance from noisy (sum, sum of squares, count) with the n - 1
  correction; stddev its square root. Those outputs need their parts from the custodian (see
  ``RawValue``). Results are then clamped to their possible range (post-processing costs no privacy).
- Composition: GROUP BY partitions the rows (one visible attribute value per row), so groups compose in
  parallel: each group gets the full budget. The k outputs of one query compose sequentially (basic
  composition): each gets ε/k and δ/k, split again evenly over its parts (2 for a mean, 3 for a
  variance). The query is charged exactly the ε and δ it asked for.
- Laplace (Dwork, McSherry, Nissim, Smith 2006): noise ~ Laplace(0, b), ``b = Δ1 / ε``.
- Gaussian: the analytic Gaussian mechanism (Balle & Wang, ICML 2018, Theorem 8) by default: the
  smallest σ with ``Φ(Δ/(2σ) - εσ/Δ) - e^ε Φ(-Δ/(2σ) - εσ/Δ) <= δ``, found by bisection; or the
  classic ``σ = Δ2 · sqrt(2 ln(1.25/δ)) / ε`` (Dwork & Roth 2014, Theorem A.1), valid for ε < 1 only
  (for ε >= 1 the analytic σ is used).
- Draws come from the ``numpy.random.Generator`` passed in (tests seed it; production passes
  ``numpy.random.default_rng()``, seeded from the OS). Known limit: floating-point Laplace/Gaussian
  samplers are open to Mironov's (2012) least-significant-bit attack; rounding released values to
  ``decimals`` blunts it but is not a proof. OpenDP's discrete samplers would close it.
- Suppression by exact group size is itself not DP (whether a group appears reveals that it has at
  least ``min_group_size`` records); group sizes of server-visible attributes are treated as known to
  the server and the analyst's role.
"""

from __future__ import annotations

import functools
import math
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from appliance.privacy._plan_json import DECIMALS_RANGE
from appliance.privacy.errors import BudgetExhausted, DisclosureRefused, QueryInvalid
from appliance.privacy.plan import Aggregate, QueryPlan

__all__ = [
    "BudgetStore",
    "GuardSettings",
    "InMemoryBudgetStore",
    "PrivacyBudget",
    "RawValue",
    "Released",
    "ReleasedValue",
    "SuppressedGroup",
    "apply_guards",
    "gaussian_sigma",
    "laplace_scale",
    "preflight",
]

# What the custodian hands over per group and output:
# - count, sum, dot, score with reduce "sum": a number;
# - histogram: a sequence of bucket counts;
# - mean, score with reduce "mean": a number (no noise only) or the parts {"sum": s, "count": n};
# - variance, stddev: a number (no noise only) or the parts {"sum": s, "sum_sq": q, "count": n}.
# NaN (or None) as a finished number means "undefined" (e.g. the mean of an all-null group).
RawValue = float | int | Sequence[float] | Mapping[str, float] | None
ReleasedValue = float | int | tuple[int, ...] | None

_PARTS = {
    "mean": ("sum", "count"),
    "variance": ("sum", "sum_sq", "count"),
    "stddev": ("sum", "sum_sq", "count"),
}
_TOLERANCE = 1e-9  # relative slack so that ten charges of 0.1 fit a budget of 1.0 despite float sums


@dataclass(frozen=True)
class GuardSettings:
    """The node's disclosure policy (from settings; an admin changes it, never the analyst)."""

    min_group_size: int = 10
    decimals: int = 2
    max_epsilon_per_query: float = 1.0
    max_delta_per_query: float = 1e-5
    default_budget: tuple[float, float] = (10.0, 1e-4)  # (ε, δ) per analyst until an admin grants more
    gaussian: Literal["analytic", "classic"] = "analytic"

    def __post_init__(self) -> None:
        if isinstance(self.min_group_size, bool) or not isinstance(self.min_group_size, int):
            raise ValueError("GuardSettings.min_group_size must be an integer, e.g. 10")
        if self.min_group_size < 1:
            raise ValueError("GuardSettings.min_group_size must be at least 1 (10 or more is sensible)")
        lo, hi = DECIMALS_RANGE
        if (
            isinstance(self.decimals, bool)
            or not isinstance(self.decimals, int)
            or not lo <= self.decimals <= hi
        ):
            raise ValueError(f"GuardSettings.decimals must be an integer from {lo} to {hi}")
        if not (math.isfinite(self.max_epsilon_per_query) and self.max_epsilon_per_query > 0):
            raise ValueError("GuardSettings.max_epsilon_per_query must be a finite number > 0, e.g. 1.0")
        if not 0 <= self.max_delta_per_query < 1:
            raise ValueError("GuardSettings.max_delta_per_query must be in [0, 1), e.g. 1e-5")
        _check_budget_pair(self.default_budget, "GuardSettings.default_budget")
        if self.gaussian not in ("analytic", "classic"):
            raise ValueError('GuardSettings.gaussian must be "analytic" or "classic"')


@dataclass(frozen=True)
class SuppressedGroup:
    """A group withheld from the release, with the reason the analyst is told."""

    group: str
    reason: str


@dataclass(frozen=True)
class Released:
    """What the analyst gets: values per kept group (after noise and rounding), the withheld groups,
    and what the query cost."""

    groups: Mapping[str, Mapping[str, ReleasedValue]]
    suppressed: tuple[SuppressedGroup, ...] = ()
    epsilon: float = 0.0
    delta: float = 0.0
    mechanism: str | None = None
    decimals: int = 2
    query_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups": {
                key: {name: list(v) if isinstance(v, tuple) else v for name, v in values.items()}
                for key, values in self.groups.items()
            },
            "suppressed": [{"group": s.group, "reason": s.reason} for s in self.suppressed],
            "epsilon": self.epsilon,
            "delta": self.delta,
            "mechanism": self.mechanism,
            "decimals": self.decimals,
            "query_id": self.query_id,
        }


# --- privacy budget --------------------------------------------------------------------------------------


@runtime_checkable
class BudgetStore(Protocol):
    """Where spent budget lives. The node backs it with a SQL table; ``InMemoryBudgetStore`` is for tests.

    ``charge`` must be atomic: compare the analyst's spent total plus this charge with ``limit`` and
    record the charge in ONE transaction (e.g. ``SELECT ... FOR UPDATE`` or SQLite ``BEGIN IMMEDIATE``),
    so two concurrent queries cannot both spend the last of a budget. The limit is passed in for that
    reason rather than checked by the caller.
    """

    def spent(self, analyst: str) -> tuple[float, float]:
        """(ε, δ) charged to ``analyst`` so far; (0, 0) for an analyst never charged."""
        ...

    def charge(
        self, analyst: str, epsilon: float, delta: float, query_id: str, *, limit: tuple[float, float]
    ) -> tuple[float, float] | None:
        """Atomically record the charge if the new totals stay within ``limit`` and return them;
        otherwise record nothing and return None. A ``query_id`` charged before raises
        ``DisclosureRefused`` (a replay must not buy fresh noise, a retry must not pay twice)."""
        ...

    def allowance(self, analyst: str) -> tuple[float, float] | None:
        """The budget an admin granted ``analyst``, or None for the default."""
        ...

    def set_allowance(self, analyst: str, epsilon: float, delta: float) -> None:
        """Record an admin's grant: ``analyst``'s total budget becomes (ε, δ)."""
        ...


class InMemoryBudgetStore:
    """A ``BudgetStore`` in a dict behind a lock (tests, and a node without a store)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._charges: dict[str, list[tuple[str, float, float]]] = {}
        self._query_ids: set[str] = set()
        self._allowances: dict[str, tuple[float, float]] = {}

    def spent(self, analyst: str) -> tuple[float, float]:
        with self._lock:
            return self._total(analyst)

    def charge(
        self, analyst: str, epsilon: float, delta: float, query_id: str, *, limit: tuple[float, float]
    ) -> tuple[float, float] | None:
        with self._lock:
            if query_id in self._query_ids:
                raise DisclosureRefused(
                    f"query id {query_id!r} was already charged; every query needs a new id"
                )
            eps, dlt = self._total(analyst)
            if eps + epsilon > limit[0] or dlt + delta > limit[1]:
                return None
            self._charges.setdefault(analyst, []).append((query_id, epsilon, delta))
            self._query_ids.add(query_id)
            return eps + epsilon, dlt + delta

    def allowance(self, analyst: str) -> tuple[float, float] | None:
        with self._lock:
            return self._allowances.get(analyst)

    def set_allowance(self, analyst: str, epsilon: float, delta: float) -> None:
        with self._lock:
            self._allowances[analyst] = (epsilon, delta)

    def _total(self, analyst: str) -> tuple[float, float]:
        charges = self._charges.get(analyst, [])
        return math.fsum(c[1] for c in charges), math.fsum(c[2] for c in charges)


@dataclass(frozen=True)
class PrivacyBudget:
    """Per-analyst (ε, δ) accounting over a ``BudgetStore``: the check and the charge are one step."""

    store: BudgetStore
    default: tuple[float, float] = (10.0, 1e-4)

    def __post_init__(self) -> None:
        _check_budget_pair(self.default, "PrivacyBudget.default")

    @classmethod
    def in_memory(cls, default: tuple[float, float] = (10.0, 1e-4)) -> PrivacyBudget:
        return cls(InMemoryBudgetStore(), default)

    def limit(self, analyst: str) -> tuple[float, float]:
        """The analyst's total budget: an admin's grant, else the default."""
        granted = self.store.allowance(_analyst(analyst))
        return self.default if granted is None else granted

    def spent(self, analyst: str) -> tuple[float, float]:
        return self.store.spent(_analyst(analyst))

    def remaining(self, analyst: str) -> tuple[float, float]:
        (le, ld), (se, sd) = self.limit(analyst), self.spent(analyst)
        return max(0.0, le - se), max(0.0, ld - sd)

    def grant(self, analyst: str, epsilon: float, delta: float) -> None:
        """An admin sets ``analyst``'s total budget (spent so far still counts against it)."""
        _check_budget_pair((epsilon, delta), "grant")
        self.store.set_allowance(_analyst(analyst), float(epsilon), float(delta))

    def charge(self, analyst: str, epsilon: float, delta: float, query_id: str) -> tuple[float, float]:
        """Spend (ε, δ) for ``query_id`` or raise ``BudgetExhausted``; returns what is left after."""
        analyst = _analyst(analyst)
        if not (math.isfinite(epsilon) and epsilon >= 0 and math.isfinite(delta) and 0 <= delta < 1):
            raise ValueError(f"a charge needs finite ε >= 0 and 0 <= δ < 1, got ({epsilon!r}, {delta!r})")
        if not isinstance(query_id, str) or not query_id:
            raise ValueError("a charge needs a non-empty query id (the request id)")
        le, ld = self.limit(analyst)
        slack = (le * (1 + _TOLERANCE) + 1e-12, ld * (1 + _TOLERANCE) + 1e-18)
        after = self.store.charge(analyst, float(epsilon), float(delta), query_id, limit=slack)
        if after is None:
            re_, rd = self.remaining(analyst)
            raise BudgetExhausted(
                f"privacy budget exhausted for analyst {analyst!r}: this query needs ε={epsilon:g}, "
                f"δ={delta:g}, but ε={re_:g}, δ={rd:g} is left of ε={le:g}, δ={ld:g}; nothing was "
                "released. Ask for less (a smaller epsilon), or ask an admin to raise the budget"
            )
        return max(0.0, le - after[0]), max(0.0, ld - after[1])


# --- noise ------------------------------------------------------------------------------------------------


def laplace_scale(sensitivity: float, epsilon: float) -> float:
    """Laplace mechanism scale ``b = Δ1 / ε`` (Dwork, McSherry, Nissim, Smith 2006)."""
    _check_mechanism_args(sensitivity, epsilon)
    return sensitivity / epsilon


def gaussian_sigma(
    sensitivity: float, epsilon: float, delta: float, *, method: Literal["analytic", "classic"] = "analytic"
) -> float:
    """σ of the Gaussian mechanism for (ε, δ)-DP at L2 sensitivity ``sensitivity``.

    ``classic``: ``Δ sqrt(2 ln(1.25/δ)) / ε`` (Dwork & Roth 2014, Thm A.1; valid for ε < 1, so the
    analytic σ is returned for ε >= 1). ``analytic``: the smallest σ meeting Balle & Wang's (2018,
    Thm 8) exact condition, which is smaller than the classic σ and valid for every ε.
    """
    _check_mechanism_args(sensitivity, epsilon)
    if not 0 < delta < 1:
        raise ValueError(f"the Gaussian mechanism needs 0 < delta < 1, got {delta!r}")
    if sensitivity == 0:
        return 0.0
    if method == "classic" and epsilon < 1:
        return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon
    return sensitivity * _analytic_sigma_unit(float(epsilon), float(delta))


def gaussian_delta(sigma: float, sensitivity: float, epsilon: float) -> float:
    """The δ the Gaussian mechanism with ``sigma`` achieves at ``epsilon`` (Balle & Wang 2018, Thm 8)."""
    a = sensitivity / (2 * sigma)
    b = epsilon * sigma / sensitivity
    tail = _phi(-a - b)
    return _phi(a - b) - (math.exp(epsilon + math.log(tail)) if tail > 0 else 0.0)


@functools.lru_cache(maxsize=256)
def _analytic_sigma_unit(epsilon: float, delta: float) -> float:
    hi = math.sqrt(2 * math.log(1.25 / delta)) / min(epsilon, 1.0)
    while gaussian_delta(hi, 1.0, epsilon) > delta:
        hi *= 2
    lo = 0.0
    for _ in range(200):  # bisection: δ(σ) decreases in σ; keep hi on the private side
        mid = (lo + hi) / 2
        if gaussian_delta(mid, 1.0, epsilon) <= delta:
            hi = mid
        else:
            lo = mid
        if hi - lo <= hi * 1e-12:
            break
    return hi


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _check_mechanism_args(sensitivity: float, epsilon: float) -> None:
    if not (math.isfinite(sensitivity) and sensitivity >= 0):
        raise ValueError(f"sensitivity must be a finite number >= 0, got {sensitivity!r}")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")


# --- the guards -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One noisy measurement of an output: which part, its sensitivity, and its share of (ε, δ)."""

    name: str
    sensitivity: float
    epsilon: float
    delta: float


@dataclass(frozen=True)
class _OutputNoise:
    parts: tuple[_Part, ...]
    value_range: tuple[float, float] | None = None  # where a mean can lie (for clamping)
    spread: float = 0.0  # (hi - lo), for the variance clamp


def preflight(
    plan: QueryPlan,
    settings: GuardSettings,
    *,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    weight_bounds: Mapping[str, float] | None = None,
    budget: PrivacyBudget | None = None,
    analyst: str | None = None,
) -> tuple[float, float]:
    """Refuse early, before the (expensive) encrypted computation, what ``apply_guards`` would refuse
    about the noise: ε or δ over the per-query maximum, a column without declared bounds, a budget
    that cannot pay. Charges nothing; returns the (ε, δ) the query will cost."""
    _check_plan(plan)
    if plan.noise is None:
        return 0.0, 0.0
    _noise_plan(plan, settings, bounds or {}, weight_bounds or {})
    cost = plan.noise.epsilon, plan.noise.delta
    if budget is not None:
        if analyst is None:
            raise ValueError("preflight with a budget needs the analyst")
        rem_e, rem_d = budget.remaining(analyst)
        le, ld = budget.limit(analyst)
        if cost[0] > rem_e + le * _TOLERANCE + 1e-12 or cost[1] > rem_d + ld * _TOLERANCE + 1e-18:
            raise BudgetExhausted(
                f"privacy budget exhausted for analyst {analyst!r}: this query needs ε={cost[0]:g}, "
                f"δ={cost[1]:g}, but ε={rem_e:g}, δ={rem_d:g} is left of ε={le:g}, δ={ld:g}; nothing "
                "was computed. Ask for less (a smaller epsilon), or ask an admin to raise the budget"
            )
    return cost


def apply_guards(
    raw: Mapping[str, Mapping[str, RawValue]],
    group_sizes: Mapping[str, int],
    plan: QueryPlan,
    settings: GuardSettings,
    rng: np.random.Generator | None,
    *,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    weight_bounds: Mapping[str, float] | None = None,
    budget: PrivacyBudget | None = None,
    analyst: str | None = None,
    query_id: str | None = None,
) -> Released:
    """Judge a decrypted result and return what may be released (see the module docstring).

    ``raw`` maps group key -> output name (``Aggregate.name``) -> value (``RawValue``); ``group_sizes``
    maps every group key (empty groups included, size 0) -> its number of records. With noise, pass
    ``bounds`` (column -> (lo, hi)), ``weight_bounds`` (stored weight vector -> max |w|) for DOT with
    ``weights_ref``, the ``budget``, the ``analyst`` and the ``query_id`` (the request id; a new one is
    made if omitted). Raises ``DisclosureRefused`` (every group too small, a result not matching its
    plan, ε over the maximum, bounds missing) or ``BudgetExhausted``; then nothing is released.
    """
    _check_plan(plan)
    names = [a.name for a in plan.aggregates]
    sizes = _check_sizes(group_sizes)
    for key in raw:
        if key not in sizes:
            raise DisclosureRefused(
                f"the result has group {key!r} without a group size; nothing released (engine/custodian "
                "mismatch: report every group's size)"
            )

    kept: list[str] = []
    suppressed: list[SuppressedGroup] = []
    reason = f"fewer than {settings.min_group_size} records (the minimum group size)"
    for key, size in sizes.items():
        if size < settings.min_group_size:
            suppressed.append(SuppressedGroup(group=key, reason=reason))
        else:
            if key not in raw:
                raise DisclosureRefused(
                    f"group {key!r} has a size but no values; nothing released (engine/custodian mismatch)"
                )
            got = set(raw[key])
            if got != set(names):
                raise DisclosureRefused(
                    f"group {key!r} has outputs {sorted(got)} but the plan asks for {names}; nothing released"
                )
            kept.append(key)
    if not kept:
        raise DisclosureRefused(
            f"every group has fewer than {settings.min_group_size} records, so nothing can be released; "
            "widen the filters (fewer WHERE conditions) or group by fewer attributes"
        )

    decimals = settings.decimals if plan.decimals is None else min(plan.decimals, settings.decimals)
    noise = plan.noise
    if noise is None:
        exact = {
            key: {agg.name: _finish_exact(agg, raw[key][agg.name], key, decimals) for agg in plan.aggregates}
            for key in kept
        }
        return Released(groups=exact, suppressed=tuple(suppressed), decimals=decimals, query_id=query_id)

    # Everything that can refuse happens before the charge, and the charge before any draw.
    if rng is None:
        raise ValueError("the plan asks for noise: pass a numpy.random.Generator as rng")
    if budget is None or analyst is None:
        raise ValueError("the plan asks for noise: pass budget= and analyst= so the spend is charged")
    outputs = _noise_plan(plan, settings, bounds or {}, weight_bounds or {})
    parsed = {
        key: {agg.name: _parts(agg, raw[key][agg.name], key) for agg in plan.aggregates} for key in kept
    }
    query_id = query_id or uuid.uuid4().hex
    budget.charge(analyst, noise.epsilon, noise.delta, query_id)

    groups: dict[str, dict[str, ReleasedValue]] = {}
    for key in kept:
        groups[key] = {
            agg.name: _finish_noisy(
                agg, parsed[key][agg.name], outputs[agg.name], noise.mechanism, settings, rng, decimals
            )
            for agg in plan.aggregates
        }
    return Released(
        groups=groups,
        suppressed=tuple(suppressed),
        epsilon=noise.epsilon,
        delta=noise.delta,
        mechanism=noise.mechanism,
        decimals=decimals,
        query_id=query_id,
    )


def _check_plan(plan: QueryPlan) -> None:
    if plan.lookup is not None:
        raise QueryInvalid(
            "a LOOKUP returns per-record Paillier ciphertexts to the analyst and is never decrypted here; "
            "release it with the engine's result, not through apply_guards"
        )
    if not plan.aggregates:
        raise QueryInvalid("the plan has no outputs; nothing to release")


def _check_sizes(group_sizes: Mapping[str, int]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for key, size in group_sizes.items():
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 0:
            raise DisclosureRefused(
                f"group {key!r} has size {size!r}; sizes are integers >= 0; nothing released"
            )
        sizes[str(key)] = int(size)
    if not sizes:
        raise DisclosureRefused("the result has no groups; nothing to release")
    return sizes


def _noise_plan(
    plan: QueryPlan,
    settings: GuardSettings,
    bounds: Mapping[str, tuple[float, float]],
    weight_bounds: Mapping[str, float],
) -> dict[str, _OutputNoise]:
    noise = plan.noise
    assert noise is not None
    # Plans from the front ends are already checked; a plan built in code is checked here, before the
    # charge, so a bad one can never be paid for and then fail half-way.
    if not (math.isfinite(noise.epsilon) and noise.epsilon > 0):
        raise QueryInvalid(f"noise epsilon must be a finite number > 0, got {noise.epsilon!r}")
    if noise.mechanism == "gaussian" and not 0 < noise.delta < 1:
        raise QueryInvalid(f"gaussian noise needs 0 < delta < 1, got {noise.delta!r}")
    if noise.mechanism == "laplace" and noise.delta != 0:
        raise QueryInvalid("laplace noise is pure ε-DP and takes no delta; set delta to 0 or use gaussian")
    if noise.mechanism not in ("laplace", "gaussian"):
        raise QueryInvalid(f"noise mechanism {noise.mechanism!r} is not supported; use laplace or gaussian")
    if noise.epsilon > settings.max_epsilon_per_query * (1 + _TOLERANCE):
        raise DisclosureRefused(
            f"the query asks for ε={noise.epsilon:g} but one query may spend at most "
            f"ε={settings.max_epsilon_per_query:g}; lower epsilon in NOISE"
        )
    if noise.delta > settings.max_delta_per_query * (1 + _TOLERANCE):
        raise DisclosureRefused(
            f"the query asks for δ={noise.delta:g} but one query may spend at most "
            f"δ={settings.max_delta_per_query:g}; lower delta in NOISE"
        )
    k = len(plan.aggregates)
    eps_out, delta_out = noise.epsilon / k, noise.delta / k
    out: dict[str, _OutputNoise] = {}
    for agg in plan.aggregates:
        sens, value_range, spread = _sensitivities(agg, bounds, weight_bounds)
        p = len(sens)
        parts = tuple(_Part(name, s, eps_out / p, delta_out / p) for name, s in sens)
        out[agg.name] = _OutputNoise(parts=parts, value_range=value_range, spread=spread)
    return out


def _bound(
    column: str | None, bounds: Mapping[str, tuple[float, float]], agg: Aggregate
) -> tuple[float, float]:
    if column is None or column not in bounds:
        raise DisclosureRefused(
            f"noise for {agg.name} needs declared bounds (lo, hi) for column {column!r}; nothing released. "
            "An admin declares the column's bounds (values are clipped to them at encryption)"
        )
    lo, hi = bounds[column]
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise DisclosureRefused(f"declared bounds of column {column!r} are not finite lo <= hi: {(lo, hi)!r}")
    return float(lo), float(hi)


def _sensitivities(
    agg: Aggregate, bounds: Mapping[str, tuple[float, float]], weight_bounds: Mapping[str, float]
) -> tuple[tuple[tuple[str, float], ...], tuple[float, float] | None, float]:
    """Per part: (name, sensitivity); plus the range a mean lies in and hi - lo (for clamping)."""
    func = agg.func
    if func == "count":
        return (("value", 1.0),), None, 0.0
    if func == "histogram":
        return (("value", 1.0),), None, 0.0
    if func == "score":
        ends = [(c * lo_, c * hi_) for n, c in agg.coefficients for lo_, hi_ in [_bound(n, bounds, agg)]]
        lo = agg.bias + math.fsum(min(e) for e in ends)  # interval arithmetic: the score's range per row
        hi = agg.bias + math.fsum(max(e) for e in ends)
        s = max(abs(lo), abs(hi))
        if agg.reduce == "sum":
            return (("value", s),), None, hi - lo
        return (("sum", s), ("count", 1.0)), (lo, hi), hi - lo
    lo, hi = _bound(agg.column, bounds, agg)
    b = max(abs(lo), abs(hi))
    if func == "sum":
        return (("value", b),), None, hi - lo
    if func == "dot":
        if agg.weights is not None:
            w = max((abs(x) for x in agg.weights), default=0.0)
        else:
            ref = agg.weights_ref or ""
            if ref not in weight_bounds:
                raise DisclosureRefused(
                    f"noise for {agg.name} needs the largest |weight| of the stored vector {ref!r}; "
                    "nothing released (pass weight_bounds)"
                )
            w = abs(float(weight_bounds[ref]))
        return (("value", w * b),), None, hi - lo
    if func == "mean":
        return (("sum", b), ("count", 1.0)), (lo, hi), hi - lo
    # variance, stddev
    return (("sum", b), ("sum_sq", b * b), ("count", 1.0)), (lo, hi), hi - lo


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DisclosureRefused(f"{where}: {value!r} is not a number; nothing released")
    number = float(value)
    if math.isinf(number):
        raise DisclosureRefused(f"{where}: the value is infinite; nothing released")
    return number


def _finite(value: Any, where: str) -> float:
    number = _number(value, where)
    if math.isnan(number):
        raise DisclosureRefused(f"{where}: the value is NaN; nothing released")
    return number


def _parts(agg: Aggregate, value: RawValue, key: str) -> dict[str, Any]:
    """The raw value as named parts, checked against the output's function."""
    where = f"group {key!r}, output {agg.name!r}"
    func = "mean" if agg.func == "score" and agg.reduce == "mean" else agg.func
    if func == "histogram":
        if (
            isinstance(value, Mapping)
            or isinstance(value, str | bytes)
            or not isinstance(value, Sequence | np.ndarray)
        ):
            raise DisclosureRefused(f"{where}: a histogram is a list of bucket counts; nothing released")
        return {"value": np.array([_finite(v, where) for v in value], dtype=float)}
    if func in _PARTS:
        if not isinstance(value, Mapping):
            raise DisclosureRefused(
                f"{where}: noisy {agg.func} needs its parts {list(_PARTS[func])} from the custodian "
                "(not the finished value); nothing released"
            )
        if set(value) != set(_PARTS[func]):
            raise DisclosureRefused(
                f"{where}: the parts of {agg.func} are {list(_PARTS[func])}, got {sorted(value)}; "
                "nothing released"
            )
        return {p: _finite(value[p], f"{where} {p}") for p in _PARTS[func]}
    return {"value": _finite(value, where)}


def _finish_exact(agg: Aggregate, value: RawValue, key: str, decimals: int) -> ReleasedValue:
    where = f"group {key!r}, output {agg.name!r}"
    func = "mean" if agg.func == "score" and agg.reduce == "mean" else agg.func
    if func == "histogram":
        return tuple(int(round(x, min(decimals, 0))) for x in _parts(agg, value, key)["value"])
    if func in _PARTS and isinstance(value, Mapping):
        parts = _parts(agg, value, key)
        return _round(_finish_parts(func, parts, None, 0.0), decimals)
    if value is None:
        return None
    number = _number(value, where)
    if math.isnan(number):
        return None
    if func == "count":
        return int(round(number, min(decimals, 0)))
    return _round(number, decimals)


def _finish_parts(
    func: str, parts: Mapping[str, float], value_range: tuple[float, float] | None, spread: float
) -> float | None:
    """Mean / variance / stddev from (noisy or exact) parts; clamped to the possible range if noisy."""
    noisy = value_range is not None
    s, n = parts["sum"], parts["count"]
    if func == "mean":
        if noisy:
            assert value_range is not None
            return min(max(s / max(n, 1.0), value_range[0]), value_range[1])
        return None if n <= 0 else s / n
    q = parts["sum_sq"]
    if noisy:
        n = max(n, 2.0)
    elif n < 2:
        return None
    var = max(0.0, (q - s * s / n) / (n - 1))
    if noisy:
        var = min(var, (spread / 2) ** 2 * n / (n - 1))
    return math.sqrt(var) if func == "stddev" else var


def _finish_noisy(
    agg: Aggregate,
    parts: Mapping[str, Any],
    plan: _OutputNoise,
    mechanism: str,
    settings: GuardSettings,
    rng: np.random.Generator,
    decimals: int,
) -> ReleasedValue:
    noisy: dict[str, Any] = {}
    for part in plan.parts:
        value = parts[part.name]
        size = value.shape if isinstance(value, np.ndarray) else None
        if mechanism == "laplace":
            draw = rng.laplace(0.0, laplace_scale(part.sensitivity, part.epsilon), size)
        else:
            sigma = gaussian_sigma(part.sensitivity, part.epsilon, part.delta, method=settings.gaussian)
            draw = rng.normal(0.0, sigma, size)
        noisy[part.name] = value + draw
    func = "mean" if agg.func == "score" and agg.reduce == "mean" else agg.func
    if func == "histogram":
        return tuple(int(round(max(0.0, float(x)), min(decimals, 0))) for x in noisy["value"])
    if func == "count":
        return int(round(max(0.0, float(noisy["value"])), min(decimals, 0)))
    if func in _PARTS:
        return _round(_finish_parts(func, noisy, plan.value_range, plan.spread), decimals)
    return _round(float(noisy["value"]), decimals)


def _round(value: float | None, decimals: int) -> float | None:
    if value is None:
        return None
    rounded = round(float(value), decimals)
    return rounded + 0.0  # no "-0.0" in releases


def _analyst(analyst: str) -> str:
    if not isinstance(analyst, str) or not analyst:
        raise ValueError("an analyst is named by a non-empty string (the API key's subject)")
    return analyst


def _check_budget_pair(pair: tuple[float, float], what: str) -> None:
    try:
        eps, delta = pair
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is a pair (epsilon, delta), e.g. (10.0, 1e-4)") from exc
    if not (math.isfinite(eps) and eps >= 0 and math.isfinite(delta) and 0 <= delta < 1):
        raise ValueError(f"{what} needs finite epsilon >= 0 and 0 <= delta < 1, got {pair!r}")
