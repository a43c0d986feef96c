"""The query plan: what an analyst asks, in one shape for the SQL subset and the JSON form.

Both front ends (``sql.parse_sql`` and ``QueryPlan.from_dict``) produce this; the engine computes it
over ciphertexts, the guards judge its result. Frozen and hashable, so a plan can be digested for the
ledger (``as_dict`` is canonical: plain JSON types, fixed key order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from appliance.privacy.errors import QueryInvalid

__all__ = ["AGGREGATES", "Aggregate", "Lookup", "Noise", "Predicate", "QueryPlan"]

AggregateFunc = Literal["sum", "count", "mean", "variance", "stddev", "histogram", "dot", "score"]
AGGREGATES: tuple[str, ...] = ("sum", "count", "mean", "variance", "stddev", "histogram", "dot", "score")
PredicateOp = Literal["=", "!=", "in", "not in"]
_OPS = ("=", "!=", "in", "not in")


@dataclass(frozen=True)
class Predicate:
    """``column op values``: on a server-visible attribute (segment choice) or an encrypted 0/1 flag.

    ``=``/``!=`` carry one value, ``in``/``not in`` one or more. Predicates are ANDed.
    """

    column: str
    op: PredicateOp
    values: tuple[str | int, ...]

    def as_dict(self) -> dict[str, Any]:
        value: Any = list(self.values) if self.op in ("in", "not in") else self.values[0]
        return {"column": self.column, "op": self.op, "value": value}


@dataclass(frozen=True)
class Aggregate:
    """One output of a query.

    - ``sum``/``mean``/``variance``/``stddev``: of ``column``;
    - ``count``: rows (``column`` None) or non-null values of ``column``;
    - ``histogram``: counts per bucket of ``column`` (the buckets declared when it was encrypted);
    - ``dot``: sum over rows of ``weights[i] * column[i]``, one plaintext weight per row, in row order
      of the table (``weights`` a tuple of floats, or ``weights_ref`` naming a stored weight vector);
    - ``score``: a linear model per row, ``bias + sum_j coefficients[c_j] * c_j``, reduced with
      ``reduce`` (sum or mean) over the selected rows (per group).
    """

    func: AggregateFunc
    column: str | None = None
    alias: str = ""
    weights: tuple[float, ...] | None = None
    weights_ref: str | None = None
    coefficients: tuple[tuple[str, float], ...] = ()
    bias: float = 0.0
    reduce: Literal["sum", "mean"] = "mean"

    @property
    def name(self) -> str:
        """The output's name: the alias, else ``func(column)``."""
        if self.alias:
            return self.alias
        return f"{self.func}({self.column or '*'})"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"func": self.func, "column": self.column, "as": self.name}
        if self.func == "dot":
            if self.weights_ref is not None:
                out["weights_ref"] = self.weights_ref
            else:
                out["weights"] = list(self.weights or ())
        if self.func == "score":
            out["coefficients"] = dict(self.coefficients)
            out["bias"] = self.bias
            out["reduce"] = self.reduce
        return out


@dataclass(frozen=True)
class Noise:
    """Differential-privacy noise the analyst asks for (spent from their budget)."""

    mechanism: Literal["laplace", "gaussian"]
    epsilon: float
    delta: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "epsilon": self.epsilon, "delta": self.delta}


@dataclass(frozen=True)
class Lookup:
    """Per-record Paillier values: ``column`` of the records ``ids`` (stay encrypted for the analyst)."""

    column: str
    ids: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "ids": list(self.ids)}


@dataclass(frozen=True)
class QueryPlan:
    """SELECT aggregates FROM table WHERE predicates GROUP BY attributes, or a Paillier lookup."""

    table: str
    aggregates: tuple[Aggregate, ...] = ()
    where: tuple[Predicate, ...] = ()
    group_by: tuple[str, ...] = ()
    noise: Noise | None = None
    lookup: Lookup | None = None
    decimals: int | None = None  # round released values to this many decimals (None: the default)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "select": [a.as_dict() for a in self.aggregates],
            "where": [p.as_dict() for p in self.where],
            "group_by": list(self.group_by),
            "noise": None if self.noise is None else self.noise.as_dict(),
            "lookup": None if self.lookup is None else self.lookup.as_dict(),
            "decimals": self.decimals,
        }

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the plan touches, in first-use order."""
        seen: dict[str, None] = {}
        for a in self.aggregates:
            if a.column:
                seen.setdefault(a.column)
            for name, _ in a.coefficients:
                seen.setdefault(name)
        for p in self.where:
            seen.setdefault(p.column)
        for g in self.group_by:
            seen.setdefault(g)
        if self.lookup is not None:
            seen.setdefault(self.lookup.column)
        return tuple(seen)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueryPlan:
        """The JSON form (the shape ``as_dict`` writes); every mistake names the key and the fix."""
        from appliance.privacy._plan_json import plan_from_dict

        return plan_from_dict(data)


def check_op(op: str) -> PredicateOp:
    if op not in _OPS:
        raise QueryInvalid(f"predicate operator {op!r} is not supported; use one of {', '.join(_OPS)}")
    return op  # type: ignore[return-value]
