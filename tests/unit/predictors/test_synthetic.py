"""Synthetic data: the documented shapes, reproducibility, and the planted signal the playbooks find."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictors.errors import DataError
from predictors.features import build_features, training_cutoffs, training_frame
from predictors.playbook import DEFAULT_EVENT_CHANNELS, DEFAULT_EVENT_KINDS, load_playbooks
from predictors.synthetic import generate

AS_OF = datetime(2024, 5, 1, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[3] / "config" / "playbooks"


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate(20_000, 400_000, seed=11, as_of=AS_OF)


def test_shapes_and_types(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    customers, events = data
    assert len(customers) == 20_000 and len(events) == 400_000
    assert customers.index.name == "customer_id" and customers.index.dtype == np.int64
    assert customers.index.is_unique
    assert {"region", "time_zone", "preferred_language", "segment", "plan", "created"} <= set(
        customers.columns
    )
    assert str(customers["created"].dtype) == "datetime64[ns, UTC]"
    assert set(customers["preferred_language"].dropna()) == {"zh", "en"}
    assert customers.loc[customers["region"] != "US", "time_zone"].isna().all()
    assert list(events.columns) == ["customer_id", "ts", "kind", "channel", "amount", "text"]
    assert events["customer_id"].dtype == np.int64 and str(events["ts"].dtype) == "datetime64[ns, UTC]"
    assert set(events["kind"].cat.categories) <= set(DEFAULT_EVENT_KINDS)
    assert set(events["channel"].dropna()) <= set(DEFAULT_EVENT_CHANNELS)
    assert (events["ts"] < pd.Timestamp(AS_OF)).all()
    assert events["customer_id"].isin(customers.index).all()
    amount_kinds = set(events.loc[events["amount"].notna(), "kind"])
    assert amount_kinds == {"purchase", "refund"}
    texts = events.loc[events["text"].notna(), "kind"]
    assert set(texts) == {"search", "page_view", "telemetry"}
    assert not events["ts"].is_monotonic_increasing  # unsorted, as the store may hand them over


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = generate(500, 5000, seed=3, as_of=AS_OF)
    b = generate(500, 5000, seed=3, as_of=AS_OF)
    c = generate(500, 5000, seed=4, as_of=AS_OF)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    assert not a[1]["ts"].equals(c[1]["ts"])


def test_tiny_and_invalid_sizes() -> None:
    customers, events = generate(10, 3, seed=1, as_of=AS_OF)
    assert len(customers) == 10 and len(events) == 3
    with pytest.raises(DataError, match="n_customers"):
        generate(0, 10, seed=1, as_of=AS_OF)
    with pytest.raises(DataError, match="timezone-aware"):
        generate(10, 10, seed=1, as_of=datetime(2024, 5, 1))


def test_planted_tire_signal_fires_the_shipped_rule(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    customers, events = data
    tire = load_playbooks(SHIPPED)["tire_pressure_service"]
    features = build_features(events, customers, tire, AS_OF)
    fired = tire.rule_scores(features) == 1.0
    # about half of the 3 % searchers burst in the last week
    assert 0.005 < fired.mean() < 0.03
    zh = (customers["preferred_language"] == "zh").to_numpy()
    assert fired[zh].any() and fired[~zh].any()  # both languages match
    assert features.loc[~fired, "tire_hits_7d"].max() < 3


def test_planted_churn_signal_separates_churners(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    customers, events = data
    churn = load_playbooks(SHIPPED)["churn_retention"]
    cutoffs = training_cutoffs(events, churn, count=2)
    frame = training_frame(events, customers, churn, cutoffs)
    assert set(frame["label"].unique()) == {0, 1}
    positive = frame["label"] == 1
    assert 0.005 < positive.mean() < 0.2
    # churners complain more, log in less recently and search for the exit
    assert frame.loc[positive, "complaints_30d"].mean() > 3 * frame.loc[~positive, "complaints_30d"].mean()
    assert frame.loc[positive, "days_since_login"].mean() > frame.loc[~positive, "days_since_login"].mean()
    assert (
        frame.loc[positive, "cancel_searches_30d"].mean() > frame.loc[~positive, "cancel_searches_30d"].mean()
    )


def test_store_purchases_follow_tire_bursts(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    customers, events = data
    store = events[(events["kind"] == "purchase") & (events["channel"] == "store")]
    tire_texts = events["text"].astype(object).fillna("").str.contains("胎|tire|tyre|TIRE|TPMS|Tire|ＴＩＲＥ")
    searchers = customers.index.isin(events.loc[tire_texts, "customer_id"])
    buyers = customers.index.isin(store["customer_id"])
    assert buyers[searchers].mean() > 1.5 * buyers[~searchers].mean()
