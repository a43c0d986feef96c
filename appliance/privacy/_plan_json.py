"""The JSON form of a query plan, read strictly: the shape ``QueryPlan.as_dict`` writes, and nothing else.

Why strict: the JSON arrives from analysts over HTTP and its digest goes into the ledger, so a plan must
mean exactly one thing. An unknown key is refused (a typo such as ``"grup_by"`` would otherwise silently
drop the grouping), ``true`` is not a number, NaN and infinities are refused, and every message names
the key path (``select[1].func``) and the fix. Missing optional keys take friendly defaults (no
``where``, no ``group_by``, no ``noise``, ``delta`` 0, ``reduce`` "mean", ``op`` "=" or "in").

The small checkers here (names, noise, lookup ids, decimals) are shared with the SQL front end
(``sql.py``) so both forms accept exactly the same values. The parser does not know the schema: whether
a column exists, is encrypted or is visible to the server is checked by the engine and the node.

Round trip: ``plan_from_dict(p.as_dict()) == p`` for every plan this module accepts; an alias equal to
the default output name (``sum(balance)``) reads back as no alias, which names the output the same.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from appliance.privacy.errors import QueryInvalid
from appliance.privacy.plan import (
    AGGREGATES,
    Aggregate,
    AggregateFunc,
    Lookup,
    Noise,
    Predicate,
    PredicateOp,
    QueryPlan,
    check_op,
)

__all__ = [
    "DECIMALS_RANGE",
    "MAX_AGGREGATES",
    "MAX_COEFFICIENTS",
    "MAX_GROUP_BY",
    "MAX_IN_VALUES",
    "MAX_LOOKUP_IDS",
    "MAX_PREDICATES",
    "MAX_WEIGHTS",
    "check_alias",
    "check_decimals",
    "check_lookup_ids",
    "check_name",
    "check_noise",
    "check_value",
    "check_weights_ref",
    "default_name",
    "plan_from_dict",
]

# Limits: generous for real queries, small enough that one request cannot make the node spend minutes
# validating it or the engine encrypt-multiply a million plaintext weights per output.
MAX_AGGREGATES = 64
MAX_GROUP_BY = 4  # each extra attribute multiplies the groups and shrinks them below the minimum size
MAX_IN_VALUES = 1000
MAX_PREDICATES = 64
MAX_LOOKUP_IDS = 1000
MAX_WEIGHTS = 1_000_000
MAX_COEFFICIENTS = 256
MAX_STRING_VALUE = 256
MAX_ALIAS = 128
DECIMALS_RANGE = (-12, 12)  # negative rounds to tens, hundreds, ... (coarser releases)
_INT64 = 2**63 - 1

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
_OPS: tuple[str, ...] = get_args(PredicateOp)
_MECHANISMS = ("laplace", "gaussian")
_REDUCE = ("sum", "mean")

_PLAN_KEYS = ("table", "select", "where", "group_by", "noise", "lookup", "decimals")
_SELECT_KEYS = ("func", "column", "as", "weights", "weights_ref", "coefficients", "bias", "reduce")
_WHERE_KEYS = ("column", "op", "value")
_NOISE_KEYS = ("mechanism", "epsilon", "delta")
_LOOKUP_KEYS = ("column", "ids")
# Functions that aggregate one named column (``count`` may also count rows, ``score`` takes none).
_NEEDS_COLUMN = ("sum", "mean", "variance", "stddev", "histogram", "dot")


def plan_from_dict(data: Any) -> QueryPlan:
    """Read the JSON form of a plan; every mistake raises ``QueryInvalid`` naming the key and the fix."""
    if not isinstance(data, Mapping):
        raise QueryInvalid(
            f"a query plan is a JSON object, not {_kind(data)}; "
            'send {"table": "customers", "select": [{"func": "count"}]}'
        )
    _known_keys(data, _PLAN_KEYS, "plan")
    if "table" not in data:
        raise QueryInvalid('plan: "table" is missing; name the table to query, e.g. "table": "customers"')
    table = check_name(data["table"], "table")
    select = _list(_or_empty(data, "select"), "select", MAX_AGGREGATES, allow_empty=True)
    where_raw = _list(_or_empty(data, "where"), "where", MAX_PREDICATES, allow_empty=True)
    group_raw = _list(_or_empty(data, "group_by"), "group_by", MAX_GROUP_BY, allow_empty=True)
    group_by = tuple(check_name(g, f"group_by[{i}]") for i, g in enumerate(group_raw))
    _no_duplicates(group_by, "group_by")
    where = tuple(_predicate(p, f"where[{i}]") for i, p in enumerate(where_raw))
    aggregates = tuple(_aggregate(a, f"select[{i}]") for i, a in enumerate(select))
    noise_raw = data.get("noise")
    noise = None if noise_raw is None else _noise(noise_raw, "noise")
    lookup_raw = data.get("lookup")
    lookup = None if lookup_raw is None else _lookup(lookup_raw, "lookup")
    decimals_raw = data.get("decimals")
    decimals = None if decimals_raw is None else check_decimals(decimals_raw, "decimals")

    if lookup is not None:
        extra = [k for k, v in (("select", aggregates), ("where", where), ("group_by", group_by)) if v] + [
            k for k, v in (("noise", noise), ("decimals", decimals)) if v is not None
        ]
        if extra:
            raise QueryInvalid(
                f"plan: a lookup returns per-record encrypted values and takes no {', '.join(extra)}; "
                "send the lookup as its own plan (table + lookup only)"
            )
    elif not aggregates:
        raise QueryInvalid(
            'select: give at least one output, e.g. "select": [{"func": "sum", "column": "balance"}], '
            'or a "lookup"'
        )
    seen: dict[str, int] = {}
    for i, agg in enumerate(aggregates):
        if agg.name in seen:
            raise QueryInvalid(
                f"select[{i}].as: output name {agg.name!r} is already used by select[{seen[agg.name]}]; "
                'give one of them another "as"'
            )
        seen[agg.name] = i
        for column in _aggregate_columns(agg):
            if column in group_by:
                raise QueryInvalid(
                    f"select[{i}]: column {column!r} is a group_by attribute (a group key, not an "
                    "encrypted value); aggregate another column, or count rows with "
                    '{"func": "count"}'
                )
    return QueryPlan(
        table=table,
        aggregates=aggregates,
        where=where,
        group_by=group_by,
        noise=noise,
        lookup=lookup,
        decimals=decimals,
    )


def default_name(func: str, column: str | None) -> str:
    """The output name an aggregate gets without an alias (mirrors ``Aggregate.name``)."""
    return f"{func}({column or '*'})"


# --- shared checkers (also used by sql.py) -------------------------------------------------------------


def check_name(value: Any, path: str) -> str:
    """A table, column or attribute name: a lower-case identifier, so SQL and JSON name things alike."""
    if not isinstance(value, str):
        raise QueryInvalid(f'{path}: {_show(value)} is not a name; write a string such as "balance"')
    if not _NAME.fullmatch(value):
        hint = value.strip().lower()
        fix = f"; did you mean {hint!r}?" if _NAME.fullmatch(hint) else ""
        raise QueryInvalid(
            f"{path}: {value!r} is not a valid name; names are lower-case identifiers (a-z, 0-9, _; "
            f"not starting with a digit; at most 63 characters){fix}"
        )
    return value


def check_alias(value: Any, path: str) -> str:
    """An output name: free text (it labels a released value), but short and printable."""
    if not isinstance(value, str):
        raise QueryInvalid(f'{path}: {_show(value)} is not an output name; write a string such as "total"')
    if not value or len(value) > MAX_ALIAS or not value.isprintable() or value != value.strip():
        raise QueryInvalid(
            f"{path}: {value!r} is not a usable output name; use 1 to {MAX_ALIAS} printable characters "
            "without leading or trailing spaces"
        )
    return value


def check_weights_ref(value: Any, path: str) -> str:
    """The name of a stored weight vector (e.g. ``risk_v3``); kept as written, case included."""
    if not isinstance(value, str) or not _REF.fullmatch(value):
        raise QueryInvalid(
            f"{path}: {_show(value)} is not a weight-vector name; use letters, digits and _ . : - "
            '(at most 128 characters), e.g. "risk_v3"'
        )
    return value


def check_value(value: Any, path: str) -> str | int:
    """A predicate value: a category (string) or an integer (e.g. a 0/1 flag); never bool or float."""
    if isinstance(value, str):
        if len(value) > MAX_STRING_VALUE:
            raise QueryInvalid(f"{path}: the string is longer than {MAX_STRING_VALUE} characters; shorten it")
        return value
    if isinstance(value, bool):
        raise QueryInvalid(f"{path}: {value!r} is a boolean; write 1 or 0 for a flag")
    if isinstance(value, int):
        if abs(value) > _INT64:
            raise QueryInvalid(f"{path}: {value} does not fit a 64-bit integer; use a smaller value")
        return value
    raise QueryInvalid(
        f"{path}: {_show(value)} is not a category or an integer; predicates compare with strings "
        "(server-visible categories) or integers (0/1 flags)"
    )


def check_noise(mechanism: Any, epsilon: Any, delta: Any, path: str) -> Noise:
    """Noise the analyst asks for: laplace (pure ε-DP, δ = 0) or gaussian (needs 0 < δ < 1)."""
    if not isinstance(mechanism, str) or mechanism.lower() not in _MECHANISMS:
        raise QueryInvalid(
            f'{path}.mechanism: {_show(mechanism)} is not a noise mechanism; use "laplace" or "gaussian"'
        )
    mech: Literal["laplace", "gaussian"] = "laplace" if mechanism.lower() == "laplace" else "gaussian"
    eps = _number(epsilon, f"{path}.epsilon")
    if eps <= 0:
        raise QueryInvalid(
            f"{path}.epsilon: {eps!r} must be > 0 (smaller is more private and noisier), e.g. 0.5"
        )
    dlt = 0.0 if delta is None else _number(delta, f"{path}.delta")
    if mech == "laplace" and dlt != 0:
        raise QueryInvalid(
            f'{path}.delta: laplace noise is pure ε-DP and takes no delta; drop delta or use "gaussian"'
        )
    if mech == "gaussian" and not 0 < dlt < 1:
        raise QueryInvalid(
            f"{path}.delta: gaussian noise needs 0 < delta < 1 (typically 1e-6, well below 1/rows); "
            f"got {dlt!r}"
        )
    return Noise(mechanism=mech, epsilon=eps, delta=dlt)


def check_lookup_ids(ids: Any, path: str) -> tuple[int, ...]:
    """Record ids of a lookup: 1 to 1000 distinct positive integers."""
    items = _list(ids, path, MAX_LOOKUP_IDS, allow_empty=False)
    out: list[int] = []
    seen: set[int] = set()
    for i, value in enumerate(items):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _INT64:
            raise QueryInvalid(f"{path}[{i}]: {_show(value)} is not a record id; ids are positive integers")
        if value in seen:
            raise QueryInvalid(f"{path}[{i}]: id {value} is listed twice; list each record once")
        seen.add(value)
        out.append(value)
    return tuple(out)


def check_decimals(value: Any, path: str) -> int:
    """Decimals to round released values to; the guards never release finer than their own setting."""
    lo, hi = DECIMALS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise QueryInvalid(
            f"{path}: {_show(value)} is not a number of decimals; use an integer from {lo} to {hi} "
            "(negative rounds to tens, hundreds, ...)"
        )
    return value


# --- pieces ---------------------------------------------------------------------------------------------


def _aggregate(data: Any, path: str) -> Aggregate:
    if not isinstance(data, Mapping):
        raise QueryInvalid(f'{path}: an output is an object such as {{"func": "sum", "column": "balance"}}')
    _known_keys(data, _SELECT_KEYS, path)
    if "func" not in data:
        raise QueryInvalid(f"{path}.func is missing; use one of {', '.join(AGGREGATES)}")
    raw_func = data["func"]
    if not isinstance(raw_func, str) or raw_func.lower() not in AGGREGATES:
        raise QueryInvalid(
            f"{path}.func: {_show(raw_func)} is not supported; use one of {', '.join(AGGREGATES)}"
        )
    func: AggregateFunc = raw_func.lower()  # type: ignore[assignment]
    column_raw = data.get("column")
    column: str | None
    if func in _NEEDS_COLUMN:
        if column_raw is None:
            raise QueryInvalid(f'{path}.column is missing; {func} needs a column, e.g. "column": "balance"')
        column = check_name(column_raw, f"{path}.column")
    elif func == "count":
        column = None if column_raw is None else check_name(column_raw, f"{path}.column")
    else:  # score
        if column_raw is not None:
            raise QueryInvalid(
                f"{path}.column: score takes its columns from coefficients; drop column or set it to null"
            )
        column = None

    for key, owner in (("weights", "dot"), ("weights_ref", "dot"), ("coefficients", "score")):
        if key in data and func != owner:
            raise QueryInvalid(f"{path}.{key}: only {owner} takes {key}; remove it (func is {func})")
    for key in ("bias", "reduce"):
        if key in data and func != "score":
            raise QueryInvalid(f"{path}.{key}: only score takes {key}; remove it (func is {func})")

    weights: tuple[float, ...] | None = None
    weights_ref: str | None = None
    coefficients: tuple[tuple[str, float], ...] = ()
    bias = 0.0
    reduce: Literal["sum", "mean"] = "mean"
    if func == "dot":
        has_w, has_ref = data.get("weights") is not None, data.get("weights_ref") is not None
        if has_w == has_ref:
            raise QueryInvalid(
                f"{path}: dot needs exactly one of weights (a list of numbers, one per row) or "
                'weights_ref (the name of a stored weight vector, e.g. "risk_v3")'
            )
        if has_ref:
            weights_ref = check_weights_ref(data["weights_ref"], f"{path}.weights_ref")
        else:
            weights = _weights(data["weights"], f"{path}.weights")
    elif func == "score":
        coefficients = _coefficients(data.get("coefficients"), f"{path}.coefficients")
        bias = _number(data.get("bias", 0.0), f"{path}.bias")
        raw_reduce = data.get("reduce", "mean")
        if raw_reduce not in _REDUCE:
            raise QueryInvalid(f'{path}.reduce: {_show(raw_reduce)} is not supported; use "sum" or "mean"')
        reduce = "sum" if raw_reduce == "sum" else "mean"

    alias = ""
    if data.get("as") is not None:
        alias = check_alias(data["as"], f"{path}.as")
        if alias == default_name(func, column):
            alias = ""  # the default name: store no alias, so the plan reads back equal
    return Aggregate(
        func=func,
        column=column,
        alias=alias,
        weights=weights,
        weights_ref=weights_ref,
        coefficients=coefficients,
        bias=bias,
        reduce=reduce,
    )


def _weights(data: Any, path: str) -> tuple[float, ...]:
    items = _list(data, path, MAX_WEIGHTS, allow_empty=False)
    out: list[float] = []
    append = out.append
    for i, w in enumerate(items):
        # The common case inline (up to a million weights); anything else goes through the strict check.
        if type(w) is float and math.isfinite(w):
            append(w)
        else:
            append(_number(w, f"{path}[{i}]"))
    return tuple(out)


def _coefficients(data: Any, path: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(data, Mapping) or not data:
        raise QueryInvalid(
            f"{path}: score needs coefficients, an object of column -> number, "
            'e.g. {"balance": 0.3, "tenure": 0.1}'
        )
    if len(data) > MAX_COEFFICIENTS:
        raise QueryInvalid(f"{path}: at most {MAX_COEFFICIENTS} columns; a score over more is not supported")
    return tuple(
        (check_name(name, f"{path} key"), _number(value, f"{path}.{name}")) for name, value in data.items()
    )


def _predicate(data: Any, path: str) -> Predicate:
    if not isinstance(data, Mapping):
        raise QueryInvalid(
            f'{path}: a predicate is an object such as {{"column": "region", "op": "=", "value": "CN-GD"}}'
        )
    _known_keys(data, _WHERE_KEYS, path)
    if "column" not in data:
        raise QueryInvalid(f'{path}.column is missing; name the attribute to filter on, e.g. "region"')
    column = check_name(data["column"], f"{path}.column")
    if "value" not in data:
        raise QueryInvalid(f'{path}.value is missing; e.g. "value": "gold" or "value": ["a", "b"] with "in"')
    value = data["value"]
    is_list = isinstance(value, list | tuple)
    raw_op = data.get("op", "in" if is_list else "=")
    op = raw_op.lower().strip() if isinstance(raw_op, str) else raw_op
    op = {"<>": "!=", "==": "="}.get(op, op) if isinstance(op, str) else op
    if op not in _OPS:
        raise QueryInvalid(
            f"{path}.op: {_show(raw_op)} is not supported; use one of {', '.join(repr(o) for o in _OPS)} "
            "(no <, >: the server sees categories only)"
        )
    if op in ("in", "not in"):
        if not is_list:
            raise QueryInvalid(f"{path}.value: {op!r} takes a list; write [{_show(value)}]")
        items = _list(value, f"{path}.value", MAX_IN_VALUES, allow_empty=False)
        values = tuple(check_value(v, f"{path}.value[{i}]") for i, v in enumerate(items))
    else:
        if is_list:
            raise QueryInvalid(f'{path}.value: {op!r} takes one value; for a list use "op": "in"')
        values = (check_value(value, f"{path}.value"),)
    return Predicate(column=column, op=check_op(op), values=values)


def _noise(data: Any, path: str) -> Noise:
    if not isinstance(data, Mapping):
        raise QueryInvalid(
            f'{path}: noise is an object such as {{"mechanism": "laplace", "epsilon": 0.5}}, or null'
        )
    _known_keys(data, _NOISE_KEYS, path)
    for key in ("mechanism", "epsilon"):
        if key not in data:
            raise QueryInvalid(f'{path}.{key} is missing; e.g. {{"mechanism": "laplace", "epsilon": 0.5}}')
    return check_noise(data["mechanism"], data["epsilon"], data.get("delta"), path)


def _lookup(data: Any, path: str) -> Lookup:
    if not isinstance(data, Mapping):
        raise QueryInvalid(f'{path}: a lookup is an object such as {{"column": "balance", "ids": [1, 2]}}')
    _known_keys(data, _LOOKUP_KEYS, path)
    for key in _LOOKUP_KEYS:
        if key not in data:
            raise QueryInvalid(f'{path}.{key} is missing; e.g. {{"column": "balance", "ids": [1, 2]}}')
    return Lookup(
        column=check_name(data["column"], f"{path}.column"), ids=check_lookup_ids(data["ids"], f"{path}.ids")
    )


# --- small helpers --------------------------------------------------------------------------------------


def _aggregate_columns(agg: Aggregate) -> tuple[str, ...]:
    cols = [agg.column] if agg.column else []
    return (*cols, *(name for name, _ in agg.coefficients))


def _or_empty(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    return [] if value is None else value  # missing or null: the friendly default, no items


def _known_keys(data: Mapping[Any, Any], allowed: Sequence[str], path: str) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
            raise QueryInvalid(f"{path}: unknown key {_show(key)}; {fix}")


def _list(value: Any, path: str, limit: int, *, allow_empty: bool) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise QueryInvalid(f"{path}: {_show(value)} is not a list; write a JSON array [...]")
    if not value and not allow_empty:
        raise QueryInvalid(f"{path}: the list is empty; give at least one item")
    if len(value) > limit:
        raise QueryInvalid(f"{path}: {len(value)} items; at most {limit} are supported")
    return value


def _no_duplicates(names: Sequence[str], path: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise QueryInvalid(f"{path}[{i}]: {name!r} is listed twice; list each attribute once")
        seen.add(name)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryInvalid(f"{path}: {_show(value)} is not a number; write a JSON number such as 0.5")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise QueryInvalid(f"{path}: {_show(value)} is not finite; NaN and infinities are not allowed")
    return number


def _kind(value: Any) -> str:
    return {list: "a list", tuple: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
