"""Properties of the encrypted queries on random small tables: per-group SUM/MEAN/COUNT/VARIANCE equal
pandas, BFV exactly, with random nulls and flag predicates; appending in two steps equals encrypting at
once; every result goes through its byte form.

CKKS's error is absolute, not relative: ~4e-8 x the column's bound (rms) from the encryption noise of
the ciphertexts summed, plus ~2e-8 x |x| per row a flag multiplies. These tables are adversarial for a
relative bound (zero-mean values, groups of one row, sums that cancel), so the CKKS property is
|error| <= 1e-6 |result| + 1e-7 sum|x| + 5e-7 bound (the last term ~10 standard deviations); the unit
tests check the 1e-6 relative promise on realistic data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.privacy import (
    Aggregate,
    Custodian,
    EncryptedResult,
    HEParameters,
    KeyRing,
    Predicate,
    PublicContexts,
    QueryEngine,
    QueryPlan,
    SecretContexts,
    encrypt_column,
)

A = Aggregate
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[PublicContexts, Custodian, SecretContexts]:
    ring = KeyRing.generate(tmp_path_factory.mktemp("ring"), None, HEParameters(paillier_bits=512))
    return ring.public(), Custodian(ring.secret()), ring.secret()


@st.composite
def tables(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(1, 40))
    real = st.one_of(st.just(math.nan), st.floats(-1000, 1000, allow_nan=False).map(lambda v: round(v, 3)))
    return pd.DataFrame(
        {
            "id": draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n, unique=True)),
            "g": draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)),
            "x": draw(st.lists(real, min_size=n, max_size=n)),
            "k": draw(
                st.lists(
                    st.one_of(st.just(math.nan), st.integers(-1000, 1000).map(float)), min_size=n, max_size=n
                )
            ),
            "f": draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)),
        }
    )


def engine_for(public: PublicContexts, df: pd.DataFrame) -> tuple[QueryEngine, dict[str, Any]]:
    ids, vis = df["id"].to_numpy(), {"g": df["g"].to_numpy()}
    cols = {
        "x": encrypt_column(public, "x", df["x"].to_numpy(), ids, vis, nullable=True),
        "k": encrypt_column(public, "k", df["k"].to_numpy(), ids, vis, scheme="bfv", nullable=True),
        "f": encrypt_column(public, "f", df["f"].to_numpy(), ids, vis, kind="flag"),
        "fb": encrypt_column(public, "fb", df["f"].to_numpy(), ids, vis, kind="flag", scheme="bfv"),
    }
    return QueryEngine(public, cols, ["g"]), cols


def decrypt(custodian: Custodian, engine: QueryEngine, plan: QueryPlan) -> dict[str, dict[str, Any]]:
    return custodian.decrypt(EncryptedResult.from_bytes(engine.compute(plan).to_bytes())).values()


def near(got: Any, want: float, total_abs: float, bound: float) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    return got is not None and abs(got - want) <= 1e-6 * abs(want) + 1e-7 * total_abs + 5e-7 * bound


@SETTINGS
@given(df=tables(), flagged=st.booleans())
def test_ckks_aggregates_per_group_match_pandas(
    keys: tuple[PublicContexts, Custodian, SecretContexts], df: pd.DataFrame, flagged: bool
) -> None:
    public, custodian, _ = keys
    engine, cols = engine_for(public, df)
    where = (Predicate("f", "=", (1,)),) if flagged else ()
    plan = QueryPlan("t", (A("sum", "x"), A("mean", "x"), A("count", "x"), A("count")), where, ("g",))
    got = decrypt(custodian, engine, plan)
    sub = df[df["f"] == 1] if flagged else df
    bound = cols["x"].bound
    for g in ("a", "b", "c"):
        rows = sub[sub["g"] == g]
        label = f"g={g}"
        if g not in set(df["g"]):
            assert label not in got  # a value no row has is not a group (no domains declared)
            continue
        v = got[label]
        assert v["count(*)"] == len(rows)
        assert v["count(x)"] == rows["x"].count()
        if len(rows) == 0:  # every row filtered out by the flag: size 0, nothing to release
            assert v["sum(x)"] is None and v["mean(x)"] is None
            continue
        total_abs = float(rows["x"].abs().sum())
        assert near(v["sum(x)"], rows["x"].sum(), total_abs, bound)
        n = max(int(rows["x"].count()), 1)
        assert near(v["mean(x)"], rows["x"].mean(), total_abs / n, bound / n)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=tables(), flagged=st.booleans())
def test_bfv_aggregates_are_exact(
    keys: tuple[PublicContexts, Custodian, SecretContexts], df: pd.DataFrame, flagged: bool
) -> None:
    public, custodian, _ = keys
    engine, _ = engine_for(public, df)
    where = (Predicate("fb", "=", (0,)),) if flagged else ()
    plan = QueryPlan("t", (A("sum", "k"), A("count", "k"), A("variance", "k")), where, ("g",))
    got = decrypt(custodian, engine, plan)
    sub = df[df["f"] == 0] if flagged else df
    for g, v in got.items():
        rows = sub[sub["g"] == g.removeprefix("g=")]
        if len(rows) == 0:
            continue
        assert v["sum(k)"] == int(rows["k"].sum())
        assert v["count(k)"] == rows["k"].count()
        want = rows["k"].var()
        assert (
            (v["variance(k)"] is None)
            if math.isnan(want)
            else v["variance(k)"] == pytest.approx(want, rel=1e-12, abs=1e-9)
        )


@settings(max_examples=25, deadline=None)
@given(df=tables(), cut=st.integers(0, 40))
def test_append_in_two_steps_equals_encrypting_at_once(
    keys: tuple[PublicContexts, Custodian, SecretContexts], df: pd.DataFrame, cut: int
) -> None:
    """Same segments, same row ids in the same slots, same plaintexts (the custodian's view of each
    ciphertext), whether the rows came at once or in two steps."""
    public, _, secret = keys
    cut = min(cut, len(df))
    head, tail = df.iloc[:cut], df.iloc[cut:]

    def enc(d: pd.DataFrame, bound: float | None = None) -> Any:
        vis = {"g": d["g"].to_numpy()}
        return encrypt_column(
            public, "k", d["k"].to_numpy(), d["id"].to_numpy(), vis, scheme="bfv", nullable=True, bound=bound
        )

    whole = enc(df)
    part = enc(head, whole.bound).append(
        public, tail["k"].to_numpy(), tail["id"].to_numpy(), {"g": tail["g"].to_numpy()}
    )
    assert part.rows == whole.rows and set(part.by_key) == set(whole.by_key)
    for key, seg in whole.by_key.items():
        other = part.by_key[key]
        assert other.row_ids.tolist() == seg.row_ids.tolist()
        by_id = {}
        for s_ in (seg, other):
            slots = np.concatenate([secret.bfv.decrypt(c) for c in s_.values])[: s_.rows]
            valid = np.concatenate([secret.bfv.decrypt(c) for c in s_.validity or ()])[: s_.rows]
            by_id[id(s_)] = dict(
                zip(s_.row_ids.tolist(), zip(slots.tolist(), valid.tolist(), strict=True), strict=True)
            )
        assert by_id[id(seg)] == by_id[id(other)]
