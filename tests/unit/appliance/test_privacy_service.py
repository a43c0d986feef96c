"""The privacy queries on a real node: keys, encrypted columns, the query life cycle, the ledger.

One node holds a few hundred demo customers with ``balance``, ``monthly_spend`` (with histogram
buckets) and the ``marketing_consent`` flag encrypted; every released value is compared with pandas on
the store's own plaintext (``customers_frame``), CKKS within 1e-6 relative. A second small node goes,
test after test, through the key and column life cycle (keygen, append, re-segmenting, rotation). Both
round released values to 6 decimals (``privacy.decimals``), so the comparisons measure the encryption,
not the rounding. Known bugs are strict xfails named after what they reproduce.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import appliance.privacy_service as privacy_service
from appliance.node import Node
from appliance.privacy import (
    BudgetExhausted,
    CiphertextInvalid,
    DisclosureRefused,
    KeyUnavailable,
    PublicContexts,
    QueryEngine,
    QueryInvalid,
    QueryUnsupported,
)
from appliance.settings import load_settings
from appliance.store.demo import load_demo
from appliance.store.errors import StoreError
from appliance.store.privacy import QueryRow, UnknownQuery

ALICE = "analyst:alice"
BOB = "analyst:bob"
CUSTODIAN = "custodian:carol"
ADMIN = "admin:test"
BUCKETS = (0.0, 500.0, 1000.0, 2000.0, 5000.0, 1e6)
REL = 1e-6


def _open_node(path: Path, customers: int, seed: int, **privacy: Any) -> Node:
    settings = load_settings(node={"data_dir": path / "node"}, privacy={"decimals": 6, **privacy})
    Node.init(settings)
    node = Node.open(settings)
    load_demo(node.store, customers, seed=seed)
    return node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """300 demo customers; keys; balance and the consent flag encrypted by region and segment,
    monthly_spend (histogram buckets, nulls) by segment."""
    node = _open_node(tmp_path_factory.mktemp("privacy"), 300, seed=11)
    node.privacy.keygen(actor=CUSTODIAN)
    node.privacy.encrypt("customers", "balance", actor=ADMIN)
    node.privacy.encrypt("customers", "monthly_spend", buckets=BUCKETS, segment_by=["segment"], actor=ADMIN)
    node.privacy.encrypt("customers", "marketing_consent", kind="flag", actor=ADMIN)
    yield node
    node.close()


@pytest.fixture(scope="module")
def frame(node: Node) -> pd.DataFrame:
    """The same customers in plaintext, as the store gives them (numbers parsed, the flag as 0/1)."""
    df = node.store.proactive.customers_frame(["balance", "monthly_spend", "marketing_consent", "segment"])
    df["balance"] = pd.to_numeric(df["balance"])
    df["monthly_spend"] = pd.to_numeric(df["monthly_spend"])
    df["consent"] = df["marketing_consent"].map({"true": 1, "false": 0})
    assert df["consent"].notna().all() and df["balance"].notna().all()
    assert df["monthly_spend"].isna().any()  # nulls: counted in none of the buckets
    return df.sort_index()


def _entries(node: Node, start: int) -> list[dict[str, Any]]:
    node.ledger.refresh()
    return [node.ledger.entry(i).as_dict() for i in range(start, node.ledger.size)]


def _raw(node: Node, start: int) -> bytes:
    node.ledger.refresh()
    return b"".join(node.ledger.entry(i).raw for i in range(start, node.ledger.size))


def _size(node: Node) -> int:
    node.ledger.refresh()
    return node.ledger.size


def _released(node: Node) -> int:
    return len(node.store.privacy.list_queries(status="released", limit=500))


def _values(row: QueryRow) -> dict[str, dict[str, Any]]:
    assert row.status == "released", row.error
    assert row.released is not None
    return dict(row.released["groups"])


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- keys -------------------------------------------------------------------------------------------------


def test_a_second_keygen_is_refused_and_changes_nothing(node: Node) -> None:
    before, start = node.privacy.key_info(), _size(node)
    with pytest.raises(KeyUnavailable, match="already holds privacy keys; rotate them"):
        node.privacy.keygen(actor=CUSTODIAN)
    assert node.privacy.key_info() == before
    assert len(before["keys"]) == 1 and before["keys"][0]["key_id"] == before["current"]
    assert _size(node) == start


def test_the_engine_never_holds_a_secret_key(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    real = privacy_service.QueryEngine

    def spy(public: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(public)
        return real(public, *args, **kwargs)

    monkeypatch.setattr(privacy_service, "QueryEngine", spy)
    row = node.privacy.submit(
        actor=ALICE, sql="SELECT SUM(balance) FROM customers WHERE marketing_consent = 1"
    )
    assert row.status == "released"
    (public,) = built
    assert type(public) is PublicContexts
    assert not public.is_private()
    assert not public.ckks.is_private() and not public.bfv.is_private()
    assert public.ckks.secret_key is None and public.bfv.secret_key is None
    assert not hasattr(public, "paillier_private")
    # The engine's key directory is a public-only copy of the ring: not one secret file in it.
    public_dir = node.settings.data_dir / "privacy" / "public"
    files = [p for p in public_dir.rglob("*") if p.is_file()]
    assert files and not [p for p in files if "secret" in p.name]
    secrets_ = list((node.settings.data_dir / "privacy" / "keys").rglob("secret.*"))
    assert len(secrets_) == 1  # the custodian's, beside it
    for p in files:
        assert secrets_[0].read_bytes() != p.read_bytes()


# --- aggregates against pandas ---------------------------------------------------------------------------


def test_sum_count_mean_variance_stddev_match_pandas(node: Node, frame: pd.DataFrame) -> None:
    row = node.privacy.submit(
        actor=ALICE,
        sql="SELECT SUM(balance) AS s, COUNT(*) AS n, AVG(balance) AS mean, VARIANCE(balance) AS var, "
        "STDDEV(balance) AS sd FROM customers",
    )
    (got,) = _values(row).values()
    b = frame["balance"]
    assert got["n"] == len(frame)
    assert got["s"] == pytest.approx(b.sum(), rel=REL)
    assert got["mean"] == pytest.approx(b.mean(), rel=REL)
    assert got["var"] == pytest.approx(b.var(ddof=1), rel=REL)
    assert got["sd"] == pytest.approx(b.std(ddof=1), rel=REL)
    assert row.released is not None and row.released["suppressed"] == []
    assert row.released["epsilon"] == 0 and row.released["mechanism"] is None


def test_group_by_matches_pandas_and_small_groups_are_suppressed_never_returned(
    node: Node, frame: pd.DataFrame
) -> None:
    start = _size(node)
    row = node.privacy.submit(
        actor=ALICE,
        sql="SELECT region, segment, SUM(balance) AS s, AVG(balance) AS m, COUNT(*) AS n FROM customers "
        "GROUP BY region, segment",
    )
    groups = _values(row)
    sizes = frame.groupby(["region", "segment"]).size()
    combos = itertools.product(sorted(frame["region"].unique()), sorted(frame["segment"].unique()))
    small = {f"region={r}&segment={s}" for r, s in combos if sizes.get((r, s), 0) < 10}
    assert small and len(groups) >= 3  # the data has both kinds
    assert row.released is not None
    suppressed = row.released["suppressed"]
    assert {s["group"] for s in suppressed} == small
    assert all(set(s) == {"group", "reason"} and "fewer than 10" in s["reason"] for s in suppressed)
    assert not small & set(groups)
    # CKKS error is absolute, ~1e-7 of the column's bound (keys.CKKSParameters): a group whose sum is a
    # few percent of the bound (2^20 here, from the largest balance) is off by ~2e-6 of itself, so small
    # groups are held to 2e-7 of the bound and the large ones to 1e-6 of their value.
    bound = next(c.bound for c in node.privacy.columns() if c.name == "balance")
    for (region, segment), part in frame.groupby(["region", "segment"]):
        label = f"region={region}&segment={segment}"
        if label in small:
            # Not in the row, not in the API's view of it, not in the ledger.
            hidden = [f"{part['balance'].sum():.6f}".rstrip("0"), f"{part['balance'].mean():.6f}".rstrip("0")]
            text = json.dumps(row.as_dict()) + _raw(node, start).decode()
            assert not [h for h in hidden if h in text], label
            continue
        assert groups[label]["n"] == len(part)
        total = part["balance"].sum()
        tolerance = max(REL * abs(total), 2e-7 * bound)
        assert groups[label]["s"] == pytest.approx(total, abs=tolerance)
        assert groups[label]["m"] == pytest.approx(part["balance"].mean(), abs=tolerance / len(part))


def test_histogram_and_a_nullable_column_per_segment_match_pandas(node: Node, frame: pd.DataFrame) -> None:
    row = node.privacy.submit(
        actor=ALICE,
        sql="SELECT HISTOGRAM(monthly_spend) AS h, COUNT(monthly_spend) AS n, AVG(monthly_spend) AS m, "
        "STDDEV(monthly_spend) AS sd FROM customers GROUP BY segment",
    )
    groups = _values(row)
    for segment, part in frame.groupby("segment"):
        got, values = groups[f"segment={segment}"], part["monthly_spend"].dropna()  # nulls count nowhere
        want = [int(((values >= lo) & (values < hi)).sum()) for lo, hi in itertools.pairwise(BUCKETS)]
        assert got["h"] == want, segment
        assert got["n"] == len(values)
        assert got["m"] == pytest.approx(values.mean(), rel=REL)
        assert got["sd"] == pytest.approx(values.std(ddof=1), rel=REL)


@pytest.mark.parametrize(
    ("where", "keep"),
    [
        ("marketing_consent = 1", lambda df: df["consent"] == 1),
        (
            "marketing_consent != 1 AND segment IN ('mass', 'affluent')",
            lambda df: (df["consent"] == 0) & df["segment"].isin(["mass", "affluent"]),
        ),
        (
            "region = 'CN' AND marketing_consent IN (1)",
            lambda df: (df["consent"] == 1) & (df["region"] == "CN"),
        ),
    ],
    ids=["flag=1", "flag!=1+visible-in", "visible+flag-in"],
)
def test_flag_predicates_match_pandas(node: Node, frame: pd.DataFrame, where: str, keep: Any) -> None:
    row = node.privacy.submit(
        actor=ALICE,
        sql=f"SELECT COUNT(*) AS n, SUM(balance) AS s, AVG(balance) AS m FROM customers WHERE {where} "
        "GROUP BY segment",
    )
    groups = _values(row)
    assert row.released is not None
    suppressed = {s["group"] for s in row.released["suppressed"]}
    selected = frame[keep(frame)]
    assert len(selected)
    for segment, part in selected.groupby("segment"):
        label = f"segment={segment}"
        if len(part) < 10:
            assert label in suppressed and label not in groups
            continue
        assert groups[label]["n"] == len(part)
        assert groups[label]["s"] == pytest.approx(part["balance"].sum(), rel=REL)
        assert groups[label]["m"] == pytest.approx(part["balance"].mean(), rel=REL)


def test_every_group_too_small_is_refused_and_the_query_row_says_so(node: Node, frame: pd.DataFrame) -> None:
    tiny = frame[(frame["segment"] == "private") & (frame["region"] != "CN")]
    assert len(tiny) and (tiny.groupby("region").size() < 10).all()
    start, released = _size(node), _released(node)
    with pytest.raises(DisclosureRefused, match="every group has fewer than 10 records"):
        node.privacy.submit(
            actor=ALICE,
            sql="SELECT SUM(balance) FROM customers WHERE segment = 'private' AND region != 'CN' "
            "GROUP BY region",
        )
    (row,) = node.store.privacy.list_queries(analyst=ALICE, limit=1)
    assert row.status == "refused" and row.released is None
    assert row.error is not None and "fewer than 10" in row.error
    assert _released(node) == released
    actions = [(e["action"], e["details"]) for e in _entries(node, start)]
    assert [a for a, _ in actions] == ["query.submitted", "query.computed", "query.refused"]
    assert actions[-1][1] == {"query": row.id, "reason": "DisclosureRefused"}
    raw = _raw(node, start).decode()
    assert not [r for r, p in tiny.groupby("region") if f"{p['balance'].sum():.2f}" in raw]


def test_count_star_alone_counts_the_rows(node: Node, frame: pd.DataFrame) -> None:
    row = node.privacy.submit(actor=ALICE, sql="SELECT COUNT(*) AS n FROM customers")
    assert _values(row) == {"all": {"n": len(frame)}}


# --- approval ---------------------------------------------------------------------------------------------


def test_score_and_dot_wait_for_approval_then_approve_releases(node: Node, frame: pd.DataFrame) -> None:
    start = _size(node)
    score = node.privacy.submit(actor=ALICE, sql="SELECT SCORE(0.5 * balance - 3) AS risk FROM customers")
    weights = np.linspace(-1.0, 2.0, len(frame)).round(3)  # one per row, in ascending row-id order
    dot = node.privacy.submit(
        actor=ALICE,
        query={
            "table": "customers",
            "select": [{"func": "dot", "column": "balance", "weights": weights.tolist(), "as": "d"}],
        },
    )
    for row in (score, dot):
        assert row.status == "awaiting_approval" and row.released is None and row.result_digest
    assert "query.released" not in [e["action"] for e in _entries(node, start)]

    released = node.privacy.approve(score.id, actor=CUSTODIAN)
    assert released.approved_by == CUSTODIAN
    assert _values(released)["all"]["risk"] == pytest.approx((0.5 * frame["balance"] - 3).mean(), rel=REL)
    dot = node.privacy.approve(dot.id, actor=CUSTODIAN)
    assert _values(dot)["all"]["d"] == pytest.approx(float(weights @ frame["balance"]), rel=REL)

    with pytest.raises(DisclosureRefused, match=f"query {score.id} is released, not awaiting approval"):
        node.privacy.approve(score.id, actor=CUSTODIAN)
    assert node.store.privacy.get_query(score.id) == released  # untouched by the refused approval
    actions = [e["action"] for e in _entries(node, start)]
    assert actions.count("query.approved") == 2 and actions.count("query.released") == 2


def test_a_tampered_stored_result_is_refused_on_approve(node: Node) -> None:
    row = node.privacy.submit(actor=ALICE, sql="SELECT SCORE(2 * balance) AS x FROM customers")
    assert row.status == "awaiting_approval"
    path = node.settings.data_dir / "privacy" / "results" / f"{row.id}.json"
    doc = json.loads(path.read_bytes())
    cell = doc["groups"][0]["cells"][0]
    cell["inputs"] = [[k, 1e9 if k == "bias" else v] for k, v in cell["inputs"]]  # a bias the plan never had
    path.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    start = _size(node)
    with pytest.raises(CiphertextInvalid, match=f"query {row.id} was altered"):
        node.privacy.approve(row.id, actor=CUSTODIAN)
    after = node.store.privacy.get_query(row.id)
    assert after.status == "failed" and after.released is None
    assert "query.released" not in [e["action"] for e in _entries(node, start)]


def test_a_tampered_result_is_recorded_in_the_ledger(node: Node) -> None:
    row = node.privacy.submit(actor=ALICE, sql="SELECT SCORE(3 * balance) AS x FROM customers")
    path = node.settings.data_dir / "privacy" / "results" / f"{row.id}.json"
    path.write_bytes(path.read_bytes().replace(b'"key_id"', b'"key_id" ', 1))
    start = _size(node)
    with pytest.raises(CiphertextInvalid):
        node.privacy.approve(row.id, actor=CUSTODIAN)
    assert node.store.privacy.get_query(row.id).status == "failed"
    actions = [e["action"] for e in _entries(node, start)]
    assert actions[0] == "query.approved" and "query.released" not in actions
    (outcome,) = [e for e in _entries(node, start) if e["action"] in ("query.failed", "query.refused")]
    assert outcome["details"] == {"query": row.id, "reason": "CiphertextInvalid"}


def test_a_custodian_who_cannot_open_the_keys_holds_the_query_until_fixed(node: Node) -> None:
    row = node.privacy.submit(actor=ALICE, sql="SELECT SCORE(5 * balance) AS x FROM customers")
    secret = node.settings.data_dir / "privacy" / "keys" / row.key_id / "secret.json"  # type: ignore[operator]
    start = _size(node)
    secret.chmod(0o644)
    try:
        with pytest.raises(KeyUnavailable, match="readable by others"):
            node.privacy.approve(row.id, actor=CUSTODIAN)
    finally:
        secret.chmod(0o600)
    held = node.store.privacy.get_query(row.id)
    assert held.status == "awaiting_approval" and held.released is None and "chmod 600" in (held.error or "")
    assert [(e["action"], e["details"]) for e in _entries(node, start)] == [
        ("query.approved", {"query": row.id}),
        ("query.held", {"query": row.id, "reason": "KeyUnavailable"}),
    ]
    assert node.privacy.approve(row.id, actor=CUSTODIAN).status == "released"


def test_an_unexpected_engine_failure_marks_the_query_failed(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: Any, plan: Any) -> Any:
        raise RuntimeError("the engine fell over")

    monkeypatch.setattr(QueryEngine, "compute", boom)
    start = _size(node)
    with pytest.raises(RuntimeError):
        node.privacy.submit(actor="analyst:carl", sql="SELECT SUM(balance) FROM customers")
    (row,) = node.store.privacy.list_queries(analyst="analyst:carl")
    assert (row.status, row.error, row.released) == ("failed", "RuntimeError", None)
    assert [(e["action"], e["details"]) for e in _entries(node, start)] == [
        ("query.submitted", {"query": row.id, "plan_sha256": row.plan_digest}),
        ("query.failed", {"query": row.id, "reason": "RuntimeError"}),
    ]


def test_two_approvals_at_once_release_once(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    row = node.privacy.submit(actor=ALICE, sql="SELECT SCORE(4 * balance) AS x FROM customers")
    both_checked = threading.Barrier(2, timeout=5)
    release = node.privacy._release

    def release_after_both_checked(*args: Any) -> QueryRow:
        # Holds each approval between its status check and its release until the other has checked too
        # (a fixed approve lets only one through: the barrier then times out and it goes on alone).
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        return release(*args)

    monkeypatch.setattr(node.privacy, "_release", release_after_both_checked)
    start = _size(node)
    outcomes: list[str] = []

    def approve() -> None:
        try:
            outcomes.append(node.privacy.approve(row.id, actor=CUSTODIAN).status)
        except DisclosureRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "released"]
    assert [e["action"] for e in _entries(node, start)].count("query.released") == 1


def test_an_analyst_cannot_read_another_analysts_query(node: Node) -> None:
    (mine,) = node.store.privacy.list_queries(analyst=ALICE, limit=1)
    assert node.privacy.get(mine.id, actor=ALICE, role="analyst").id == mine.id
    with pytest.raises(UnknownQuery, match=f"no privacy query {mine.id} of yours"):
        node.privacy.get(mine.id, actor=BOB, role="analyst")
    assert node.privacy.get(mine.id, actor=CUSTODIAN, role="custodian").analyst == ALICE
    with pytest.raises(UnknownQuery):
        node.privacy.get(10**9, actor=CUSTODIAN, role="custodian")


# --- differential privacy ---------------------------------------------------------------------------------


def test_noise_spends_the_budget_and_an_exhausted_budget_refuses_before_computing(
    node: Node, frame: pd.DataFrame
) -> None:
    analyst = "analyst:dp"
    node.privacy.grant(analyst, 1.0, 1e-6, actor=ADMIN)
    assert node.privacy.budget_of(analyst)["epsilon"] == {"limit": 1.0, "spent": 0.0, "left": 1.0}
    sql = "SELECT /*+ NOISE(laplace, 0.6) */ COUNT(*) AS n, SUM(balance) AS s FROM customers"
    row = node.privacy.submit(actor=analyst, sql=sql)
    assert row.released is not None
    assert (row.released["mechanism"], row.released["epsilon"]) == ("laplace", 0.6)
    # Laplace(2 / 0.6) on the count: off by more than 60 with probability e^-18.
    assert abs(_values(row)["all"]["n"] - len(frame)) < 60
    budget = node.privacy.budget_of(analyst)
    assert budget["epsilon"]["spent"] == pytest.approx(0.6) and budget["epsilon"]["left"] == pytest.approx(
        0.4
    )

    start, queries = _size(node), len(node.store.privacy.list_queries(analyst=analyst))
    results = set((node.settings.data_dir / "privacy" / "results").iterdir())
    with pytest.raises(BudgetExhausted, match=r"ε=0\.4, δ=1e-06 is left of ε=1, .*nothing was computed"):
        node.privacy.submit(actor=analyst, sql=sql)
    assert _size(node) == start  # not even query.submitted
    assert len(node.store.privacy.list_queries(analyst=analyst)) == queries
    assert set((node.settings.data_dir / "privacy" / "results").iterdir()) == results
    assert node.privacy.budget_of(analyst)["epsilon"]["spent"] == pytest.approx(0.6)
    # What is left still buys a smaller query; an exact query costs nothing.
    smaller = node.privacy.submit(actor=analyst, sql=sql.replace("0.6", "0.4"))
    assert smaller.status == "released"
    assert node.privacy.budget_of(analyst)["epsilon"]["left"] == pytest.approx(0.0, abs=1e-9)
    assert node.privacy.submit(actor=analyst, sql="SELECT COUNT(balance) FROM customers").status == "released"


def test_a_long_analyst_name_is_refused_not_cut(node: Node) -> None:
    """Regression: names were cut to 64 characters when charged but looked up in full (never charged)."""
    analyst = "analyst:" + "x" * 70
    with pytest.raises(StoreError, match="1 to 64 characters"):
        node.privacy.grant(analyst, 1.0, 1e-6, actor=ADMIN)
    sql = "SELECT /*+ NOISE(laplace, 0.6) */ COUNT(balance) FROM customers"
    with pytest.raises(StoreError, match="1 to 64 characters"):
        node.privacy.submit(actor=analyst, sql=sql)
    assert node.store.privacy.list_queries(analyst=analyst) == []


def test_noise_over_the_per_query_maximum_is_refused_before_anything_is_recorded(node: Node) -> None:
    start = _size(node)
    with pytest.raises(DisclosureRefused, match="one query may spend at most ε=1"):
        node.privacy.submit(actor=BOB, sql="SELECT /*+ NOISE(laplace, 2) */ COUNT(*) FROM customers")
    assert _size(node) == start
    assert node.store.privacy.list_queries(analyst=BOB) == []


# --- refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "error", "message", "recorded"),
    [
        ("SELECT SUM(nope) FROM customers", QueryInvalid, "customers.nope is not encrypted", False),
        ("SELECT SUM(full_name) FROM customers", QueryInvalid, "customers.full_name is not encrypted", False),
        ("SELECT COUNT(*) FROM orders", QueryInvalid, "table 'orders' is unknown", False),
        (
            "SELECT COUNT(*) FROM customers WHERE email = 'a@b.c'",
            QueryInvalid,
            "customers.email is not encrypted",
            False,
        ),
        (
            "SELECT COUNT(*) FROM customers WHERE balance = 1",
            QueryInvalid,
            "the server can filter only on visible attributes",
            True,
        ),
        (
            "SELECT SUM(balance) FROM customers GROUP BY plan",
            QueryInvalid,
            "not segmented by 'plan'",
            True,
        ),
        ("SELECT SUM(balance) FROM customers WHERE balance > 5", QueryUnsupported, "comparison >", False),
        ("SELECT SUM(balance) FROM customers ORDER BY 1", QueryUnsupported, "ORDER BY", False),
        (
            "SELECT SUM(c.balance) FROM customers c JOIN events e ON e.customer_id = c.id",
            QueryUnsupported,
            "JOIN",
            False,
        ),
        ("DELETE FROM customers", QueryUnsupported, "DELETE statements are not supported", False),
        ("SELECT SUM(balance) FROM customers; SELECT 1", QueryUnsupported, "multiple statements", False),
        ("SELECT FROM", QueryInvalid, "SQL syntax error", False),
    ],
    ids=[
        "unknown-column",
        "plain-field",
        "unknown-table",
        "predicate-on-hidden-field",
        "predicate-on-encrypted-value",
        "group-by-not-segmented",
        "comparison",
        "order-by",
        "join",
        "delete",
        "two-statements",
        "syntax",
    ],
)
def test_bad_queries_are_refused_and_release_nothing(
    node: Node, sql: str, error: type[Exception], message: str, recorded: bool
) -> None:
    start, released = _size(node), _released(node)
    before = node.store.privacy.list_queries(limit=1)
    with pytest.raises(error, match=re.escape(message)):
        node.privacy.submit(actor=BOB, sql=sql)
    assert _released(node) == released
    actions = [e["action"] for e in _entries(node, start)]
    after = node.store.privacy.list_queries(limit=1)
    if recorded:  # refused by the engine, after the query was recorded: refused, with the reason
        assert actions == ["query.submitted", "query.refused"]
        assert after[0].status == "refused" and after[0].released is None and after[0].error
    else:  # refused before anything was recorded
        assert actions == []
        assert after == before


def test_sql_and_json_together_or_neither_are_refused(node: Node) -> None:
    start = _size(node)
    for kwargs in ({}, {"sql": "SELECT COUNT(*) FROM customers", "query": {"table": "customers"}}):
        with pytest.raises(QueryInvalid, match="either as SQL"):
            node.privacy.submit(actor=BOB, **kwargs)
    with pytest.raises(QueryInvalid, match="grup_by"):
        node.privacy.submit(
            actor=BOB, query={"table": "customers", "select": [{"func": "count"}], "grup_by": []}
        )
    assert _size(node) == start


# --- the ledger -------------------------------------------------------------------------------------------


def test_the_ledger_records_each_step_with_digests_and_no_values(node: Node, frame: pd.DataFrame) -> None:
    start = _size(node)
    row = node.privacy.submit(actor=ALICE, sql="SELECT SUM(balance) AS s, AVG(balance) AS m FROM customers")
    entries = _entries(node, start)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("query.submitted", ALICE),
        ("query.computed", "system:privacy"),
        ("query.released", "system:privacy"),
    ]
    submitted, computed, released = (e["details"] for e in entries)
    assert submitted == {"query": row.id, "plan_sha256": row.plan_digest}
    assert row.plan_digest == _digest(row.plan)
    stored = (node.settings.data_dir / "privacy" / "results" / f"{row.id}.json").read_bytes()
    assert computed == {
        "query": row.id,
        "result_sha256": hashlib.sha256(stored).hexdigest(),
        "key_id": row.key_id,
    }
    assert computed["result_sha256"] == row.result_digest
    assert released["released_sha256"] == _digest(row.released)
    assert released["query"] == row.id and released["suppressed"] == 0
    raw = _raw(node, start).decode()
    for value in _values(row)["all"].values():
        assert str(value) not in raw and f"{value:.2f}" not in raw
    assert "balance" not in raw  # not even the SQL


def test_keys_and_columns_are_in_the_ledger_without_secrets_or_values(
    node: Node, frame: pd.DataFrame
) -> None:
    node.ledger.refresh()
    entries = [node.ledger.entry(i) for i in range(node.ledger.size)]
    keys = [e for e in entries if e.action == "privacy.keys_created"]
    (created,) = keys
    assert created.actor == CUSTODIAN and created.details["key_id"] == node.privacy.key_info()["current"]
    assert set(created.details) <= {"key_id", "created", "parameters"}
    secret = (
        node.settings.data_dir / "privacy" / "keys" / created.details["key_id"] / "secret.json"
    ).read_bytes()
    encrypted = {e.details["column"]: e for e in entries if e.action == "privacy.column_encrypted"}
    assert set(encrypted) == {"balance", "monthly_spend", "marketing_consent"}
    for e in encrypted.values():
        assert e.actor == ADMIN
        assert e.details["rows"] == len(frame) and e.details["key_id"] == created.details["key_id"]
        assert "bound" not in e.details
        assert secret not in e.raw
    raw = b"".join(e.raw for e in [created, *encrypted.values()]).decode()
    assert f"{frame['balance'].max():.2f}" not in raw and f"{frame['balance'].sum():.2f}" not in raw
    assert json.loads(secret)["ckks"] not in raw


# --- the life cycle of keys and columns ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A small node without keys, columns segmented by region only (fewer ciphertexts, quicker): the
    tests below run in order through its life."""
    node = _open_node(tmp_path_factory.mktemp("life"), 60, seed=5, segment_by=["region"])
    yield node
    node.close()


def _frame(node: Node) -> pd.DataFrame:
    df = node.store.proactive.customers_frame(["balance", "marketing_consent", "segment"])
    df["balance"] = pd.to_numeric(df["balance"])
    return df


def test_life_nothing_works_before_keygen(life: Node) -> None:
    start = _size(life)
    with pytest.raises(KeyUnavailable, match=r"no privacy keys yet; .* `appliance privacy keygen`"):
        life.privacy.encrypt("customers", "balance", actor=ADMIN)
    with pytest.raises(KeyUnavailable, match="no privacy keys yet"):
        life.privacy.key_info()
    assert life.privacy.columns() == []
    with pytest.raises(QueryInvalid, match=r"customers\.balance is not encrypted"):
        life.privacy.submit(actor=ALICE, sql="SELECT SUM(balance) FROM customers")
    assert _size(life) == start


def test_life_keygen_then_encrypt(life: Node) -> None:
    start = _size(life)
    keys = life.privacy.keygen(actor=CUSTODIAN)
    assert keys["ledger_seq"] == start
    with pytest.raises(KeyUnavailable, match="already holds privacy keys"):
        life.privacy.keygen(actor=CUSTODIAN)
    out = life.privacy.encrypt("customers", "balance", actor=ADMIN)
    assert out["appended"] is None and out["rows"] == 60 and out["key_id"] == keys["key_id"]
    assert out["visible_attributes"] == ["region"]
    flag = life.privacy.encrypt("customers", "marketing_consent", kind="flag", actor=ADMIN)
    assert flag["kind"] == "flag" and flag["bound"] == 1.0
    assert [c.name for c in life.privacy.columns()] == ["balance", "marketing_consent"]
    assert [e["action"] for e in _entries(life, start)] == ["privacy.keys_created"] + [
        "privacy.column_encrypted"
    ] * 2
    for bad, message in (
        ("full_name", "sealed with a field key"),
        ("segment", "only int, number and bool fields"),
        ("nope", "has no field 'nope'"),
        ("Balance", "not a column name"),
    ):
        with pytest.raises(QueryInvalid, match=message):
            life.privacy.encrypt("customers", bad, actor=ADMIN)
    with pytest.raises(QueryInvalid, match="cannot segment by tenure"):
        life.privacy.encrypt("customers", "balance", segment_by=["tenure"], actor=ADMIN)


def test_life_encrypting_again_appends_the_new_customers_rows(life: Node) -> None:
    (before,) = [c for c in life.privacy.columns() if c.name == "balance"]
    life.store.add_customers([_customer(f"NEW-{i}", i) for i in range(1, 13)])
    out = life.privacy.encrypt("customers", "balance", actor=ADMIN)
    assert out["appended"] == 12 and out["rows"] == 72 and out["key_id"] == before.key_id
    assert out["ciphertexts"] == before.ciphertexts  # the new CN rows fill free slots of CN's ciphertext
    row = life.privacy.submit(
        actor=ALICE, sql="SELECT COUNT(balance) AS n, SUM(balance) AS s FROM customers GROUP BY region"
    )
    df = _frame(life)
    cn = df[df["region"] == "CN"]["balance"]
    assert _values(row)["region=CN"]["n"] == len(cn)
    assert _values(row)["region=CN"]["s"] == pytest.approx(cn.sum(), rel=REL)
    # The flag was not appended yet: its rows no longer line up with balance's.
    sql = "SELECT SUM(balance) AS s FROM customers WHERE marketing_consent = 1"
    with pytest.raises(QueryInvalid, match="different row layouts"):
        life.privacy.submit(actor=ALICE, sql=sql)
    assert life.privacy.encrypt("customers", "marketing_consent", kind="flag", actor=ADMIN)["appended"] == 12
    want = df[df["marketing_consent"] == "true"]["balance"].sum()
    assert _values(life.privacy.submit(actor=ALICE, sql=sql))["all"]["s"] == pytest.approx(want, rel=REL)


def test_life_a_new_segmentation_encrypts_anew(life: Node) -> None:
    sql = "SELECT SUM(balance) AS s FROM customers WHERE region = 'CN' GROUP BY segment"
    with pytest.raises(QueryInvalid, match="not segmented by 'segment'"):
        life.privacy.submit(actor=ALICE, sql=sql)
    before = {c.name: c for c in life.privacy.columns()}["balance"]
    out = life.privacy.encrypt("customers", "balance", segment_by=["region", "segment"], actor=ADMIN)
    assert out["visible_attributes"] == ["region", "segment"] and out["rows"] == 72
    assert out["ciphertexts"] > before.ciphertexts  # a segment per (region, segment) now
    df = _frame(life)
    mass = df[(df["region"] == "CN") & (df["segment"] == "mass")]["balance"]
    assert len(mass) >= 10
    assert _values(life.privacy.submit(actor=ALICE, sql=sql))["segment=mass"]["s"] == pytest.approx(
        mass.sum(), rel=REL
    )
    back = life.privacy.encrypt("customers", "balance", actor=ADMIN)
    assert back["visible_attributes"] == ["region"] and back["ciphertexts"] == before.ciphertexts
    with pytest.raises(QueryInvalid, match="not segmented by 'segment'"):
        life.privacy.submit(actor=ALICE, sql=sql)


def test_life_rotation_keeps_old_columns_answering_until_reencrypted(life: Node) -> None:
    old = life.privacy.key_info()["current"]
    start = _size(life)
    rotated = life.privacy.rotate(actor=CUSTODIAN)
    new = rotated["key_id"]
    assert new != old and rotated["previous"] == old
    info = life.privacy.key_info()
    assert info["current"] == new and {k["key_id"] for k in info["keys"]} == {old, new}
    assert {c.key_id for c in life.privacy.columns()} == {old}
    public = life.settings.data_dir / "privacy" / "public"
    assert {p.name for p in public.iterdir() if p.is_dir()} == {old, new}
    assert not [p for p in public.rglob("*") if "secret" in p.name]

    df = _frame(life)
    sql = "SELECT SUM(balance) AS s FROM customers WHERE marketing_consent = 1"
    want = df[df["marketing_consent"] == "true"]["balance"].sum()
    row = life.privacy.submit(actor=ALICE, sql=sql)
    assert row.key_id == old
    assert _values(row)["all"]["s"] == pytest.approx(want, rel=REL)

    moved = life.privacy.encrypt("customers", "balance", actor=ADMIN)
    assert moved["key_id"] == new and moved["rows"] == 72
    with pytest.raises(QueryInvalid, match="different key ids"):
        life.privacy.submit(actor=ALICE, sql=sql)
    life.privacy.encrypt("customers", "marketing_consent", kind="flag", actor=ADMIN)
    assert {c.key_id for c in life.privacy.columns()} == {new}
    row = life.privacy.submit(actor=ALICE, sql=sql)
    assert row.key_id == new
    assert _values(row)["all"]["s"] == pytest.approx(want, rel=REL)
    query = ["query.submitted", "query.computed", "query.released"]
    # The mixed-key query was refused before it was recorded.
    assert [e["action"] for e in _entries(life, start)] == [
        "privacy.keys_rotated",
        *query,
        "privacy.column_encrypted",
        "privacy.column_encrypted",
        *query,
    ]


def test_life_encrypting_with_another_bound_applies_it(life: Node) -> None:
    with pytest.raises(QueryInvalid, match="bound must be a positive finite number"):
        life.privacy.encrypt("customers", "balance", bound=-1.0, actor=ADMIN)
    out = life.privacy.encrypt("customers", "balance", bound=2.0**30, actor=ADMIN)
    assert out["bound"] == 2.0**30


def test_life_encrypting_anew_reports_no_append(life: Node) -> None:
    out = life.privacy.encrypt("customers", "balance", segment_by=["region", "segment"], actor=ADMIN)
    assert out["visible_attributes"] == ["region", "segment"]
    assert out["appended"] is None


def test_life_new_rows_with_nulls_can_be_encrypted(life: Node) -> None:
    # Last in the life: leaves customers without a consent flag behind.
    life.store.add_customers([{**_customer(f"NULL-{i}", i), "marketing_consent": None} for i in range(1, 4)])
    out = life.privacy.encrypt("customers", "marketing_consent", kind="flag", actor=ADMIN)
    assert out["rows"] == 75


def _customer(external_id: str, i: int) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "region": "CN",
        "full_name": f"新客户{i}",
        "segment": "mass",
        "balance": 10.5 * i,
        "marketing_consent": i % 2 == 0,
    }
