"""The engine and the custodian against pandas on the same plaintext: every aggregate, GROUP BY, visible
and flag predicates, empty groups, nulls and negatives (CKKS within 1e-6 relative, BFV and Paillier
exact); the refusals (overflow, depth, what the server may not see) and the integrity checks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import appliance.privacy.engine as engine_module
from appliance.privacy import (
    Aggregate,
    CiphertextInvalid,
    Custodian,
    EncryptedResult,
    EncryptedTerm,
    HEParameters,
    KeyRing,
    KeyUnavailable,
    Lookup,
    Predicate,
    QueryEngine,
    QueryInvalid,
    QueryPlan,
    QueryUnsupported,
    RawResult,
    ResultUnsafe,
    encrypt_column,
    encrypt_paillier_column,
)

A = Aggregate
N = 3000
REGIONS = ["CN-GD", "EU", "US"]
BUCKETS = [18.0, 30.0, 45.0, 60.0, 90.0]
TEST_PARAMS = HEParameters(paillier_bits=1024)  # CKKS/BFV at production size; a small Paillier modulus


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261124)
    df = pd.DataFrame(
        {
            "id": rng.permutation(np.arange(1, 20_000))[:N].astype(np.int64),
            "region": rng.choice(REGIONS, N),
            "tier": rng.integers(1, 4, N),
            "balance": rng.normal(200, 150, N).round(2),
            "amount": rng.integers(-500, 501, N).astype(float),
            "complaint": (rng.random(N) < 0.3).astype(float),
            "churned": (rng.random(N) < 0.4).astype(float),
            "age": rng.integers(18, 95, N).astype(float),
        }
    )
    df.loc[rng.random(N) < 0.1, "balance"] = np.nan
    df.loc[rng.random(N) < 0.05, "amount"] = np.nan
    df.loc[rng.random(N) < 0.1, "churned"] = np.nan
    df.loc[rng.random(N) < 0.05, "age"] = np.nan
    return df


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ring = KeyRing.generate(tmp_path_factory.mktemp("ring"), None, TEST_PARAMS)
    public, secret = ring.public(), ring.secret()
    df = frame()
    ids = df["id"].to_numpy()
    vis = {"region": df["region"].to_numpy(), "tier": df["tier"].to_numpy()}
    cols = {
        "balance": encrypt_column(public, "balance", df["balance"].to_numpy(), ids, vis, bound=2000.0),
        "amount": encrypt_column(public, "amount", df["amount"].to_numpy(), ids, vis, scheme="bfv"),
        "complaint": encrypt_column(public, "complaint", df["complaint"].to_numpy(), ids, vis, kind="flag"),
        "complaint_b": encrypt_column(
            public, "complaint_b", df["complaint"].to_numpy(), ids, vis, scheme="bfv", kind="flag"
        ),
        "churned": encrypt_column(public, "churned", df["churned"].to_numpy(), ids, vis, kind="flag"),
        "age": encrypt_column(public, "age", df["age"].to_numpy(), ids, vis, buckets=BUCKETS),
    }
    looked = df.iloc[:12]
    p_values = looked["balance"].to_numpy()
    cols["balance_p"] = encrypt_paillier_column(public, "balance_p", p_values, looked["id"].to_numpy())
    cols["amount_p"] = encrypt_paillier_column(
        public, "amount_p", np.array([5, -7, 0, 2**40]), looked["id"].to_numpy()[:4]
    )
    weights = np.random.default_rng(7).normal(0, 2, N)  # ascending row-id order
    engine = QueryEngine(
        public,
        cols,
        ["region", "tier"],
        table="customers",
        weights={"risk": weights},
        domains={"region": ["OC"]},
    )
    yield {
        "ring": ring,
        "public": public,
        "secret": secret,
        "df": df,
        "engine": engine,
        "custodian": Custodian(secret),
        "weights": weights,
        "cols": cols,
    }


def run(w: dict[str, Any], plan: QueryPlan, engine: QueryEngine | None = None) -> RawResult:
    """Compute, send through bytes (as the node stores and forwards it), decrypt."""
    result = (engine or w["engine"]).compute(plan)
    return w["custodian"].decrypt(EncryptedResult.from_bytes(result.to_bytes()))


def close(got: Any, want: Any, exact: bool = False) -> None:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        assert got is None
        return
    if exact:
        assert got == want
        assert isinstance(got, int) or float(got).is_integer()
    else:
        assert got is not None
        assert abs(got - want) <= 1e-6 * abs(want), (got, want)


def plan(*aggs: Aggregate, where: tuple[Predicate, ...] = (), group_by: tuple[str, ...] = ()) -> QueryPlan:
    return QueryPlan("customers", tuple(aggs), where, group_by)


# --- every aggregate against pandas ----------------------------------------------------------------


def test_sum_mean_count_by_region_with_nulls_negatives_and_an_empty_group(world: dict[str, Any]) -> None:
    df = world["df"]
    assert (df["balance"] < 0).any() and df["balance"].isna().any()
    raw = run(
        world,
        plan(
            A("sum", "balance"), A("mean", "balance"), A("count", "balance"), A("count"), group_by=("region",)
        ),
    )
    values, sizes = raw.values(), raw.sizes()
    assert list(values) == ["region=CN-GD", "region=EU", "region=OC", "region=US"]
    for region, g in df.groupby("region"):
        v = values[f"region={region}"]
        close(v["sum(balance)"], g["balance"].sum())
        close(v["mean(balance)"], g["balance"].mean())
        assert v["count(balance)"] == g["balance"].count()
        assert v["count(*)"] == len(g) == sizes[f"region={region}"]
    assert sizes["region=OC"] == 0
    assert values["region=OC"] == {
        "sum(balance)": None,
        "mean(balance)": None,
        "count(balance)": 0,
        "count(*)": 0,
    }


def test_variance_and_stddev_by_two_visible_attributes(world: dict[str, Any]) -> None:
    df = world["df"]
    raw = run(
        world, plan(A("variance", "balance"), A("stddev", "balance", alias="sd"), group_by=("region", "tier"))
    )
    values = raw.values()
    assert len(values) == 4 * 3  # OC has no rows in any tier: reported, size 0
    for (region, tier), g in df.groupby(["region", "tier"]):
        v = values[f"region={region}&tier={tier}"]
        close(v["variance(balance)"], g["balance"].var())
        close(v["sd"], g["balance"].std())
    assert all(raw.sizes()[f"region=OC&tier={t}"] == 0 for t in (1, 2, 3))


def test_bfv_aggregates_are_exact(world: dict[str, Any]) -> None:
    df = world["df"]
    raw = run(
        world,
        plan(
            A("sum", "amount"),
            A("count", "amount"),
            A("mean", "amount"),
            A("variance", "amount"),
            group_by=("region",),
        ),
    )
    for region, g in df.groupby("region"):
        v = raw.values()[f"region={region}"]
        assert isinstance(v["sum(amount)"], int)
        close(v["sum(amount)"], int(g["amount"].sum()), exact=True)
        assert v["count(amount)"] == g["amount"].count()
        # the sums are exact; mean and variance are one float division of exact integers
        assert v["mean(amount)"] == pytest.approx(g["amount"].mean(), rel=1e-12)
        assert v["variance(amount)"] == pytest.approx(g["amount"].var(), rel=1e-12)


@pytest.mark.parametrize(
    ("pred", "mask"),
    [
        (Predicate("region", "=", ("EU",)), lambda d: d["region"] == "EU"),
        (Predicate("region", "!=", ("EU",)), lambda d: d["region"] != "EU"),
        (Predicate("tier", "in", (1, 3)), lambda d: d["tier"].isin([1, 3])),
        (Predicate("region", "not in", ("EU", "US")), lambda d: ~d["region"].isin(["EU", "US"])),
    ],
    ids=["eq", "ne", "in", "not-in"],
)
def test_visible_predicates_pick_segments(world: dict[str, Any], pred: Predicate, mask: Any) -> None:
    sub = world["df"][mask(world["df"])]
    raw = run(world, plan(A("sum", "balance"), A("sum", "amount"), A("count"), where=(pred,)))
    v = raw.values()["all"]
    close(v["sum(balance)"], sub["balance"].sum())
    close(v["sum(amount)"], int(sub["amount"].sum()), exact=True)
    assert v["count(*)"] == len(sub) == raw.sizes()["all"]


@pytest.mark.parametrize(
    ("where", "mask"),
    [
        ((Predicate("complaint", "=", (1,)),), lambda d: d["complaint"] == 1),
        ((Predicate("complaint", "=", (0,)),), lambda d: d["complaint"] == 0),
        ((Predicate("churned", "!=", (1,)),), lambda d: d["churned"] == 0),  # SQL: a null is neither
        ((Predicate("churned", "in", (0, 1)),), lambda d: d["churned"].notna()),
        (
            (
                Predicate("complaint", "=", (1,)),
                Predicate("churned", "=", (0,)),
                Predicate("region", "=", ("US",)),
            ),
            lambda d: (d["complaint"] == 1) & (d["churned"] == 0) & (d["region"] == "US"),
        ),
    ],
    ids=["flag=1", "flag=0", "nullable!=1", "nullable-in-both", "two-flags-and-visible"],
)
def test_flag_predicates_multiply_by_the_flag(
    world: dict[str, Any], where: tuple[Predicate, ...], mask: Any
) -> None:
    df = world["df"]
    raw = run(
        world, plan(A("sum", "balance"), A("mean", "balance"), A("count"), where=where, group_by=("tier",))
    )
    for tier, g in df[mask(df)].groupby("tier"):
        v = raw.values()[f"tier={tier}"]
        close(v["sum(balance)"], g["balance"].sum())
        close(v["mean(balance)"], g["balance"].mean())
        assert v["count(*)"] == len(g) == raw.sizes()[f"tier={tier}"]


def test_flag_filtered_variance_ckks_and_bfv(world: dict[str, Any]) -> None:
    df = world["df"]
    sub = df[df["complaint"] == 1]
    raw = run(
        world,
        plan(A("variance", "balance"), A("count", "balance"), where=(Predicate("complaint", "=", (1,)),)),
    )
    close(raw.values()["all"]["variance(balance)"], sub["balance"].var())
    assert raw.values()["all"]["count(balance)"] == sub["balance"].count()
    raw = run(
        world, plan(A("variance", "amount"), A("sum", "amount"), where=(Predicate("complaint_b", "=", (1,)),))
    )
    close(raw.values()["all"]["sum(amount)"], int(sub["amount"].sum()), exact=True)
    assert raw.values()["all"]["variance(amount)"] == pytest.approx(sub["amount"].var(), rel=1e-12)


def test_count_where_bfv_flag_is_exact(world: dict[str, Any]) -> None:
    df = world["df"]
    raw = run(world, plan(A("count"), A("sum", "complaint_b"), where=(Predicate("complaint_b", "=", (0,)),)))
    assert raw.values()["all"] == {"count(*)": int((df["complaint"] == 0).sum()), "sum(complaint_b)": 0}


def test_histogram_is_a_sum_of_indicators(world: dict[str, Any]) -> None:
    df = world["df"]
    raw = run(
        world, plan(A("histogram", "age"), where=(Predicate("complaint", "=", (1,)),), group_by=("region",))
    )
    for region, g in df[df["complaint"] == 1].groupby("region"):
        want = pd.cut(g["age"], BUCKETS, right=False).value_counts(sort=False).tolist()
        group = next(gr for gr in raw.groups if gr.key == (region,))
        assert list(group.values["histogram(age)"]) == want
        flat = raw.values()[f"region={region}"]
        assert flat["histogram(age)[18,30)"] == want[0]
        assert flat["histogram(age)[60,90)"] == want[3]
    assert (df["age"] >= 90).any()  # values outside every bucket count in none


def test_dot_with_plaintext_weights(world: dict[str, Any]) -> None:
    df = world["df"]
    w = world["weights"]
    aligned = pd.Series(w, index=np.sort(df["id"].to_numpy()))  # weights are in ascending row-id order
    contrib = df["balance"].fillna(0).to_numpy() * aligned.loc[df["id"]].to_numpy()
    df = df.assign(contrib=contrib)
    raw = run(world, plan(A("dot", "balance", weights_ref="risk"), group_by=("region",)))
    for region, g in df.groupby("region"):
        close(raw.values()[f"region={region}"]["dot(balance)"], g["contrib"].sum())
    # inline weights, and a (row ids, weights) pair aligned by id in any order
    raw = run(
        world,
        plan(
            A("dot", "balance", weights=tuple(w.tolist()), alias="d"),
            where=(Predicate("complaint", "=", (1,)),),
        ),
    )
    close(raw.values()["all"]["d"], df.loc[df["complaint"] == 1, "contrib"].sum())
    order = np.random.default_rng(3).permutation(N)
    ids_sorted = np.sort(df["id"].to_numpy())
    pair_engine = QueryEngine(
        world["public"], world["cols"], ["region", "tier"], weights={"p": (ids_sorted[order], w[order])}
    )
    raw = run(world, plan(A("dot", "balance", weights_ref="p")), engine=pair_engine)
    close(raw.values()["all"]["dot(balance)"], df["contrib"].sum())
    with pytest.raises(QueryInvalid, match="integer weights"):
        pair_engine.compute(plan(A("dot", "amount", weights_ref="p")))
    with pytest.raises(QueryInvalid, match="not the table's 3,000 row ids"):
        QueryEngine(
            world["public"], world["cols"], ["region", "tier"], weights={"p": (ids_sorted[1:], w[1:])}
        ).compute(plan(A("dot", "balance", weights_ref="p")))


def test_dot_on_bfv_with_integer_weights_is_exact(world: dict[str, Any]) -> None:
    df = world["df"]
    w = np.random.default_rng(11).integers(-3, 4, N).astype(float)
    aligned = pd.Series(w, index=np.sort(df["id"].to_numpy())).loc[df["id"]].to_numpy()
    raw = run(world, plan(A("dot", "amount", weights=tuple(w.tolist()))))
    assert raw.values()["all"]["dot(amount)"] == int(np.nansum(df["amount"].to_numpy() * aligned))


def test_score_linear_model_reduced_by_sum_and_mean(world: dict[str, Any]) -> None:
    df = world["df"]
    coefs = (("balance", 0.003), ("complaint", -2.0), ("age", 0.05))
    score = 1.5 + sum(c * df[name].fillna(0) for name, c in coefs)  # a null contributes 0
    df = df.assign(score=score)
    raw = run(
        world,
        plan(
            A("score", coefficients=coefs, bias=1.5, reduce="mean", alias="risk"),
            A("score", coefficients=coefs, bias=1.5, reduce="sum", alias="risk_sum"),
            group_by=("region",),
        ),
    )
    for region, g in df.groupby("region"):
        v = raw.values()[f"region={region}"]
        close(v["risk"], g["score"].mean())
        close(v["risk_sum"], g["score"].sum())
    raw = run(
        world,
        plan(A("score", coefficients=coefs, bias=1.5, alias="s"), where=(Predicate("churned", "=", (1,)),)),
    )
    close(raw.values()["all"]["s"], df.loc[df["churned"] == 1, "score"].mean())


def test_paillier_lookup_is_exact_and_hides_nulls(world: dict[str, Any]) -> None:
    df = world["df"].iloc[:12]
    ids = tuple(int(i) for i in df["id"])
    raw = run(world, QueryPlan("customers", lookup=Lookup("balance_p", ids)))
    assert raw.lookup_column == "balance_p"
    assert raw.records is not None
    for rid, v in zip(ids, df["balance"], strict=True):
        if math.isnan(v):
            assert raw.records[rid] is None
        else:
            assert raw.records[rid] == v  # the exact float
    raw = run(world, QueryPlan("customers", lookup=Lookup("amount_p", ids[:4])))
    assert raw.records == dict(zip(ids[:4], [5, -7, 0, 2**40], strict=True))
    with pytest.raises(QueryInvalid, match="no record"):
        world["engine"].compute(QueryPlan("customers", lookup=Lookup("balance_p", (999_999,))))


def test_a_group_emptied_by_contradicting_flag_predicates_has_size_zero(world: dict[str, Any]) -> None:
    raw = run(
        world,
        plan(
            A("sum", "balance"),
            A("count"),
            where=(Predicate("churned", "=", (1,)), Predicate("churned", "=", (0,))),
            group_by=("region",),
        ),
    )
    assert set(raw.sizes().values()) == {0}
    assert all(v == {"sum(balance)": None, "count(*)": 0} for v in raw.values().values())


def test_incremental_append_matches_pandas(world: dict[str, Any]) -> None:
    df = world["df"]
    public = world["public"]
    first, rest = df.iloc[:2000], df.iloc[2000:].copy()
    rest.loc[rest.index[:40], "region"] = "AF"  # a new segment
    full = pd.concat([first, rest])

    def vis(d: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"region": d["region"].to_numpy(), "tier": d["tier"].to_numpy()}

    bal = encrypt_column(
        public, "balance", first["balance"].to_numpy(), first["id"].to_numpy(), vis(first), bound=2000.0
    )
    amt = encrypt_column(
        public, "amount", first["amount"].to_numpy(), first["id"].to_numpy(), vis(first), scheme="bfv"
    )
    bal = bal.append(public, rest["balance"].to_numpy(), rest["id"].to_numpy(), vis(rest))
    amt = amt.append(public, rest["amount"].to_numpy(), rest["id"].to_numpy(), vis(rest))
    engine = QueryEngine(public, {"balance": bal, "amount": amt}, ["region", "tier"])
    raw = run(
        world, plan(A("mean", "balance"), A("sum", "amount"), A("count"), group_by=("region",)), engine=engine
    )
    for region, g in full.groupby("region"):
        v = raw.values()[f"region={region}"]
        close(v["mean(balance)"], g["balance"].mean())
        close(v["sum(amount)"], int(g["amount"].sum()), exact=True)
        assert v["count(*)"] == len(g)


# --- how it is computed ----------------------------------------------------------------------------


def test_one_rotation_sum_per_encrypted_output_and_group(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = engine_module._rotation_sum

    def counting(ctx: Any, ct: Any) -> None:
        calls.append(1)
        real(ctx, ct)

    monkeypatch.setattr(engine_module, "_rotation_sum", counting)
    # per region: sum, sum of squares and count of balance (shared by the four outputs): 3 rotation-sums
    run(
        world,
        plan(
            A("sum", "balance"),
            A("mean", "balance"),
            A("variance", "balance"),
            A("stddev", "balance"),
            group_by=("region",),
        ),
    )
    assert len(calls) == 3 * 3  # three regions with rows; the empty one computes nothing


def test_result_round_trips_and_carries_digests(world: dict[str, Any]) -> None:
    result = world["engine"].compute(plan(A("mean", "balance"), group_by=("region",)))
    again = EncryptedResult.from_bytes(result.to_bytes())
    assert again == result and again.digest == result.digest
    term = result.groups[0].terms[0][1]
    assert term.scheme == "ckks" and len(term.digest) == 64
    assert result.key_id == world["public"].key_id and len(result.plan_digest) == 64


# --- refusals ----------------------------------------------------------------------------------------


def test_bfv_overflow_is_refused_before_computing(world: dict[str, Any]) -> None:
    df = world["df"]
    public = world["public"]
    big = encrypt_column(
        public, "big", df["amount"].to_numpy() * 100, df["id"].to_numpy(), {}, scheme="bfv", bound=1e5
    )
    engine = QueryEngine(public, {"big": big}, [])
    raw = run(world, plan(A("sum", "big")), engine=engine)  # 3,000 x 1e5 fits
    assert raw.values()["all"]["sum(big)"] == int(df["amount"].sum() * 100)
    with pytest.raises(ResultUnsafe, match=r"sumsq:big.*plaintext modulus"):
        engine.compute(plan(A("variance", "big")))  # 3,000 x 1e10 does not
    with pytest.raises(QueryInvalid, match="exceeds what BFV represents"):
        encrypt_column(public, "huge", np.array([1.0]), np.array([1]), {}, scheme="bfv", bound=1e15)
    with pytest.raises(QueryInvalid, match="exceeds the declared bound"):
        encrypt_column(public, "b", np.array([1.0, 2e6]), np.array([1, 2]), {}, scheme="bfv", bound=1e6)


def test_depth_beyond_the_parameters_is_refused(world: dict[str, Any]) -> None:
    two_flags = (Predicate("complaint", "=", (1,)), Predicate("churned", "=", (1,)))
    with pytest.raises(ResultUnsafe, match="multiplicative depth 3"):
        world["engine"].compute(plan(A("variance", "balance"), where=two_flags))
    run(world, plan(A("sum", "balance"), where=two_flags))  # depth 2 is fine


def test_ckks_headroom_is_refused_for_a_huge_declared_bound(world: dict[str, Any]) -> None:
    df = world["df"]
    col = encrypt_column(
        world["public"], "wide", df["balance"].to_numpy(), df["id"].to_numpy(), {}, bound=1e30
    )
    engine = QueryEngine(world["public"], {"wide": col}, [])
    close(run(world, plan(A("sum", "wide")), engine=engine).values()["all"]["sum(wide)"], df["balance"].sum())
    with pytest.raises(ResultUnsafe, match="bits of CKKS modulus"):
        engine.compute(plan(A("variance", "wide")))


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (
            plan(A("sum", "balance"), where=(Predicate("balance", "=", (1,)),)),
            QueryInvalid,
            r"visible attributes \(region, tier\) and encrypted 0/1 flags "
            r"\(churned, complaint, complaint_b\); 'balance' is an encrypted value",
        ),
        (
            plan(A("sum", "balance"), where=(Predicate("email", "=", ("x",)),)),
            QueryInvalid,
            "'email' is neither",
        ),
        (plan(A("sum", "salary")), QueryInvalid, "unknown column 'salary'"),
        (plan(A("sum", "balance"), group_by=("age",)), QueryInvalid, "groups only by visible attributes"),
        (plan(A("sum", "balance_p")), QueryUnsupported, "Paillier column"),
        (QueryPlan("customers", lookup=Lookup("balance", (1,))), QueryUnsupported, "Paillier columns"),
        (
            plan(A("sum", "balance"), where=(Predicate("tier", "=", ("gold",)),)),
            QueryInvalid,
            "holds int values",
        ),
        (plan(A("sum", "balance"), where=(Predicate("complaint", "=", (2,)),)), QueryInvalid, "takes 0 or 1"),
        (plan(A("sum", "balance"), A("sum", "balance")), QueryInvalid, "give one of them an alias"),
        (QueryPlan("orders", (A("count"),)), QueryInvalid, "unknown table 'orders'"),
        (plan(A("histogram", "balance")), QueryInvalid, "no histogram buckets"),
        (plan(A("dot", "balance", weights_ref="nope")), QueryInvalid, "no weight vector named 'nope'"),
        (plan(A("dot", "balance", weights=(1.0, 2.0))), QueryInvalid, "2 weights for a table of 3,000 rows"),
        (
            plan(A("sum", "amount"), where=(Predicate("complaint", "=", (1,)),)),
            QueryInvalid,
            "encrypt the flag under bfv",
        ),
        (plan(A("mean")), QueryInvalid, "MEAN needs a column"),
        (plan(), QueryInvalid, "selects nothing"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_invalid_plans_are_refused_with_the_reason(
    world: dict[str, Any], bad: QueryPlan, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        world["engine"].compute(bad)


def test_columns_whose_slots_do_not_line_up_are_not_combined(world: dict[str, Any]) -> None:
    df = world["df"]
    public = world["public"]
    part = df.iloc[:100]
    other = encrypt_column(
        public, "flag2", part["complaint"].to_numpy(), part["id"].to_numpy(), {}, kind="flag"
    )
    bal = encrypt_column(public, "balance", df["balance"].to_numpy(), df["id"].to_numpy(), {})
    engine = QueryEngine(public, {"balance": bal, "flag2": other}, [])
    with pytest.raises(QueryInvalid, match="different row layouts"):
        engine.compute(plan(A("sum", "balance"), where=(Predicate("flag2", "=", (1,)),)))


def test_engine_takes_public_contexts_of_the_columns_key_only(world: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailable, match="public contexts only"):
        QueryEngine(world["secret"], world["cols"], ["region", "tier"])  # type: ignore[arg-type]
    with pytest.raises(KeyUnavailable, match="public contexts only"):
        QueryEngine(dataclasses.replace(world["public"], ckks=world["secret"].ckks), {}, [])
    other = KeyRing.generate(tmp_path / "other", None, TEST_PARAMS)
    with pytest.raises(KeyUnavailable, match="under key id"):
        QueryEngine(other.public(), world["cols"], ["region", "tier"])
    with pytest.raises(QueryInvalid, match="not visible attributes"):
        QueryEngine(world["public"], world["cols"], ["region"])
    result = world["engine"].compute(plan(A("count")))
    with pytest.raises(KeyUnavailable, match="open that key id"):
        Custodian(other.secret()).decrypt(result)
    with pytest.raises(KeyUnavailable, match="secret contexts"):
        Custodian(world["public"])  # type: ignore[arg-type]


# --- integrity ----------------------------------------------------------------------------------------


def _replace_term(result: EncryptedResult, term: EncryptedTerm) -> EncryptedResult:
    g = result.groups[0]
    tid = g.terms[0][0]
    group = type(g)(g.key, g.size, ((tid, term), *g.terms[1:]), g.cells)
    return EncryptedResult(
        result.key_id,
        result.table,
        result.plan_digest,
        result.group_by,
        result.outputs,
        (group, *result.groups[1:]),
    )


def test_tampered_results_fail_with_one_opaque_error(world: dict[str, Any]) -> None:
    result = world["engine"].compute(plan(A("sum", "balance"), group_by=("region",)))
    custodian = world["custodian"]
    term = result.groups[0].terms[0][1]
    flipped = bytearray(term.data)
    flipped[len(flipped) // 2] ^= 0x01
    with pytest.raises(CiphertextInvalid, match="integrity check") as bit_flip:
        custodian.decrypt(_replace_term(result, EncryptedTerm(term.scheme, bytes(flipped), term.digest)))
    # an altered ciphertext with a recomputed digest: SEAL refuses it, or it decrypts to garbage
    with pytest.raises(CiphertextInvalid) as rehashed:
        custodian.decrypt(
            _replace_term(result, EncryptedTerm.of(term.scheme, term.data[: len(term.data) // 2]))
        )
    assert str(bit_flip.value) == str(rehashed.value)
    # a column's own ciphertext (never rotation-summed) passed off as a result: its slots differ
    raw_ct = world["public"].ckks.to_bytes([world["cols"]["balance"].segments[0].values[0]])[0]
    with pytest.raises(CiphertextInvalid, match="integrity check"):
        custodian.decrypt(_replace_term(result, EncryptedTerm.of("ckks", raw_ct)))
    with pytest.raises(CiphertextInvalid, match="cannot be parsed"):
        EncryptedResult.from_bytes(result.to_bytes()[:-10])
    with pytest.raises(CiphertextInvalid, match="integrity check"):
        lookup = world["engine"].compute(
            QueryPlan("customers", lookup=Lookup("amount_p", (int(world["df"]["id"].iloc[0]),)))
        )
        rec = lookup.records[0]
        bad = type(rec)(
            rec.row_id,
            EncryptedTerm(rec.term.scheme, rec.term.data.replace(b'"c":"', b'"c":"1'), rec.term.digest),
        )
        custodian.decrypt(
            EncryptedResult(
                lookup.key_id, lookup.table, lookup.plan_digest, (), lookup.outputs, (), "amount_p", (bad,)
            )
        )
