"""The SQL front end: a small, closed subset of SELECT, parsed by sqlglot into a ``QueryPlan``.

Why a subset: every construct accepted here must be computable over ciphertexts by the engine and
judged by the disclosure guards, so the parser works from an allow-list. Anything else is refused with
``QueryUnsupported`` naming the construct and what is supported; malformed SQL is ``QueryInvalid`` with
sqlglot's line and column. The parser does not know the schema (which columns exist, which are encrypted,
which the server may see): the engine and the node check that. It does check the query's shape.

Grammar (keywords case-insensitive, identifiers lower-cased, string literals kept as written)::

    query     := SELECT [/*+ hint [hint] */] item [, item ...] FROM table [[AS] alias]
                 [WHERE pred [AND pred ...]] [GROUP BY column [, column ...]] [;]   (at most 4 GROUP BY)
    item      := agg [[AS] name] | column            -- a bare column must be a GROUP BY column
    agg       := SUM(c) | COUNT(*) | COUNT(c) | AVG(c) | MEAN(c) | VARIANCE(c) | VAR_SAMP(c)
               | STDDEV(c) | STDDEV_SAMP(c) | HISTOGRAM(c) | DOT(c, 'weights_name')
               | SCORE(linear) | SCORE_SUM(linear)   -- SCORE reduces by mean, SCORE_SUM by sum
    linear    := sums and differences of  number * column,  column * number,  column / number,
                 column,  number,  -term,  (linear)   e.g. 0.3 * balance + 0.1 * tenure - 2 * flag + 1.5
    pred      := c = v | c != v | c <> v | c IN (v, ...) | c NOT IN (v, ...)   (also v = c)
    v         := 'string' | integer | TRUE | FALSE     -- TRUE/FALSE mean 1/0 (flags)
    hint      := NOISE(laplace, epsilon) | NOISE(gaussian, epsilon, delta) | DECIMALS(n)
    lookup    := SELECT LOOKUP(c) FROM table WHERE id IN (1, 2, ...)   (or WHERE id = 1)

Noise rides in an optimizer hint right after SELECT, which sqlglot parses as such:
``SELECT /*+ NOISE(laplace, 0.5) */ SUM(balance) FROM customers``. A hint written anywhere else would
be an ordinary comment that sqlglot drops, so such a misplaced hint is refused rather than ignored.
Variance and standard deviation are the sample ones (n - 1); the population forms are refused.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, NoReturn

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from appliance.privacy._plan_json import (
    MAX_AGGREGATES,
    MAX_COEFFICIENTS,
    MAX_GROUP_BY,
    MAX_IN_VALUES,
    MAX_PREDICATES,
    check_alias,
    check_decimals,
    check_lookup_ids,
    check_name,
    check_noise,
    check_value,
    check_weights_ref,
    plan_from_dict,
)
from appliance.privacy.errors import QueryInvalid, QueryUnsupported
from appliance.privacy.plan import Aggregate, AggregateFunc, Lookup, Noise, Predicate, QueryPlan

__all__ = ["MAX_SQL_LENGTH", "SUPPORTED", "parse_sql"]

MAX_SQL_LENGTH = 65_536

SUPPORTED = (
    "supported: SELECT [/*+ NOISE(laplace, eps) */] SUM(c) | COUNT(*) | COUNT(c) | AVG(c) | MEAN(c) | "
    "VARIANCE(c) | STDDEV(c) | HISTOGRAM(c) | DOT(c, 'weights') | SCORE(0.3 * a + 0.1 * b + 1) | "
    "SCORE_SUM(...) [AS name], ... FROM table [WHERE c = 'x' AND c IN ('a', 'b') AND c != 1 ...] "
    "[GROUP BY c, ...]; or SELECT LOOKUP(c) FROM table WHERE id IN (1, 2)"
)

# Select-clause parts sqlglot may fill, named as the analyst wrote them.
_CLAUSES = {
    "joins": "JOIN",
    "order": "ORDER BY",
    "limit": "LIMIT",
    "offset": "OFFSET",
    "having": "HAVING",
    "distinct": "DISTINCT",
    "qualify": "QUALIFY",
    "with_": "WITH (common table expressions)",
    "with": "WITH (common table expressions)",
    "windows": "WINDOW",
    "laterals": "LATERAL",
    "into": "SELECT INTO",
    "locks": "FOR UPDATE (locking)",
    "sample": "TABLESAMPLE",
    "connect": "CONNECT BY",
    "pivots": "PIVOT",
    "prewhere": "PREWHERE",
    "distribute": "DISTRIBUTE BY",
    "sort": "SORT BY",
    "cluster": "CLUSTER BY",
    "match": "MATCH_RECOGNIZE",
    "exclude": "EXCLUDE",
    "operation_modifiers": "query modifiers",
    "kind": "SELECT AS STRUCT/VALUE",
}
# "from_" in sqlglot 30 ("from" in older releases): both accepted so an upgrade does not refuse FROM.
_ALLOWED_CLAUSES = ("expressions", "from_", "from", "where", "group", "hint")

# One-column aggregates sqlglot knows by class; exact classes (subclasses such as the population forms
# are other functions).
_SIMPLE: dict[type[exp.Expression], AggregateFunc] = {
    exp.Sum: "sum",
    exp.Avg: "mean",
    exp.Variance: "variance",
    exp.Stddev: "stddev",
    exp.StddevSamp: "stddev",
}
_POPULATION: dict[type[exp.Expression], str] = {
    exp.VariancePop: "VAR_POP: population variance is not supported; use VARIANCE(c) (sample, n - 1)",
    exp.StddevPop: "STDDEV_POP: population deviation is not supported; use STDDEV(c) (sample, n - 1)",
}
_ANONYMOUS_ONE_COLUMN: dict[str, AggregateFunc] = {"MEAN": "mean", "HISTOGRAM": "histogram"}
_COMPARISONS: dict[type[exp.Expression], str] = {exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
_OTHER_CONDITIONS: dict[type[exp.Expression], str] = {
    exp.Between: "BETWEEN",
    exp.Like: "LIKE",
    exp.ILike: "ILIKE",
    exp.Is: "IS [NOT] NULL",
    exp.Exists: "EXISTS (subquery)",
}
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv, exp.Neg, exp.Pow, exp.DPipe)
_HINT_IN_COMMENT = re.compile(r"\b(noise|decimals)\s*\(", re.IGNORECASE)


def parse_sql(text: str) -> QueryPlan:
    """Parse one SELECT of the supported subset into a plan (the same plan the JSON form gives)."""
    if not isinstance(text, str):
        raise QueryInvalid(f"the query must be SQL text, not {type(text).__name__}")
    if len(text) > MAX_SQL_LENGTH:
        raise QueryInvalid(f"the query is {len(text)} characters; at most {MAX_SQL_LENGTH} are accepted")
    statement = _parse_one(text)
    plan = _Builder(statement).build()
    # Run the plan through the JSON reader too: one set of value rules for both front ends, and the
    # plan returned is exactly the one its JSON form reads back as.
    return plan_from_dict(plan.as_dict())


def _parse_one(text: str) -> exp.Select:
    try:
        statements = [s for s in sqlglot.parse(text) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f"line {first.get('line', '?')}, column {first.get('col', '?')}"
        near = str(first.get("highlight") or "").strip()
        what = str(first.get("description") or exc).split(". Line")[0]
        raise QueryInvalid(
            f"SQL syntax error at {where}{f' near {near!r}' if near else ''}: {what}; {SUPPORTED}"
        ) from exc
    except SqlglotError as exc:  # tokenizer errors: an unterminated string or comment
        raise QueryInvalid(f"SQL cannot be read: {exc}; close every quote and comment") from exc
    except RecursionError as exc:
        raise QueryInvalid("the query is nested too deeply; remove redundant parentheses") from exc
    if not statements:
        raise QueryInvalid(f"the query is empty; {SUPPORTED}")
    if len(statements) > 1:
        raise QueryUnsupported(
            f"multiple statements ({len(statements)}) are not supported; send one SELECT per request"
        )
    statement = statements[0]
    if isinstance(statement, exp.SetOperation):
        kind = type(statement).__name__.upper()
        raise QueryUnsupported(f"{kind} is not supported; send one SELECT per request")
    if not isinstance(statement, exp.Select):
        kind = type(statement).__name__.upper()
        raise QueryUnsupported(f"{kind} statements are not supported; only SELECT is. {SUPPORTED}")
    return statement


class _Builder:
    """Walks one parsed SELECT against the allow-list and collects the plan's parts."""

    def __init__(self, select: exp.Select) -> None:
        self.select = select
        self.table = ""
        self.table_alias: str | None = None
        self.group_by: tuple[str, ...] = ()

    def build(self) -> QueryPlan:
        s = self.select
        for key, value in s.args.items():
            if key not in _ALLOWED_CLAUSES and _present(value):
                construct = _CLAUSES.get(key, key.rstrip("_").upper())
                raise QueryUnsupported(f"{construct} is not supported; {SUPPORTED}")
        self._misplaced_hints()
        self._from(s.args.get("from_") or s.args.get("from"))
        self.group_by = self._group(s.args.get("group"))
        noise, decimals = self._hint(s.args.get("hint"))
        items = list(s.expressions)
        if len(items) > MAX_AGGREGATES:
            raise QueryInvalid(f"{len(items)} outputs; at most {MAX_AGGREGATES} per query")
        if any(_is_lookup(_unalias(item)) for item in items):
            return self._lookup(items, noise, decimals)

        aggregates: list[Aggregate] = []
        for item in items:
            agg = self._item(item)
            if agg is not None:
                aggregates.append(agg)
        if not aggregates:
            raise QueryInvalid(
                "the query selects no aggregate; add one, e.g. SELECT product, COUNT(*) ... GROUP BY product"
            )
        names: dict[str, Aggregate] = {}
        for agg in aggregates:
            if agg.name in names:
                raise QueryInvalid(
                    f"two outputs are named {agg.name!r}; give one of them another name with AS, "
                    f"e.g. ... AS {_suggest_alias(agg)}"
                )
            names[agg.name] = agg
        where = self._where(s.args.get("where"))
        return QueryPlan(
            table=self.table,
            aggregates=tuple(aggregates),
            where=where,
            group_by=self.group_by,
            noise=noise,
            decimals=decimals,
        )

    # --- FROM, GROUP BY, hints ---------------------------------------------------------------------

    def _from(self, from_: exp.Expression | None) -> None:
        if from_ is None:
            raise QueryInvalid("the query has no FROM; name the table, e.g. SELECT COUNT(*) FROM customers")
        source = from_.this
        if isinstance(source, exp.Subquery | exp.Select):
            raise QueryUnsupported(f"subqueries are not supported; query the table directly. {SUPPORTED}")
        if not isinstance(source, exp.Table) or not isinstance(source.this, exp.Identifier):
            raise QueryUnsupported(f"FROM {source.sql()} is not supported; FROM takes one table name")
        if source.args.get("db") is not None or source.args.get("catalog") is not None:
            raise QueryUnsupported(
                f"qualified table names ({source.sql()}) are not supported; write the table name alone"
            )
        for key, value in source.args.items():
            if key not in ("this", "alias") and _present(value):
                construct = _CLAUSES.get(key, key.rstrip("_").upper())
                raise QueryUnsupported(f"{construct} on a table is not supported; {SUPPORTED}")
        self.table = check_name(_ident(source.this), "FROM table")
        alias = source.args.get("alias")
        if alias is not None:
            if alias.args.get("columns"):
                raise QueryUnsupported(
                    "column aliases on the table are not supported; write FROM table [AS t]"
                )
            self.table_alias = check_name(_ident(alias.this), "table alias")

    def _group(self, group: exp.Group | None) -> tuple[str, ...]:
        if group is None:
            return ()
        for key in ("grouping_sets", "cube", "rollup", "totals", "all"):
            if _present(group.args.get(key)):
                construct = {"grouping_sets": "GROUPING SETS", "all": "GROUP BY ALL"}.get(key, key.upper())
                raise QueryUnsupported(f"{construct} is not supported; GROUP BY takes column names")
        if not group.expressions:
            raise QueryInvalid("GROUP BY names no column; write GROUP BY product or drop it")
        names: list[str] = []
        for node in group.expressions:
            if not isinstance(node, exp.Column):
                raise QueryUnsupported(
                    f"GROUP BY {node.sql()} is not supported; GROUP BY takes column names "
                    "(no positions or expressions)"
                )
            name = self._column(node, "GROUP BY")
            if name in names:
                raise QueryInvalid(f"GROUP BY lists {name!r} twice; list each column once")
            names.append(name)
        if len(names) > MAX_GROUP_BY:
            raise QueryInvalid(
                f"GROUP BY {len(names)} columns; at most {MAX_GROUP_BY} "
                "(more attributes make groups too small to release)"
            )
        return tuple(names)

    def _hint(self, hint: exp.Hint | None) -> tuple[Noise | None, int | None]:
        noise: Noise | None = None
        decimals: int | None = None
        if hint is None:
            return noise, decimals
        usage = "write /*+ NOISE(laplace, 0.5) */, /*+ NOISE(gaussian, 0.5, 1e-6) */ or /*+ DECIMALS(0) */"
        for node in hint.expressions:
            name = node.name.upper() if isinstance(node, exp.Anonymous) else ""
            if name == "NOISE":
                if noise is not None:
                    raise QueryInvalid(f"the hint gives NOISE twice; give it once ({usage})")
                args = list(node.expressions)
                if len(args) not in (2, 3):
                    raise QueryInvalid(f"NOISE takes (mechanism, epsilon[, delta]); {usage}")
                mechanism = _word(args[0])
                epsilon = _hint_number(args[1], "NOISE epsilon")
                delta = _hint_number(args[2], "NOISE delta") if len(args) == 3 else None
                noise = check_noise(mechanism, epsilon, delta, "NOISE")
            elif name == "DECIMALS":
                if decimals is not None:
                    raise QueryInvalid(f"the hint gives DECIMALS twice; give it once ({usage})")
                if len(node.expressions) != 1:
                    raise QueryInvalid(f"DECIMALS takes one integer; {usage}")
                value = _hint_number(node.expressions[0], "DECIMALS")
                number: Any = int(value) if float(value).is_integer() else value
                decimals = check_decimals(number, "DECIMALS")
            else:
                shown = node.sql() if isinstance(node, exp.Expression) else str(node)
                raise QueryInvalid(f"the hint {shown!r} is not understood; {usage}")
        return noise, decimals

    def _misplaced_hints(self) -> None:
        for node in self.select.walk():
            for comment in node.comments or ():
                if _HINT_IN_COMMENT.search(comment):
                    raise QueryInvalid(
                        f"a hint in the comment /*{comment}*/ would be ignored there; hints go right after "
                        "SELECT: SELECT /*+ NOISE(laplace, 0.5) */ SUM(balance) FROM customers"
                    )

    # --- select list -------------------------------------------------------------------------------

    def _item(self, item: exp.Expression) -> Aggregate | None:
        alias = ""
        node = item
        if isinstance(item, exp.Alias):
            alias = check_alias(_ident(item.args["alias"]), "AS")
            node = item.this
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise QueryUnsupported(
                    f"SELECT * is not supported: the analyst sees aggregates only. {SUPPORTED}"
                )
            name = self._column(node, "SELECT")
            if name not in self.group_by:
                raise QueryInvalid(
                    f"column {name!r} is selected bare but is not a GROUP BY column; aggregate it "
                    f"(e.g. SUM({name})) or add GROUP BY {name}"
                )
            if alias:
                raise QueryUnsupported(
                    f"renaming the group key {name!r} is not supported; results are keyed by the column name"
                )
            return None  # a group key: reported with every group, not an aggregate
        if isinstance(node, exp.Star):
            raise QueryUnsupported(
                f"SELECT * is not supported: the analyst sees aggregates only. {SUPPORTED}"
            )
        return self._aggregate(node, alias)

    def _aggregate(self, node: exp.Expression, alias: str) -> Aggregate:
        kind = type(node)
        if kind in _SIMPLE:
            func = _SIMPLE[kind]
            column = self._agg_column(node.this, node, func)
            return Aggregate(func=func, column=column, alias=alias)
        if kind in _POPULATION:
            raise QueryUnsupported(_POPULATION[kind])
        if isinstance(node, exp.Count):
            return self._count(node, alias)
        if isinstance(node, exp.Anonymous):
            fname = node.name.upper()
            args = list(node.expressions)
            if fname in _ANONYMOUS_ONE_COLUMN:
                func = _ANONYMOUS_ONE_COLUMN[fname]
                if len(args) != 1:
                    raise QueryInvalid(f"{fname} takes one column, e.g. {fname}(balance)")
                return Aggregate(func=func, column=self._agg_column(args[0], node, func), alias=alias)
            if fname == "DOT":
                if len(args) != 2 or not (isinstance(args[1], exp.Literal) and args[1].is_string):
                    raise QueryInvalid(
                        "DOT takes a column and the name of a stored weight vector, "
                        "e.g. DOT(balance, 'risk_v3')"
                    )
                column = self._agg_column(args[0], node, "dot")
                ref = check_weights_ref(args[1].this, "DOT weight vector")
                return Aggregate(func="dot", column=column, alias=alias, weights_ref=ref)
            if fname in ("SCORE", "SCORE_SUM"):
                return self._score(fname, args, alias)
        if isinstance(node, exp.Window):
            raise QueryUnsupported(f"window functions (OVER ...) are not supported; {SUPPORTED}")
        if isinstance(node, exp.Filter):
            raise QueryUnsupported(
                "FILTER (WHERE ...) on an aggregate is not supported; use the query's WHERE"
            )
        _unsupported_expression(node, "in the select list")

    def _count(self, node: exp.Count, alias: str) -> Aggregate:
        arg = node.this
        if node.expressions or arg is None:
            raise QueryInvalid("COUNT takes * or one column: COUNT(*) or COUNT(flag)")
        if isinstance(arg, exp.Star):
            return Aggregate(func="count", column=None, alias=alias)
        return Aggregate(func="count", column=self._agg_column(arg, node, "count"), alias=alias)

    def _agg_column(self, arg: exp.Expression | None, call: exp.Expression, func: str) -> str:
        fname = _function_name(call)
        arg = _unparen(arg)
        if isinstance(arg, exp.Distinct):
            raise QueryUnsupported(f"{fname}(DISTINCT ...) is not supported; aggregate all rows")
        if not isinstance(arg, exp.Column) or isinstance(arg.this, exp.Star):
            shown = arg.sql() if arg is not None else ""
            raise QueryUnsupported(
                f"{fname}({shown}) is not supported: {fname} takes one column name; arithmetic and "
                "functions inside aggregates are not supported (use SCORE(...) for a linear combination)"
            )
        name = self._column(arg, fname)
        if name in self.group_by:
            raise QueryInvalid(
                f"{fname}({name}): {name!r} is a GROUP BY column (a group key, not an encrypted value); "
                "aggregate another column, or count rows with COUNT(*)"
            )
        return name

    def _score(self, fname: str, args: list[exp.Expression], alias: str) -> Aggregate:
        if len(args) != 1:
            raise QueryInvalid(
                f"{fname} takes one linear expression, e.g. {fname}(0.3 * balance + 0.1 * tenure)"
            )
        coeffs, bias = self._linear(args[0], fname)
        coeffs = {name: c for name, c in coeffs.items() if c != 0.0}
        if not coeffs:
            raise QueryInvalid(
                f"{fname} has no column with a non-zero coefficient; e.g. {fname}(0.3 * balance)"
            )
        if len(coeffs) > MAX_COEFFICIENTS:
            raise QueryInvalid(
                f"{fname} over {len(coeffs)} columns; at most {MAX_COEFFICIENTS} are supported"
            )
        for name in coeffs:
            if name in self.group_by:
                raise QueryInvalid(
                    f"{fname}: {name!r} is a GROUP BY column (a group key, not an encrypted value); "
                    "leave it out of the score"
                )
        for name, c in (*coeffs.items(), ("(constant)", bias)):
            if not math.isfinite(c):
                raise QueryInvalid(f"{fname}: the coefficient of {name} is not finite; use smaller numbers")
        reduce: Literal["sum", "mean"] = "sum" if fname == "SCORE_SUM" else "mean"
        return Aggregate(
            func="score", coefficients=tuple(coeffs.items()), bias=bias, reduce=reduce, alias=alias
        )

    def _linear(self, node: exp.Expression, fname: str) -> tuple[dict[str, float], float]:
        """``node`` as (coefficient per column, constant); refuses anything that is not linear."""
        if isinstance(node, exp.Paren):
            return self._linear(node.this, fname)
        if isinstance(node, exp.Literal) and not node.is_string:
            return {}, _literal_number(node, fname)
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise QueryUnsupported(f"{fname}(*) is not supported; write a linear expression of columns")
            return {self._column(node, fname): 1.0}, 0.0
        if isinstance(node, exp.Neg):
            coeffs, bias = self._linear(node.this, fname)
            return _scale(coeffs, -1.0), -bias
        if isinstance(node, exp.Add | exp.Sub):
            left, lb = self._linear(node.this, fname)
            right, rb = self._linear(node.expression, fname)
            sign = 1.0 if isinstance(node, exp.Add) else -1.0
            out = dict(left)
            for name, c in right.items():
                out[name] = out.get(name, 0.0) + sign * c
            return out, lb + sign * rb
        if isinstance(node, exp.Mul):
            left, lb = self._linear(node.this, fname)
            right, rb = self._linear(node.expression, fname)
            if left and right:
                raise QueryUnsupported(
                    f"{fname}: {node.sql()} multiplies two columns; SCORE is linear: "
                    "multiply each column by a number only"
                )
            if left:
                return _scale(left, rb), lb * rb
            return _scale(right, lb), lb * rb
        if isinstance(node, exp.Div):
            left, lb = self._linear(node.this, fname)
            right, rb = self._linear(node.expression, fname)
            if right:
                raise QueryUnsupported(f"{fname}: {node.sql()} divides by a column; divide by numbers only")
            if rb == 0:
                raise QueryInvalid(f"{fname}: {node.sql()} divides by zero")
            return _scale(left, 1.0 / rb), lb / rb
        if isinstance(node, exp.Literal):
            raise QueryInvalid(f"{fname}: the string {node.sql()} is not a number; coefficients are numbers")
        _unsupported_expression(node, f"inside {fname}")

    # --- WHERE ---------------------------------------------------------------------------------------

    def _where(self, where: exp.Where | None) -> tuple[Predicate, ...]:
        if where is None:
            return ()
        preds = tuple(self._predicate(node) for node in _conjuncts(where.this))
        if len(preds) > MAX_PREDICATES:
            raise QueryInvalid(f"WHERE has {len(preds)} conditions; at most {MAX_PREDICATES} are supported")
        return preds

    def _predicate(self, node: exp.Expression) -> Predicate:
        shown = node.sql()
        if isinstance(node, exp.Or):
            raise QueryUnsupported(
                f"OR is not supported ({shown}); conditions combine with AND only: use c IN ('a', 'b') "
                "for alternatives of one column, or run one query per alternative"
            )
        if isinstance(node, exp.EQ | exp.NEQ):
            op: Literal["=", "!="] = "=" if isinstance(node, exp.EQ) else "!="
            left, right = _unparen(node.this), _unparen(node.expression)
            if not isinstance(left, exp.Column) and isinstance(right, exp.Column):
                left, right = right, left  # 'x' = c reads as c = 'x'
            if not isinstance(left, exp.Column):
                raise QueryUnsupported(f"the condition {shown} compares no column; write column = value")
            column = self._column(left, "WHERE")
            return Predicate(column=column, op=op, values=(self._value(right, shown),))
        if isinstance(node, exp.In):
            return self._in(node, negated=False)
        if isinstance(node, exp.Not):
            inner = _unparen(node.this)
            if isinstance(inner, exp.In):
                return self._in(inner, negated=True)
            raise QueryUnsupported(
                f"NOT is supported only as NOT IN ({shown}); write c != 'x' or c NOT IN ('a', 'b')"
            )
        if type(node) in _COMPARISONS:
            raise QueryUnsupported(
                f"the comparison {_COMPARISONS[type(node)]} ({shown}) is not supported: the server sees "
                "categories only; use =, !=, IN or NOT IN"
            )
        construct = _OTHER_CONDITIONS.get(type(node))
        if construct is not None:
            raise QueryUnsupported(f"{construct} ({shown}) is not supported; use =, !=, IN or NOT IN")
        if isinstance(node, exp.Column):
            raise QueryUnsupported(
                f"a bare column as a condition ({shown}) is not supported; write {shown} = 1"
            )
        _unsupported_expression(node, "in WHERE")

    def _in(self, node: exp.In, *, negated: bool) -> Predicate:
        shown = node.sql()
        if node.args.get("query") is not None:
            raise QueryUnsupported(f"subqueries are not supported ({shown}); list the values: IN ('a', 'b')")
        for key in ("unnest", "field"):
            if _present(node.args.get(key)):
                raise QueryUnsupported(f"{shown} is not supported; list the values: IN ('a', 'b')")
        target = _unparen(node.this)
        if not isinstance(target, exp.Column):
            raise QueryUnsupported(f"the condition {shown} tests no column; write column IN ('a', 'b')")
        column = self._column(target, "WHERE")
        if not node.expressions:
            raise QueryInvalid(f"{shown}: IN needs at least one value")
        if len(node.expressions) > MAX_IN_VALUES:
            raise QueryInvalid(f"IN lists {len(node.expressions)} values; at most {MAX_IN_VALUES}")
        values = tuple(self._value(v, shown) for v in node.expressions)
        return Predicate(column=column, op="not in" if negated else "in", values=values)

    def _value(self, node: exp.Expression, shown: str) -> str | int:
        node = _unparen(node)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return check_value(node.this, f"value in {shown}")
            if node.is_int:
                return check_value(int(node.this), f"value in {shown}")
            raise QueryInvalid(
                f"{shown}: {node.sql()} is not a category or an integer; compare with 'text' or a whole "
                "number (0/1 for flags)"
            )
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and node.this.is_int:
            return check_value(-int(node.this.this), f"value in {shown}")
        if isinstance(node, exp.Boolean):
            return 1 if node.this else 0
        if isinstance(node, exp.Null):
            raise QueryUnsupported(f"comparing with NULL ({shown}) is not supported; nulls are never matched")
        if isinstance(node, exp.Placeholder):
            raise QueryUnsupported(
                f"bind parameters ({shown}) are not supported; write the value in the query"
            )
        if isinstance(node, exp.Column):
            raise QueryUnsupported(f"comparing two columns ({shown}) is not supported; compare with a value")
        if isinstance(node, _ARITHMETIC):
            raise QueryUnsupported(
                f"arithmetic outside SCORE(...) ({shown}) is not supported; write the value"
            )
        _unsupported_expression(node, f"as a value in {shown}")

    # --- LOOKUP ------------------------------------------------------------------------------------

    def _lookup(self, items: list[exp.Expression], noise: Noise | None, decimals: int | None) -> QueryPlan:
        if len(items) != 1:
            raise QueryUnsupported(
                "LOOKUP cannot be combined with other outputs; send SELECT LOOKUP(c) FROM table "
                "WHERE id IN (...) as its own query"
            )
        item = items[0]
        if isinstance(item, exp.Alias):
            raise QueryUnsupported("renaming a LOOKUP is not supported; write SELECT LOOKUP(c) without AS")
        if len(item.expressions) != 1:
            raise QueryInvalid(
                "LOOKUP takes one column, e.g. SELECT LOOKUP(balance) FROM customers WHERE id IN (1, 2)"
            )
        arg = _unparen(item.expressions[0])
        if not isinstance(arg, exp.Column) or isinstance(arg.this, exp.Star):
            raise QueryInvalid(
                "LOOKUP takes one column, e.g. SELECT LOOKUP(balance) FROM customers WHERE id IN (1, 2)"
            )
        column = self._column(arg, "LOOKUP")
        if self.group_by or noise is not None or decimals is not None:
            raise QueryUnsupported(
                "a LOOKUP returns per-record encrypted values; GROUP BY, NOISE and DECIMALS do not apply"
            )
        where = self.select.args.get("where")
        conditions = _conjuncts(where.this) if where is not None else []
        usage = "a LOOKUP takes exactly WHERE id IN (1, 2, ...) (or WHERE id = 1)"
        if len(conditions) != 1:
            raise QueryInvalid(f"{usage}; got {len(conditions)} conditions")
        pred = self._predicate(conditions[0])
        if pred.column != "id" or pred.op not in ("=", "in"):
            raise QueryUnsupported(f"{usage}; got a condition on {pred.column!r} with {pred.op!r}")
        ids = check_lookup_ids(list(pred.values), "LOOKUP ids")
        return QueryPlan(table=self.table, lookup=Lookup(column=column, ids=ids))

    # --- names -------------------------------------------------------------------------------------

    def _column(self, node: exp.Column, where: str) -> str:
        if node.args.get("db") is not None or node.args.get("catalog") is not None:
            raise QueryUnsupported(
                f"{node.sql()}: qualified column names are not supported; write the column alone"
            )
        qualifier = node.args.get("table")
        if qualifier is not None:
            q = _ident(qualifier)
            if q not in (self.table, self.table_alias):
                raise QueryInvalid(
                    f"{node.sql()} refers to table {q!r}, but the query reads only {self.table!r}; "
                    "drop the prefix"
                )
        if not isinstance(node.this, exp.Identifier):
            raise QueryUnsupported(f"{node.sql()} is not a column name")
        return check_name(_ident(node.this), f"{where} column")


# --- helpers ---------------------------------------------------------------------------------------------


def _present(value: Any) -> bool:
    return not (value is None or value is False or (isinstance(value, list) and not value))


def _ident(node: Any) -> str:
    """An identifier's text, lower-cased (quoted ones too: names are case-insensitive here)."""
    text = (
        node.this
        if isinstance(node, exp.Identifier)
        else node.name
        if isinstance(node, exp.Expression)
        else node
    )
    return str(text).lower()


def _unparen(node: Any) -> Any:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _unalias(node: exp.Expression) -> exp.Expression:
    return node.this if isinstance(node, exp.Alias) else node


def _is_lookup(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.upper() == "LOOKUP"


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    node = _unparen(node)
    if isinstance(node, exp.And):
        return [*_conjuncts(node.this), *_conjuncts(node.expression)]
    return [node]


def _scale(coeffs: dict[str, float], factor: float) -> dict[str, float]:
    return {name: c * factor for name, c in coeffs.items()}


def _literal_number(node: exp.Literal, where: str) -> float:
    try:
        value = float(node.this)
    except ValueError as exc:
        raise QueryInvalid(f"{where}: {node.sql()} is not a number") from exc
    if not math.isfinite(value):
        raise QueryInvalid(f"{where}: {node.sql()} is not a finite number")
    return value


def _hint_number(node: exp.Expression, where: str) -> float:
    sign = 1.0
    if isinstance(node, exp.Neg):
        sign, node = -1.0, node.this
    if isinstance(node, exp.Literal) and not node.is_string:
        return sign * _literal_number(node, where)
    raise QueryInvalid(f"{where}: {node.sql()} is not a number; e.g. NOISE(laplace, 0.5)")


def _word(node: exp.Expression) -> str:
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Identifier):
        return _ident(node.this)
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this).lower()
    return node.sql()


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.upper()
    if isinstance(node, exp.Func):
        return node.sql_name()
    return type(node).__name__.upper()


def _suggest_alias(agg: Aggregate) -> str:
    return f"{agg.func}_{agg.column or 'all'}_2"


def _unsupported_expression(node: exp.Expression, where: str) -> NoReturn:
    if isinstance(node, exp.Subquery | exp.Select):
        raise QueryUnsupported(f"subqueries ({where}) are not supported; {SUPPORTED}")
    if isinstance(node, exp.Func):
        raise QueryUnsupported(f"the function {_function_name(node)} ({where}) is not supported; {SUPPORTED}")
    if isinstance(node, _ARITHMETIC):
        raise QueryUnsupported(
            f"arithmetic outside SCORE(...) ({node.sql()} {where}) is not supported; "
            "compute a linear combination with SCORE(0.3 * a + 0.1 * b)"
        )
    if isinstance(node, exp.Literal | exp.Boolean | exp.Null):
        raise QueryUnsupported(f"a constant ({node.sql()} {where}) is not supported; select aggregates")
    if isinstance(node, exp.Case):
        raise QueryUnsupported(f"CASE ({where}) is not supported; {SUPPORTED}")
    raise QueryUnsupported(f"{node.sql()} ({where}) is not supported; {SUPPORTED}")
