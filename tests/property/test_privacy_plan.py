"""Properties of the query-plan front ends over random plans and random input.

- every valid plan reads back equal from its JSON form (as a dict and as JSON text);
- every plan the SQL subset can express parses back equal from SQL rendered from it;
- no input, however malformed, makes either front end fail with anything but a PrivacyError.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.privacy._plan_json import plan_from_dict
from appliance.privacy.errors import PrivacyError, QueryInvalid, QueryUnsupported
from appliance.privacy.plan import Aggregate, Lookup, Noise, Predicate, QueryPlan
from appliance.privacy.sql import parse_sql

NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
REFS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,20}", fullmatch=True)
NUMBERS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
NONZERO = NUMBERS.filter(lambda x: x != 0.0)
VALUES = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1),
)
PLAIN = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def aggregates(draw: st.DrawFn, *, sql: bool) -> Aggregate:
    func = draw(st.sampled_from(["sum", "count", "mean", "variance", "stddev", "histogram", "dot", "score"]))
    # SQL aliases are identifiers (lower-cased); JSON aliases are any printable text.
    alias_text = (
        NAMES if sql else st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=15)
    )
    alias = draw(st.one_of(st.just(""), alias_text))
    if func == "count":
        column = draw(st.one_of(st.none(), NAMES))
        agg = Aggregate("count", column, alias=alias)
    elif func == "dot":
        column = draw(NAMES)
        if sql or draw(st.booleans()):
            agg = Aggregate("dot", column, alias=alias, weights_ref=draw(REFS))
        else:
            weights = tuple(draw(st.lists(NUMBERS, min_size=1, max_size=8)))
            agg = Aggregate("dot", column, alias=alias, weights=weights)
    elif func == "score":
        names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
        coefficients = tuple((n, draw(NONZERO)) for n in names)
        agg = Aggregate(
            "score",
            None,
            alias=alias,
            coefficients=coefficients,
            bias=draw(NUMBERS),
            reduce=draw(st.sampled_from(["sum", "mean"])),
        )
    else:
        agg = Aggregate(func, draw(NAMES), alias=alias)  # type: ignore[arg-type]
    if agg.alias == f"{agg.func}({agg.column or '*'})":
        agg = Aggregate(**{**agg.__dict__, "alias": ""})
    return agg


@st.composite
def predicates(draw: st.DrawFn) -> Predicate:
    op = draw(st.sampled_from(["=", "!=", "in", "not in"]))
    if op in ("=", "!="):
        values: tuple[str | int, ...] = (draw(VALUES),)
    else:
        values = tuple(draw(st.lists(VALUES, min_size=1, max_size=4)))
    return Predicate(draw(NAMES), op, values)  # type: ignore[arg-type]


@st.composite
def plans(draw: st.DrawFn, *, sql: bool = False) -> QueryPlan:
    table = draw(NAMES)
    if draw(st.integers(0, 9)) == 0:
        ids = tuple(draw(st.lists(st.integers(1, 2**63 - 1), min_size=1, max_size=10, unique=True)))
        return QueryPlan(table=table, lookup=Lookup(draw(NAMES), ids))
    group_by = tuple(draw(st.lists(NAMES, max_size=3, unique=True)))
    aggs: list[Aggregate] = []
    for agg in draw(st.lists(aggregates(sql=sql), min_size=1, max_size=5)):
        used = {a.name for a in aggs}
        columns = {agg.column, *(n for n, _ in agg.coefficients)} - {None}
        if agg.name not in used and not columns & set(group_by):
            aggs.append(agg)
    if not aggs:
        aggs = [Aggregate("count")]
    noise = draw(
        st.one_of(
            st.none(),
            st.builds(Noise, st.just("laplace"), st.floats(1e-3, 10.0)),
            st.builds(Noise, st.just("gaussian"), st.floats(1e-3, 10.0), st.floats(1e-12, 0.5)),
        )
    )
    return QueryPlan(
        table=table,
        aggregates=tuple(aggs),
        where=tuple(draw(st.lists(predicates(), max_size=4))),
        group_by=group_by,
        noise=noise,
        decimals=draw(st.one_of(st.none(), st.integers(-12, 12))),
    )


@PLAIN
@given(plans())
def test_json_round_trip(plan: QueryPlan) -> None:
    assert plan_from_dict(plan.as_dict()) == plan
    assert plan_from_dict(json.loads(json.dumps(plan.as_dict()))) == plan


@PLAIN
@given(plans())
def test_as_dict_is_a_fixed_point(plan: QueryPlan) -> None:
    once = plan_from_dict(plan.as_dict()).as_dict()
    assert plan_from_dict(once).as_dict() == once


def _q(name: str) -> str:
    return '"' + name + '"'  # quoted: a column may be named like a keyword ("select", "from")


def _lit(value: str | int) -> str:
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def _num(x: float) -> str:
    return repr(x) if math.isfinite(x) else "0"


def _to_sql(plan: QueryPlan) -> str:
    """Render a plan in the SQL subset (the grammar in appliance/privacy/sql.py)."""
    if plan.lookup is not None:
        ids = ", ".join(str(i) for i in plan.lookup.ids)
        return f"SELECT LOOKUP({_q(plan.lookup.column)}) FROM {_q(plan.table)} WHERE id IN ({ids})"
    hints = []
    if plan.noise is not None:
        n = plan.noise
        extra = f", {_num(n.delta)}" if n.mechanism == "gaussian" else ""
        hints.append(f"NOISE({n.mechanism}, {_num(n.epsilon)}{extra})")
    if plan.decimals is not None:
        hints.append(f"DECIMALS({plan.decimals})")
    items = [_q(g) for g in plan.group_by]
    for a in plan.aggregates:
        if a.func == "count":
            call = f"COUNT({_q(a.column) if a.column else '*'})"
        elif a.func == "dot":
            call = f"DOT({_q(a.column or '')}, {_lit(a.weights_ref or '')})"
        elif a.func == "score":
            terms = " + ".join(f"{_num(c)} * {_q(n)}" for n, c in a.coefficients)
            call = f"{'SCORE_SUM' if a.reduce == 'sum' else 'SCORE'}({terms} + {_num(a.bias)})"
        else:
            call = f"{a.func.upper()}({_q(a.column or '')})"
        items.append(f"{call} AS {_q(a.alias)}" if a.alias else call)
    sql = (
        f"SELECT {'/*+ ' + ' '.join(hints) + ' */ ' if hints else ''}{', '.join(items)} FROM {_q(plan.table)}"
    )
    conditions = []
    for p in plan.where:
        if p.op in ("=", "!="):
            conditions.append(f"{_q(p.column)} {p.op} {_lit(p.values[0])}")
        else:
            listed = ", ".join(_lit(v) for v in p.values)
            conditions.append(f"{_q(p.column)} {p.op.upper()} ({listed})")
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if plan.group_by:
        sql += " GROUP BY " + ", ".join(_q(g) for g in plan.group_by)
    return sql


@PLAIN
@given(plans(sql=True))
def test_sql_round_trip(plan: QueryPlan) -> None:
    sql = _to_sql(plan)
    assert parse_sql(sql) == plan, sql


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_fails_with_a_privacy_error(text: str) -> None:
    try:
        parse_sql(text)
    except (QueryInvalid, QueryUnsupported):
        pass


SQL_PIECES = st.lists(
    st.sampled_from(
        [
            "SELECT",
            "SUM(",
            "COUNT(*)",
            "AVG(b)",
            "SCORE(",
            "DOT(b, 'w')",
            "LOOKUP(b)",
            ")",
            "(",
            ",",
            "*",
            "+",
            "-",
            "/",
            "1",
            "2.5",
            "'x'",
            "b",
            "c",
            "FROM",
            "t",
            "WHERE",
            "AND",
            "OR",
            "NOT",
            "IN",
            "=",
            "<>",
            ">",
            "GROUP BY",
            "ORDER BY",
            "LIMIT",
            "id",
            "/*+ NOISE(laplace, 1) */",
            "AS",
            "n",
            ";",
        ]
    ),
    max_size=25,
).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(SQL_PIECES)
def test_sql_like_token_soup_parses_or_fails_with_a_privacy_error(text: str) -> None:
    try:
        plan = parse_sql(text)
    except (QueryInvalid, QueryUnsupported):
        return
    assert plan_from_dict(plan.as_dict()) == plan


JSON_LIKE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "table",
                    "select",
                    "func",
                    "column",
                    "where",
                    "op",
                    "value",
                    "noise",
                    "epsilon",
                    "mechanism",
                    "delta",
                    "lookup",
                    "ids",
                    "group_by",
                    "as",
                    "weights",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(JSON_LIKE)
def test_any_json_reads_or_fails_with_query_invalid(data: Any) -> None:
    try:
        plan = plan_from_dict(data)
    except QueryInvalid:
        return
    except PrivacyError as exc:  # pragma: no cover - a failure message, not a path
        raise AssertionError(f"{type(exc).__name__} from the JSON reader: {exc}") from exc
    assert plan_from_dict(plan.as_dict()) == plan
