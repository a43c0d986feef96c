"""The SQL front end: every supported form gives the plan it means (the same plan as its JSON form);
every other construct is refused with a message naming it."""

from __future__ import annotations

import pytest

from appliance.privacy._plan_json import plan_from_dict
from appliance.privacy.errors import PrivacyError, QueryInvalid, QueryUnsupported
from appliance.privacy.plan import Aggregate, Lookup, Noise, Predicate, QueryPlan
from appliance.privacy.sql import parse_sql


def test_the_issue_example() -> None:
    plan = parse_sql(
        "SELECT SUM(balance) FROM customers WHERE region = 'CN-GD' AND segment = 'gold' GROUP BY product"
    )
    assert plan == QueryPlan(
        table="customers",
        aggregates=(Aggregate("sum", "balance"),),
        where=(Predicate("region", "=", ("CN-GD",)), Predicate("segment", "=", ("gold",))),
        group_by=("product",),
    )


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("SUM(balance)", Aggregate("sum", "balance")),
        ("COUNT(*)", Aggregate("count", None)),
        ("COUNT(has_complaint)", Aggregate("count", "has_complaint")),
        ("AVG(balance)", Aggregate("mean", "balance")),
        ("MEAN(balance)", Aggregate("mean", "balance")),
        ("VARIANCE(balance)", Aggregate("variance", "balance")),
        ("VAR_SAMP(balance)", Aggregate("variance", "balance")),
        ("STDDEV(balance)", Aggregate("stddev", "balance")),
        ("STDDEV_SAMP(balance)", Aggregate("stddev", "balance")),
        ("HISTOGRAM(age)", Aggregate("histogram", "age")),
        ("DOT(balance, 'risk_V3')", Aggregate("dot", "balance", weights_ref="risk_V3")),
        (
            "SCORE(0.3 * balance + 0.1 * tenure - 2.0 * has_complaint + 1.5)",
            Aggregate(
                "score",
                coefficients=(("balance", 0.3), ("tenure", 0.1), ("has_complaint", -2.0)),
                bias=1.5,
                reduce="mean",
            ),
        ),
        (
            "SCORE_SUM(0.3 * balance + 1.5)",
            Aggregate("score", coefficients=(("balance", 0.3),), bias=1.5, reduce="sum"),
        ),
        ("SUM(balance) AS total", Aggregate("sum", "balance", alias="total")),
        ("SUM(balance) total", Aggregate("sum", "balance", alias="total")),
        ('SUM(balance) AS "Total"', Aggregate("sum", "balance", alias="total")),
        ("sum((balance))", Aggregate("sum", "balance")),
    ],
)
def test_every_aggregate_form(select: str, expected: Aggregate) -> None:
    plan = parse_sql(f"SELECT {select} FROM customers")
    assert plan.aggregates == (expected,)


@pytest.mark.parametrize(
    ("expression", "coefficients", "bias"),
    [
        ("balance", {"balance": 1.0}, 0.0),
        ("-balance + 2", {"balance": -1.0}, 2.0),
        ("balance * 0.5 - tenure / 4", {"balance": 0.5, "tenure": -0.25}, 0.0),
        ("-(balance - 2 * tenure) / 4 + 1", {"balance": -0.25, "tenure": 0.5}, 1.0),
        ("2 * (balance + 3)", {"balance": 2.0}, 6.0),
        ("0.1 * balance + 0.2 * balance + tenure", {"balance": 0.1 + 0.2, "tenure": 1.0}, 0.0),
        ("balance - balance + tenure", {"tenure": 1.0}, 0.0),
        ("1e-3 * balance", {"balance": 0.001}, 0.0),
        ("c.balance * 3", {"balance": 3.0}, 0.0),
    ],
)
def test_score_is_any_linear_expression(expression: str, coefficients: dict[str, float], bias: float) -> None:
    (agg,) = parse_sql(f"SELECT SCORE({expression}) FROM customers c").aggregates
    assert dict(agg.coefficients) == pytest.approx(coefficients)
    assert list(dict(agg.coefficients)) == list(coefficients)  # first-use order
    assert agg.bias == pytest.approx(bias)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("region = 'CN-GD'", Predicate("region", "=", ("CN-GD",))),
        ("'CN-GD' = region", Predicate("region", "=", ("CN-GD",))),
        ("has_complaint = 1", Predicate("has_complaint", "=", (1,))),
        ("has_complaint = TRUE", Predicate("has_complaint", "=", (1,))),
        ("has_complaint = false", Predicate("has_complaint", "=", (0,))),
        ("delta = -3", Predicate("delta", "=", (-3,))),
        ("region != 'x'", Predicate("region", "!=", ("x",))),
        ("region <> 'x'", Predicate("region", "!=", ("x",))),
        ("region IN ('a', 'b')", Predicate("region", "in", ("a", "b"))),
        ("region in ('a')", Predicate("region", "in", ("a",))),
        ("flag NOT IN (0, 2)", Predicate("flag", "not in", (0, 2))),
        ("NOT region IN ('a')", Predicate("region", "not in", ("a",))),
        ("(region = 'a')", Predicate("region", "=", ("a",))),
        ("region = 'It''s Mixed Case'", Predicate("region", "=", ("It's Mixed Case",))),
        ("region = '广东'", Predicate("region", "=", ("广东",))),
    ],
)
def test_every_predicate_form(condition: str, expected: Predicate) -> None:
    plan = parse_sql(f"SELECT COUNT(*) FROM customers WHERE {condition}")
    assert plan.where == (expected,)


def test_predicates_combine_with_and_in_order() -> None:
    plan = parse_sql("SELECT COUNT(*) FROM t WHERE a = 1 AND (b = 'x' AND c IN (1, 2)) AND d <> 'y'")
    assert [p.column for p in plan.where] == ["a", "b", "c", "d"]


def test_keywords_are_case_insensitive_identifiers_lower_cased_literals_kept() -> None:
    upper = parse_sql("SELECT Sum(BALANCE) AS Total FROM CUSTOMERS WHERE Region = 'CN-GD' GROUP BY Product")
    lower = parse_sql("select sum(balance) as total from customers where region = 'CN-GD' group by product")
    assert upper == lower
    assert upper.where[0].values == ("CN-GD",)
    assert parse_sql('SELECT SUM("Balance") FROM "Customers"').columns == ("balance",)


def test_group_by_columns_may_appear_bare_in_the_select_list() -> None:
    plan = parse_sql(
        "SELECT region, product, COUNT(*) AS n, SUM(balance) FROM customers GROUP BY region, product"
    )
    assert plan.group_by == ("region", "product")
    assert [a.name for a in plan.aggregates] == ["n", "sum(balance)"]


def test_table_alias_and_qualified_columns() -> None:
    plan = parse_sql(
        "SELECT SUM(c.balance) FROM customers AS c WHERE customers.region = 'a' GROUP BY c.product"
    )
    assert plan.columns == ("balance", "region", "product")


def test_lookup() -> None:
    plan = parse_sql("SELECT LOOKUP(balance) FROM customers WHERE id IN (1, 2, 3)")
    assert plan == QueryPlan(table="customers", lookup=Lookup("balance", (1, 2, 3)))
    assert parse_sql("select lookup(balance) from customers where id = 7").lookup == Lookup("balance", (7,))


@pytest.mark.parametrize(
    ("hint", "noise", "decimals"),
    [
        ("/*+ NOISE(laplace, 0.5) */", Noise("laplace", 0.5), None),
        ("/*+ NOISE('Laplace', 1) */", Noise("laplace", 1.0), None),
        ("/*+ noise(gaussian, 0.5, 1e-6) */", Noise("gaussian", 0.5, 1e-6), None),
        ("/*+ DECIMALS(0) */", None, 0),
        ("/*+ DECIMALS(-3) */", None, -3),
        ("/*+ NOISE(laplace, 0.25) DECIMALS(1) */", Noise("laplace", 0.25), 1),
    ],
)
def test_noise_and_decimals_hints(hint: str, noise: Noise | None, decimals: int | None) -> None:
    plan = parse_sql(f"SELECT {hint} SUM(balance) FROM customers")
    assert plan.noise == noise
    assert plan.decimals == decimals


def test_trailing_semicolon_and_comments_are_fine() -> None:
    plain = parse_sql("SELECT SUM(balance) FROM customers")
    assert parse_sql("SELECT SUM(balance) FROM customers;") == plain
    assert parse_sql("-- monthly\nSELECT SUM(balance) /* all */ FROM customers -- done") == plain


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT SUM(balance) AS s, COUNT(*) FROM customers WHERE region IN ('a', 'b') GROUP BY product",
        "SELECT /*+ NOISE(gaussian, 0.5, 1e-6) DECIMALS(0) */ AVG(b), VARIANCE(b), STDDEV(b), HISTOGRAM(a) "
        "FROM t WHERE f = 1 AND g NOT IN (2)",
        "SELECT DOT(b, 'w1'), SCORE(0.5 * b - c + 2) AS risk, SCORE_SUM(b) AS total FROM t",
        "SELECT LOOKUP(b) FROM t WHERE id IN (4, 5)",
    ],
)
def test_sql_and_json_give_the_same_plan(sql: str) -> None:
    plan = parse_sql(sql)
    assert plan_from_dict(plan.as_dict()) == plan


def test_sql_alias_equal_to_the_default_name_is_the_same_plan() -> None:
    assert parse_sql('SELECT SUM(b) AS "sum(b)" FROM t') == parse_sql("SELECT SUM(b) FROM t")


UNSUPPORTED = [
    ("SELECT SUM(b) FROM t WHERE a = 1 OR c = 2", "OR is not supported"),
    ("SELECT SUM(b) FROM t JOIN u ON t.id = u.id", "JOIN is not supported"),
    ("SELECT SUM(b) FROM t, u", "JOIN is not supported"),
    ("SELECT SUM(b) FROM (SELECT b FROM t) s", "subqueries are not supported"),
    ("SELECT SUM(b) FROM t WHERE a IN (SELECT a FROM u)", "subqueries are not supported"),
    ("SELECT (SELECT 1) FROM t", "subqueries"),
    ("SELECT SUM(b) FROM t ORDER BY 1", "ORDER BY is not supported"),
    ("SELECT SUM(b) FROM t LIMIT 5", "LIMIT is not supported"),
    ("SELECT SUM(b) FROM t GROUP BY a HAVING SUM(b) > 3", "HAVING is not supported"),
    ("SELECT DISTINCT SUM(b) FROM t", "DISTINCT is not supported"),
    ("SELECT COUNT(DISTINCT b) FROM t", "COUNT(DISTINCT ...) is not supported"),
    ("SELECT SUM(b) FROM t WHERE a > 3", "the comparison > (a > 3) is not supported"),
    ("SELECT SUM(b) FROM t WHERE a <= 3", "the comparison <= (a <= 3) is not supported"),
    ("SELECT SUM(b) FROM t WHERE a BETWEEN 1 AND 2", "BETWEEN"),
    ("SELECT SUM(b) FROM t WHERE a LIKE 'x%'", "LIKE"),
    ("SELECT SUM(b) FROM t WHERE a IS NULL", "IS [NOT] NULL"),
    ("SELECT SUM(b) FROM t WHERE a = NULL", "comparing with NULL"),
    ("SELECT SUM(b) FROM t WHERE a = ?", "bind parameters"),
    ("SELECT SUM(b) FROM t WHERE a = c", "comparing two columns"),
    ("SELECT SUM(b) FROM t WHERE a = 1 + 1", "arithmetic outside SCORE"),
    ("SELECT SUM(b) FROM t WHERE NOT a = 1", "NOT is supported only as NOT IN"),
    ("SELECT SUM(b) FROM t WHERE flag", "a bare column as a condition"),
    ("SELECT SUM(b + c) FROM t", "SUM(b + c) is not supported: SUM takes one column name"),
    ("SELECT SUM(b) + 1 FROM t", "arithmetic outside SCORE"),
    ("SELECT SUM(b) * 2 AS x FROM t", "arithmetic outside SCORE"),
    ("SELECT 1 FROM t", "a constant"),
    ("SELECT MAX(b) FROM t", "the function MAX"),
    ("SELECT MEDIAN(b) FROM t", "the function MEDIAN"),
    ("SELECT FOO(b) FROM t", "the function FOO"),
    ("SELECT SUM(ABS(b)) FROM t", "SUM(ABS(b)) is not supported"),
    ("SELECT VAR_POP(b) FROM t", "population variance is not supported"),
    ("SELECT STDDEV_POP(b) FROM t", "population deviation is not supported"),
    ("SELECT SUM(b) OVER () FROM t", "window functions"),
    ("SELECT SUM(b) FILTER (WHERE a = 1) FROM t", "FILTER (WHERE ...)"),
    ("SELECT CASE WHEN a = 1 THEN 1 END FROM t", "CASE"),
    ("SELECT * FROM t", "SELECT * is not supported"),
    ("SELECT t.* FROM t", "SELECT * is not supported"),
    ("SELECT SUM(b) FROM t; SELECT SUM(c) FROM t", "multiple statements (2)"),
    ("SELECT SUM(b) FROM t; DROP TABLE t", "multiple statements (2)"),
    ("SELECT SUM(b) FROM t UNION SELECT SUM(c) FROM t", "UNION is not supported"),
    ("DELETE FROM t", "DELETE statements are not supported"),
    ("WITH x AS (SELECT b FROM t) SELECT SUM(b) FROM x", "WITH (common table expressions)"),
    ("SELECT SUM(b) FROM db.t", "qualified table names"),
    ("SELECT SUM(b) FROM t GROUP BY 1", "GROUP BY 1 is not supported"),
    ("SELECT SUM(b) FROM t GROUP BY ROLLUP(a)", "GROUP BY ROLLUP (a) is not supported"),
    ("SELECT SCORE(b * c) FROM t", "multiplies two columns"),
    ("SELECT SCORE(1 / b) FROM t", "divides by a column"),
    ("SELECT SCORE(ABS(b)) FROM t", "the function ABS (inside SCORE)"),
    ("SELECT SUM(b) AS s, LOOKUP(b) FROM t WHERE id IN (1)", "LOOKUP cannot be combined"),
    ("SELECT LOOKUP(b) AS x FROM t WHERE id IN (1)", "renaming a LOOKUP is not supported"),
    ("SELECT LOOKUP(b) FROM t WHERE region IN ('a')", "a LOOKUP takes exactly WHERE id IN"),
    ("SELECT LOOKUP(b) FROM t WHERE id NOT IN (1)", "a LOOKUP takes exactly WHERE id IN"),
    ("SELECT /*+ NOISE(laplace, 1) */ LOOKUP(b) FROM t WHERE id IN (1)", "NOISE and DECIMALS do not apply"),
    ("SELECT region AS r, COUNT(*) FROM t GROUP BY region", "renaming the group key 'region'"),
]


@pytest.mark.parametrize(("sql", "message"), UNSUPPORTED, ids=[s for s, _ in UNSUPPORTED])
def test_unsupported_constructs_are_named(sql: str, message: str) -> None:
    with pytest.raises(QueryUnsupported) as info:
        parse_sql(sql)
    assert message in str(info.value)


INVALID = [
    ("SELECT SUM(b FROM t", "SQL syntax error at line 1, column 17 near 'FROM'"),
    ("SELECT SUM(b) FROM t WHERE", "SQL syntax error at line 1, column 26"),
    ("SELECT\nSUM(b)\nFROM", "SQL syntax error at line 3"),
    ("SELECT 'abc", "SQL cannot be read"),
    ("", "the query is empty"),
    ("   ;  ", "the query is empty"),
    ("SELECT SUM(b)", "the query has no FROM"),
    ("SELECT region FROM t", "column 'region' is selected bare but is not a GROUP BY column"),
    ("SELECT region, SUM(b) FROM t GROUP BY product", "column 'region' is selected bare"),
    ("SELECT product FROM t GROUP BY product", "the query selects no aggregate"),
    ("SELECT SUM(region) FROM t GROUP BY region", "SUM(region): 'region' is a GROUP BY column"),
    ("SELECT COUNT(region) FROM t GROUP BY region", "COUNT(region): 'region' is a GROUP BY column"),
    ("SELECT SCORE(region + b) FROM t GROUP BY region", "SCORE: 'region' is a GROUP BY column"),
    ("SELECT SUM(b) FROM t GROUP BY a, a", "GROUP BY lists 'a' twice"),
    ("SELECT SUM(b) FROM t GROUP BY a, b2, c, d, e", "GROUP BY 5 columns; at most 4"),
    ("SELECT SUM(b), SUM(b) FROM t", "two outputs are named 'sum(b)'"),
    ("SELECT SUM(b) AS x, COUNT(*) AS x FROM t", "two outputs are named 'x'"),
    ("SELECT SUM(b) FROM t WHERE a = 1.5", "1.5 is not a category or an integer"),
    ("SELECT SUM(u.b) FROM t", "u.b refers to table 'u', but the query reads only 't'"),
    ('SELECT SUM("has-dash") FROM t', "'has-dash' is not a valid name"),
    ("SELECT DOT(b) FROM t", "DOT takes a column and the name of a stored weight vector"),
    ("SELECT DOT(b, w) FROM t", "DOT takes a column and the name of a stored weight vector"),
    ("SELECT DOT(b, 'no spaces') FROM t", "'no spaces' is not a weight-vector name"),
    ("SELECT HISTOGRAM(a, b) FROM t", "HISTOGRAM takes one column"),
    ("SELECT SCORE(a, b) FROM t", "SCORE takes one linear expression"),
    ("SELECT SCORE(2) FROM t", "SCORE has no column with a non-zero coefficient"),
    ("SELECT SCORE(b - b) FROM t", "SCORE has no column with a non-zero coefficient"),
    ("SELECT SCORE(b / 0) FROM t", "divides by zero"),
    ("SELECT SCORE('x' * b) FROM t", "the string 'x' is not a number"),
    ("SELECT SCORE(1e999 * b) FROM t", "is not a finite number"),
    ("SELECT /*+ NOISE(laplace) */ SUM(b) FROM t", "NOISE takes (mechanism, epsilon[, delta])"),
    ("SELECT /*+ NOISE(laplace, 0) */ SUM(b) FROM t", "NOISE.epsilon: 0.0 must be > 0"),
    ("SELECT /*+ NOISE(laplace, -1) */ SUM(b) FROM t", "NOISE.epsilon: -1.0 must be > 0"),
    ("SELECT /*+ NOISE(laplace, 1, 1e-6) */ SUM(b) FROM t", "laplace noise is pure ε-DP and takes no delta"),
    ("SELECT /*+ NOISE(gaussian, 1) */ SUM(b) FROM t", "gaussian noise needs 0 < delta < 1"),
    ("SELECT /*+ NOISE(gaussian, 1, 2) */ SUM(b) FROM t", "gaussian noise needs 0 < delta < 1"),
    ("SELECT /*+ NOISE(uniform, 1) */ SUM(b) FROM t", "'uniform' is not a noise mechanism"),
    ("SELECT /*+ NOISE(laplace, x) */ SUM(b) FROM t", "NOISE epsilon: x is not a number"),
    ("SELECT /*+ NOISE(laplace, 1) NOISE(laplace, 1) */ SUM(b) FROM t", "the hint gives NOISE twice"),
    ("SELECT /*+ DECIMALS(1.5) */ SUM(b) FROM t", "DECIMALS: 1.5 is not a number of decimals"),
    ("SELECT /*+ DECIMALS(99) */ SUM(b) FROM t", "DECIMALS: 99 is not a number of decimals"),
    ("SELECT /*+ FULL(t) */ SUM(b) FROM t", "the hint 'FULL(t)' is not understood"),
    (
        "SELECT SUM(b) FROM t /*+ NOISE(laplace, 0.5) */",
        "would be ignored there; hints go right after SELECT",
    ),
    ("/*+ NOISE(laplace, 0.5) */ SELECT SUM(b) FROM t", "would be ignored there"),
    ("SELECT /* NOISE(laplace, 0.5) */ SUM(b) FROM t", "would be ignored there"),
    ("SELECT LOOKUP(b) FROM t", "a LOOKUP takes exactly WHERE id IN (1, 2, ...) (or WHERE id = 1); got 0"),
    ("SELECT LOOKUP(b) FROM t WHERE id IN (0)", "LOOKUP ids[0]: 0 is not a record id"),
    ("SELECT LOOKUP(b) FROM t WHERE id IN ('1')", "LOOKUP ids[0]: '1' is not a record id"),
    ("SELECT LOOKUP(b) FROM t WHERE id IN (1, 1)", "id 1 is listed twice"),
    ("SELECT LOOKUP(b, c) FROM t WHERE id IN (1)", "LOOKUP takes one column"),
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000 + " FROM t", "nested too deeply"),
]


@pytest.mark.parametrize(("sql", "message"), INVALID, ids=[s[:60] for s, _ in INVALID])
def test_invalid_queries_say_what_is_wrong(sql: str, message: str) -> None:
    with pytest.raises(QueryInvalid) as info:
        parse_sql(sql)
    assert message in str(info.value)


def test_lookup_ids_are_capped_at_1000() -> None:
    ids = ", ".join(str(i) for i in range(1, 1002))
    with pytest.raises(PrivacyError, match="at most 1000"):
        parse_sql(f"SELECT LOOKUP(b) FROM t WHERE id IN ({ids})")


def test_oversized_text_is_refused_before_parsing() -> None:
    with pytest.raises(QueryInvalid, match="at most 65536 are accepted"):
        parse_sql("SELECT SUM(b) FROM t WHERE a IN (" + "1, " * 30_000 + "1)")


def test_non_text_is_refused() -> None:
    with pytest.raises(QueryInvalid, match="must be SQL text"):
        parse_sql(b"SELECT 1")  # type: ignore[arg-type]
