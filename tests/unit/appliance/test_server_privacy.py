"""The privacy queries over HTTP: analysts submit, the custodian approves, admins encrypt and grant.

One node per module (keys made and two columns encrypted once, over a couple of hundred demo customers);
every response is checked to be 2xx or problem+json, never a 500.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from appliance.store.demo import load_demo

if TYPE_CHECKING:
    from conftest import ServerEnv
    from werkzeug.test import TestResponse

#: CKKS results within 1e-6 relative; released values are rounded to 2 decimals (privacy.decimals).
REL = 1e-6
ROUNDED = 0.0051


@pytest.fixture(scope="module")
def penv(shared_env: ServerEnv) -> ServerEnv:
    """The module's node with demo customers, keys, ``balance`` and the consent flag encrypted."""
    load_demo(shared_env.node.store, 200, seed=3)
    shared_env.node.privacy.keygen(actor="custodian:test")
    shared_env.node.privacy.encrypt("customers", "balance", actor="admin:test")
    shared_env.node.privacy.encrypt("customers", "marketing_consent", kind="flag", actor="admin:test")
    _, shared_env.tokens["analyst2"] = shared_env.node.keys.issue("analyst", label="a second analyst")
    return shared_env


@pytest.fixture(scope="module")
def frame(penv: ServerEnv) -> pd.DataFrame:
    df = penv.node.store.proactive.customers_frame(["balance", "marketing_consent", "segment"])
    df["balance"] = pd.to_numeric(df["balance"])
    return df


def _actor(env: ServerEnv, role: str) -> str:
    key = env.node.keys.authenticate(env.tokens[role])
    assert key is not None
    return key.actor


def _call(env: ServerEnv, method: str, url: str, role: str, json: Any = None) -> TestResponse:
    """One request; whatever it is, never a 500 and never an HTML page."""
    resp = env.client.open(url, method=method, headers=env.auth(role), json=json)
    assert resp.status_code < 500, resp.get_data(as_text=True)
    if resp.status_code >= 400:
        assert resp.mimetype == "application/problem+json"
    return resp


def _ok(resp: TestResponse, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert isinstance(body, dict)
    return body


def _submit(env: ServerEnv, body: dict[str, Any], role: str = "analyst") -> TestResponse:
    return _call(env, "POST", "/v1/queries", role, body)


def test_an_analyst_submits_sql_or_json_and_gets_the_released_values(
    penv: ServerEnv, frame: pd.DataFrame
) -> None:
    sql = (
        "SELECT SUM(balance) AS s, COUNT(balance) AS n FROM customers WHERE marketing_consent = 1 "
        "GROUP BY segment"
    )
    body = _ok(_submit(penv, {"sql": sql}), 201)
    assert body["status"] == "released" and body["analyst"] == _actor(penv, "analyst")
    assert body["sql"] == sql and body["plan"]["group_by"] == ["segment"]
    assert body["error"] is None and body["approved_by"] is None and len(body["result_digest"]) == 64
    groups = body["released"]["groups"]
    consenting = frame[frame["marketing_consent"] == "true"].dropna(subset=["balance"])
    for segment, part in consenting.groupby("segment"):
        if len(part) >= 10:
            assert groups[f"segment={segment}"]["n"] == len(part)
            assert groups[f"segment={segment}"]["s"] == pytest.approx(part["balance"].sum(), rel=REL)
        else:
            assert f"segment={segment}" not in groups
    again = _ok(_call(penv, "GET", f"/v1/queries/{body['id']}", "analyst"))
    assert again == body

    plan = {"table": "customers", "select": [{"func": "mean", "column": "balance", "as": "m"}]}
    body = _ok(_submit(penv, {"query": plan}), 201)
    assert body["sql"] is None and body["status"] == "released"
    assert body["released"]["groups"]["all"]["m"] == pytest.approx(frame["balance"].mean(), rel=REL)


@pytest.mark.parametrize(
    ("body", "status", "slug", "detail"),
    [
        (
            {"sql": "SELECT COUNT(balance) FROM customers", "query": {"table": "customers"}},
            422,
            "invalid-body",
            "does not fit the schema",
        ),
        ({}, 422, "invalid-body", "does not fit the schema"),
        ({"sql": 5}, 422, "invalid-body", "does not fit the schema"),
        ({"sql": "SELECT COUNT(balance) FROM customers", "limit": 1}, 422, "invalid-body", "schema"),
        (
            {"sql": "SELECT SUM(balance) FROM customers ORDER BY 1"},
            422,
            "unsupported-query",
            "ORDER BY is not supported",
        ),
        ({"sql": "UPDATE customers SET balance = 0"}, 422, "unsupported-query", "only SELECT is"),
        ({"sql": "SELECT SUM(nope) FROM customers"}, 422, "invalid-query", "customers.nope is not encrypted"),
        (
            {"sql": "SELECT SUM(balance) FROM customers WHERE balance = 3"},
            422,
            "invalid-query",
            "filter only",
        ),
        ({"sql": "SELECT SUM(balance"}, 422, "invalid-query", "SQL syntax error"),
        ({"query": {"table": "customers", "select": "sum"}}, 422, "invalid-query", "select"),
        ({"query": {"table": "orders", "select": [{"func": "count"}]}}, 422, "invalid-query", "unknown"),
        (
            {"sql": "SELECT /*+ NOISE(laplace, 5) */ COUNT(balance) FROM customers"},
            403,
            "disclosure-refused",
            "at most ε=1",
        ),
    ],
    ids=[
        "sql-and-query",
        "neither",
        "sql-not-text",
        "extra-key",
        "order-by",
        "update",
        "unknown-column",
        "predicate-on-encrypted-value",
        "syntax",
        "json-shape",
        "unknown-table",
        "epsilon-over-maximum",
    ],
)
def test_bad_queries_are_problems_and_release_nothing(
    penv: ServerEnv, body: dict[str, Any], status: int, slug: str, detail: str
) -> None:
    released = len(penv.node.store.privacy.list_queries(status="released", limit=500))
    problem = penv.problem(_submit(penv, body), status, slug)
    assert detail in problem["detail"]
    assert len(penv.node.store.privacy.list_queries(status="released", limit=500)) == released


def test_a_group_too_small_is_403_disclosure_refused(penv: ServerEnv, frame: pd.DataFrame) -> None:
    sizes = frame.groupby(["region", "segment"]).size()
    region, segment = sizes.idxmin()
    assert sizes.min() < 10
    sql = f"SELECT SUM(balance) FROM customers WHERE region = '{region}' AND segment = '{segment}'"
    problem = penv.problem(_submit(penv, {"sql": sql}), 403, "disclosure-refused")
    assert "fewer than 10 records" in problem["detail"]
    (row,) = _ok(_call(penv, "GET", "/v1/queries?limit=1", "analyst"))["queries"]
    assert row["sql"] == sql and row["status"] == "refused" and row["released"] is None
    assert "fewer than 10" in row["error"]


def test_budget_get_put_and_an_exhausted_budget_is_403(penv: ServerEnv, frame: pd.DataFrame) -> None:
    analyst = _actor(penv, "analyst2")
    assert _ok(_call(penv, "GET", "/v1/privacy/budget", "analyst2")) == {
        "analyst": analyst,
        "epsilon": {"limit": 10.0, "spent": 0.0, "left": 10.0},
        "delta": {"limit": 1e-4, "spent": 0.0, "left": 1e-4},
    }
    granted = _ok(
        _call(penv, "PUT", f"/v1/privacy/budget/{analyst}", "admin", {"epsilon": 0.5, "delta": 1e-6})
    )
    assert (
        granted["epsilon"] == {"limit": 0.5, "spent": 0.0, "left": 0.5} and granted["delta"]["limit"] == 1e-6
    )
    noisy = {"sql": "SELECT /*+ NOISE(laplace, 0.4) */ COUNT(balance) AS n FROM customers"}
    body = _ok(_submit(penv, noisy, "analyst2"), 201)
    assert body["released"]["mechanism"] == "laplace" and body["released"]["epsilon"] == 0.4
    assert abs(body["released"]["groups"]["all"]["n"] - frame["balance"].count()) < 75  # P(miss) < e^-30
    problem = penv.problem(_submit(penv, noisy, "analyst2"), 403, "budget-exhausted")
    assert "nothing was computed" in problem["detail"] and "ε=0.1" in problem["detail"]
    budget = _ok(_call(penv, "GET", "/v1/privacy/budget", "analyst2"))
    assert budget["epsilon"]["spent"] == pytest.approx(0.4) and budget["epsilon"]["left"] == pytest.approx(
        0.1
    )

    for bad in (
        {"epsilon": 0, "delta": 0},
        {"epsilon": 1},
        {"epsilon": 1, "delta": 1},
        {"epsilon": "x", "delta": 0},
    ):
        penv.problem(_call(penv, "PUT", f"/v1/privacy/budget/{analyst}", "admin", bad), 422, "invalid-body")
    penv.problem(
        _call(penv, "PUT", "/v1/privacy/budget/bad%20name", "admin", {"epsilon": 1, "delta": 0}),
        400,
        "invalid-parameter",
    )
    penv.problem(_call(penv, "GET", "/v1/privacy/budget", "admin"), 403, "forbidden")


def test_score_waits_for_the_custodian_and_a_second_approval_is_403(
    penv: ServerEnv, frame: pd.DataFrame
) -> None:
    body = _ok(_submit(penv, {"sql": "SELECT SCORE(0.001 * balance + 1) AS risk FROM customers"}), 201)
    assert body["status"] == "awaiting_approval" and body["released"] is None
    url = f"/v1/queries/{body['id']}"
    assert _ok(_call(penv, "GET", url, "analyst"))["status"] == "awaiting_approval"
    penv.problem(_call(penv, "POST", f"{url}/approve", "analyst"), 403, "forbidden")

    approved = _ok(_call(penv, "POST", f"{url}/approve", "custodian"))
    assert approved["status"] == "released" and approved["approved_by"] == _actor(penv, "custodian")
    want = (0.001 * frame["balance"].fillna(0) + 1).mean()  # a null balance scores as 0 (the engine's rule)
    assert approved["released"]["groups"]["all"]["risk"] == pytest.approx(want, rel=REL, abs=ROUNDED)
    assert _ok(_call(penv, "GET", url, "analyst")) == approved

    problem = penv.problem(_call(penv, "POST", f"{url}/approve", "custodian"), 403, "disclosure-refused")
    assert "is released, not awaiting approval" in problem["detail"]
    assert _ok(_call(penv, "GET", url, "custodian")) == approved


@pytest.mark.parametrize(
    ("method", "url", "role", "status", "slug"),
    [
        ("GET", "/v1/queries/987654", "custodian", 404, "unknown-query"),
        ("GET", "/v1/queries/987654", "analyst", 404, "unknown-query"),
        ("POST", "/v1/queries/987654/approve", "custodian", 404, "unknown-query"),
        ("GET", "/v1/queries/0", "auditor", 400, "invalid-parameter"),
        ("GET", "/v1/queries/abc", "auditor", 400, "invalid-parameter"),
        ("GET", "/v1/queries/1e3", "auditor", 400, "invalid-parameter"),
        ("GET", "/v1/queries?status=done", "auditor", 400, "invalid-parameter"),
        ("GET", "/v1/queries?limit=0", "auditor", 400, "invalid-parameter"),
        ("GET", "/v1/queries?limit=1&limit=2", "auditor", 400, "invalid-parameter"),
    ],
)
def test_unknown_and_malformed_query_ids(
    penv: ServerEnv, method: str, url: str, role: str, status: int, slug: str
) -> None:
    penv.problem(_call(penv, method, url, role), status, slug)


def test_an_analyst_lists_and_reads_only_their_own_queries(penv: ServerEnv) -> None:
    sql = {"sql": "SELECT SUM(balance) FROM customers"}
    mine = _ok(_submit(penv, sql, "analyst"), 201)
    theirs = _ok(_submit(penv, sql, "analyst2"), 201)
    me, other = _actor(penv, "analyst"), _actor(penv, "analyst2")

    listed = _ok(_call(penv, "GET", "/v1/queries?limit=500", "analyst"))["queries"]
    assert listed and {q["analyst"] for q in listed} == {me} and listed[0]["id"] == mine["id"]
    listed = _ok(_call(penv, "GET", "/v1/queries?limit=500", "analyst2"))["queries"]
    assert {q["analyst"] for q in listed} == {other} and theirs["id"] in [q["id"] for q in listed]
    everyone = _ok(_call(penv, "GET", "/v1/queries?limit=500", "custodian"))["queries"]
    assert {me, other} <= {q["analyst"] for q in everyone}
    assert [q["id"] for q in everyone] == sorted((q["id"] for q in everyone), reverse=True)
    assert _ok(_call(penv, "GET", "/v1/queries?limit=500", "auditor"))["queries"] == everyone

    refused = _ok(_call(penv, "GET", "/v1/queries?status=refused", "analyst"))["queries"]
    assert (
        refused and {q["status"] for q in refused} == {"refused"} and {q["analyst"] for q in refused} == {me}
    )
    assert len(_ok(_call(penv, "GET", "/v1/queries?limit=1", "analyst"))["queries"]) == 1

    penv.problem(_call(penv, "GET", f"/v1/queries/{mine['id']}", "analyst2"), 404, "unknown-query")
    assert _ok(_call(penv, "GET", f"/v1/queries/{mine['id']}", "auditor"))["analyst"] == me


def test_columns_are_listed_without_values_and_encrypted_by_an_admin(
    penv: ServerEnv, frame: pd.DataFrame
) -> None:
    columns = {c["column"]: c for c in _ok(_call(penv, "GET", "/v1/privacy/columns", "auditor"))["columns"]}
    assert set(columns) == {"balance", "marketing_consent"}
    balance = columns["balance"]
    assert balance["rows"] == len(frame) and balance["scheme"] == "ckks" and balance["kind"] == "value"
    assert balance["visible_attributes"] == ["region", "segment"] and balance["bytes"] > 0
    assert balance["bound"] >= frame["balance"].abs().max()
    assert math.log2(balance["bound"]).is_integer()  # a power of two: tells nothing more than the magnitude
    assert columns["marketing_consent"]["kind"] == "flag"
    for role in ("analyst", "custodian", "admin"):
        assert _ok(_call(penv, "GET", "/v1/privacy/columns", role))["columns"] == list(columns.values())

    out = _ok(_call(penv, "POST", "/v1/privacy/columns", "admin", {"column": "balance"}), 201)
    assert out["appended"] == 0 and out["rows"] == len(frame) and out["ledger_seq"] >= 0
    penv.node.ledger.refresh()
    entry = penv.node.ledger.entry(out["ledger_seq"])
    assert entry.action == "privacy.column_encrypted" and entry.actor == _actor(penv, "admin")

    for body, status, slug, detail in (
        ({"column": "full_name"}, 422, "invalid-query", "sealed with a field key"),
        ({"column": "segment"}, 422, "invalid-query", "only int, number and bool"),
        ({"column": "balance", "segment_by": ["tenure"]}, 422, "invalid-query", "cannot segment by tenure"),
        ({"column": "Balance"}, 422, "invalid-body", "schema"),
        ({"column": "balance", "scheme": "rsa"}, 422, "invalid-body", "schema"),
        ({"column": "balance", "bound": -1}, 422, "invalid-body", "schema"),
        ({"column": "balance", "buckets": [1]}, 422, "invalid-body", "schema"),
        ({"table": "events", "column": "amount"}, 422, "invalid-body", "schema"),
    ):
        problem = penv.problem(_call(penv, "POST", "/v1/privacy/columns", "admin", body), status, slug)
        assert detail in problem["detail"], body
    penv.problem(
        _call(penv, "POST", "/v1/privacy/columns", "custodian", {"column": "balance"}), 403, "forbidden"
    )


def test_keys_show_public_parameters_only(penv: ServerEnv) -> None:
    resp = _call(penv, "GET", "/v1/privacy/keys", "auditor")
    body = _ok(resp)
    (key,) = body["keys"]
    assert key["key_id"] == body["current"]
    assert set(key) <= {"key_id", "created", "parameters"}
    assert key["parameters"]["ckks"]["poly_modulus_degree"] == 8192
    secret = json.loads(
        (penv.settings.data_dir / "privacy" / "keys" / body["current"] / "secret.json").read_text()
    )
    text = resp.get_data(as_text=True)
    assert secret["ckks"][:64] not in text and secret["bfv"][:64] not in text
    assert secret["paillier"]["p"] not in text and secret["paillier"]["q"] not in text


@pytest.mark.parametrize(
    "body",
    [
        {"sql": ""},
        {"sql": "SELECT"},
        {"sql": "SELECT SUM(balance) FROM customers WHERE region IN (SELECT region FROM customers)"},
        {"sql": "SELECT HISTOGRAM(balance) FROM customers"},
        {"sql": "SELECT LOOKUP(balance) FROM customers WHERE id IN (1, 2)"},
        {"sql": "SELECT SCORE(balance * balance) FROM customers"},
        {"sql": "SELECT SUM(balance) FROM customers GROUP BY region, segment, plan, product, region"},
        {"sql": "SELECT SUM(" + "(" * 3000 + "balance" + ")" * 3000 + ") FROM customers"},
        {"sql": "SELECT COUNT(balance) FROM customers WHERE region IN (" + ", ".join(["'CN'"] * 1001) + ")"},
        {"sql": "SELECT /*+ NOISE(gaussian, 0.5, 0.9) */ SUM(balance) FROM customers"},
        {"sql": "SELECT /*+ NOISE(laplace, -1) */ SUM(balance) FROM customers"},
        {"sql": "SELECT SUM(balance) FROM customers WHERE marketing_consent = 2"},
        {"sql": "SELECT SUM(balance) FROM customers WHERE region = 1"},
        {"sql": "SELECT SUM(balance) FROM customers WHERE region = '\u0000'"},
        {"query": {"table": "customers", "select": [{"func": "dot", "column": "balance", "weights": [1.0]}]}},
        {"query": {"table": "customers", "select": [{"func": "sum", "column": "balance"}], "noise": {}}},
        {"query": {"table": "customers", "lookup": {"column": "balance", "ids": [1]}}},
        {"query": {"table": "customers", "select": [{"func": "count", "column": 7}]}},
        {"query": []},
    ],
)
def test_odd_queries_are_4xx_problems_never_500(penv: ServerEnv, body: dict[str, Any]) -> None:
    resp = _submit(penv, body)
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)
    penv.problem(resp, resp.status_code, resp.get_json()["type"].rsplit("/", 1)[1])


def test_a_node_without_keys_answers_with_problems(env: ServerEnv) -> None:
    problem = env.problem(_call(env, "GET", "/v1/privacy/keys", "auditor"), 409, "keys-unavailable")
    assert "appliance privacy keygen" in problem["detail"]
    assert _ok(_call(env, "GET", "/v1/privacy/columns", "auditor")) == {"columns": []}
    env.problem(
        _call(env, "POST", "/v1/privacy/columns", "admin", {"column": "balance"}), 409, "keys-unavailable"
    )
    problem = env.problem(_submit(env, {"sql": "SELECT SUM(balance) FROM customers"}), 422, "invalid-query")
    assert "appliance privacy encrypt" in problem["detail"]
    assert _ok(_call(env, "GET", "/v1/queries", "analyst")) == {"queries": []}


def test_weight_vectors_are_stored_listed_and_used_by_dot(penv: ServerEnv, frame: pd.DataFrame) -> None:
    ids = frame.index.to_list()
    weights = [round(0.5 + (i % 7) / 10, 1) for i in ids]
    stored = _ok(
        _call(penv, "PUT", "/v1/privacy/weights/loyalty", "analyst", {"ids": ids, "weights": weights})
    )
    assert stored["name"] == "loyalty" and stored["rows"] == len(ids) and len(stored["sha256"]) == 64
    penv.node.ledger.refresh()
    entry = penv.node.ledger.entry(stored["ledger_seq"])
    assert entry.action == "privacy.weights_stored" and entry.actor == _actor(penv, "analyst")
    assert entry.details == {"name": "loyalty", "rows": len(ids), "sha256": stored["sha256"]}
    listed = _ok(_call(penv, "GET", "/v1/privacy/weights", "auditor"))["weights"]
    assert {"name": "loyalty", "rows": len(ids), "nonzero": len(ids)} in listed

    body = _ok(_submit(penv, {"sql": "SELECT DOT(balance, 'loyalty') AS d FROM customers"}), 201)
    assert body["status"] == "awaiting_approval"
    approved = _ok(_call(penv, "POST", f"/v1/queries/{body['id']}/approve", "custodian"))
    want = float((frame["balance"].fillna(0) * pd.Series(weights, index=ids)).sum())
    assert approved["released"]["groups"]["all"]["d"] == pytest.approx(want, rel=REL, abs=ROUNDED)

    few = [1.0 if i < 5 else 0.0 for i in range(len(ids))]  # would read four customers' balances
    problem = penv.problem(
        _call(penv, "PUT", "/v1/privacy/weights/spy", "analyst", {"ids": ids, "weights": few}),
        403,
        "disclosure-refused",
    )
    assert "non-zero for 5 customer(s)" in problem["detail"]
    problem = penv.problem(
        _submit(penv, {"sql": "SELECT DOT(balance, 'spy') FROM customers"}), 422, "invalid-query"
    )
    assert "no weight vector named 'spy'" in problem["detail"]
    for bad in ({"ids": [1, 1], "weights": [1.0, 2.0]}, {"ids": [1, 2], "weights": [1.0]}):
        penv.problem(_call(penv, "PUT", "/v1/privacy/weights/bad", "admin", bad), 422, "invalid-query")
    penv.problem(
        _call(penv, "PUT", "/v1/privacy/weights/Bad", "admin", {"ids": [1], "weights": [1.0]}),
        400,
        "invalid-parameter",
    )
    penv.problem(
        _call(penv, "PUT", "/v1/privacy/weights/loyalty", "custodian", {"ids": ids, "weights": weights}),
        403,
        "forbidden",
    )
