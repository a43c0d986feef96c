"""Feature pipelines against a naive per-customer loop, plus leakage, keywords, dtypes and training frames."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from predictors.errors import DataError, PlaybookError
from predictors.features import (
    DAY_NS,
    build_features,
    eligible_mask,
    training_cutoffs,
    training_frame,
)
from predictors.playbook import Playbook, load_playbook, normalize_text

AS_OF = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KINDS = ["login", "purchase", "search", "telemetry", "complaint", "subscription_cancelled"]
CHANNELS = [None, "web", "app", "store"]
TEXTS = [
    None,
    "胎压异常",
    "胎壓異常怎么办",
    "ＴＩＲＥ ＰＲＥＳＳＵＲＥ warning",
    "Low Tyre pressure",
    "TPMS_WARN",
    "data plan",
    "账单查询",
]
PLAYBOOK: dict[str, Any] = {
    "name": "every_kind",
    "description": "one feature of every kind",
    "schedule": "0 9 * * *",
    "keywords": {"tires": {"zh": ["胎压异常"], "en": ["tire pressure", "tyre pressure", "TPMS"]}},
    "features": [
        {"name": "logins_7d", "kind": "count", "events": ["login"], "window": 7},
        {"name": "logins_30d", "kind": "count", "events": ["login"], "window": 30},
        {"name": "store_buys_30d", "kind": "count", "events": ["purchase"], "channel": "store", "window": 30},
        {"name": "friction_90d", "kind": "count", "events": ["complaint", "login"], "window": 90},
        {"name": "tire_hits_7d", "kind": "keyword_hits", "keywords": "tires", "window": 7},
        {"name": "tire_hits_30d", "kind": "keyword_hits", "keywords": "tires", "window": 30},
        {"name": "days_since_login", "kind": "recency", "events": ["login"], "window": 30},
        {
            "name": "days_since_buy_web",
            "kind": "recency",
            "events": ["purchase"],
            "channel": "web",
            "window": 90,
        },
        {"name": "spend_30d", "kind": "sum", "events": ["purchase"], "window": 30},
        {"name": "active_days_7d", "kind": "distinct_days", "events": ["login", "search"], "window": 7},
        {"name": "active_days_90d", "kind": "distinct_days", "events": ["login", "search"], "window": 90},
        {"name": "trend", "kind": "ratio", "numerator": "logins_7d", "denominator": "logins_30d", "zero": -1},
        {"name": "plan", "kind": "attribute", "column": "plan"},
        {"name": "score_attr", "kind": "attribute", "column": "credit"},
        {"name": "segment", "kind": "attribute", "column": "segment", "categories": ["mass", "sme"]},
        {"name": "tenure", "kind": "tenure_days"},
    ],
    "target": {
        "events": ["subscription_cancelled"],
        "horizon_days": 14,
        "eligible": {"exclude_events": ["subscription_cancelled"]},
    },
    "selection": {"mode": "top_k", "k": 10},
    "offer": {
        "channel": "sms",
        "industry": "telecom",
        "category": "retention",
        "text": {"zh": "您好", "en": "Hello"},
    },
}


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    path = tmp_path_factory.mktemp("pb") / "every_kind.yaml"
    path.write_text(yaml.safe_dump(PLAYBOOK, allow_unicode=True), encoding="utf-8")
    return load_playbook(path)


def make_data(
    seed: int, *, dense: bool = True, n_customers: int = 25, n_events: int = 400
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    if dense:
        ids = np.arange(1, n_customers + 1, dtype=np.int64)
    else:
        ids = np.sort(rng.choice(10**12, n_customers, replace=False)).astype(np.int64)
    created = pd.Series(
        [AS_OF - timedelta(days=float(d)) for d in rng.uniform(-5, 400, n_customers)],
        dtype="datetime64[ns, UTC]",
    )
    created[rng.random(n_customers) < 0.1] = pd.NaT
    customers = pd.DataFrame(
        {
            "region": rng.choice(["CN", "US"], n_customers),
            "plan": pd.Series(rng.choice(["basic", "plus", None], n_customers), dtype=object),
            "credit": np.where(rng.random(n_customers) < 0.2, np.nan, rng.normal(600, 50, n_customers)),
            "segment": rng.choice(["mass", "sme", "private"], n_customers),
            "created": created.array,
        },
        index=pd.Index(ids, name="customer_id"),
    )
    unknown = rng.random(n_events) < 0.05
    cid = np.where(unknown, -7, rng.choice(ids, n_events))
    # ages in days: mostly inside 100 days, some in the future, some exactly on window edges
    ages = rng.uniform(-3, 100, n_events)
    edges = rng.random(n_events) < 0.1
    ages[edges] = rng.choice([0.0, 7.0, 30.0, 90.0], int(edges.sum()))
    ts = pd.Series([AS_OF - timedelta(days=float(a)) for a in ages], dtype="datetime64[ns, UTC]")
    amount = np.round(rng.uniform(1, 100, n_events), 2)
    amount[rng.random(n_events) < 0.3] = np.nan
    events = pd.DataFrame(
        {
            "customer_id": cid.astype(np.int64),
            "ts": ts,
            "kind": rng.choice(KINDS, n_events),
            "channel": pd.Series(
                [CHANNELS[i] for i in rng.integers(0, len(CHANNELS), n_events)], dtype=object
            ),
            "amount": amount,
            "text": pd.Series([TEXTS[i] for i in rng.integers(0, len(TEXTS), n_events)], dtype=object),
        }
    )
    return customers, events


# -- the naive oracle: one customer and one event at a time ----------------------------------------------
def naive_features(
    events: pd.DataFrame, customers: pd.DataFrame, pb: Playbook, as_of: datetime
) -> dict[int, dict[str, Any]]:
    as_ns = pd.Timestamp(as_of).value
    records = [
        {
            "cid": int(r.customer_id),
            "age": as_ns - pd.Timestamp(r.ts).value,
            "kind": r.kind,
            "channel": r.channel if isinstance(r.channel, str) else None,
            "amount": r.amount,
            "text": r.text if isinstance(r.text, str) else None,
        }
        for r in events.itertuples()
    ]
    out: dict[int, dict[str, Any]] = {}
    for cid in customers.index:
        mine = [e for e in records if e["cid"] == cid and e["age"] > 0]
        row: dict[str, Any] = {}
        for f in pb.features:
            if f.kind in ("count", "sum", "recency", "distinct_days", "keyword_hits"):
                limit = f.window * DAY_NS
                chosen = [
                    e
                    for e in mine
                    if e["kind"] in f.events
                    and e["age"] <= limit
                    and (f.channel is None or e["channel"] == f.channel)
                ]
                if f.kind == "count":
                    row[f.name] = float(len(chosen))
                elif f.kind == "sum":
                    row[f.name] = float(sum(e["amount"] for e in chosen if not math.isnan(e["amount"])))
                elif f.kind == "recency":
                    row[f.name] = min([e["age"] for e in chosen], default=limit) / DAY_NS
                elif f.kind == "distinct_days":
                    row[f.name] = float(len({(e["age"] - 1) // DAY_NS for e in chosen}))
                else:
                    terms = f.keywords.terms  # type: ignore[union-attr]
                    row[f.name] = float(
                        sum(
                            1
                            for e in chosen
                            if e["text"] is not None and any(t in normalize_text(e["text"]) for t in terms)
                        )
                    )
            elif f.kind == "attribute":
                value = customers.loc[cid, f.column]
                outside = f.categories is not None and value not in f.categories
                row[f.name] = None if pd.isna(value) or outside else value
            elif f.kind == "tenure_days":
                created = customers.loc[cid, "created"]
                row[f.name] = math.nan if pd.isna(created) else max((as_ns - created.value) / DAY_NS, 0.0)
        for f in pb.features:
            if f.kind == "ratio":
                den = row[f.denominator]  # type: ignore[index]
                row[f.name] = f.zero if den == 0 else row[f.numerator] / den  # type: ignore[index]
        out[int(cid)] = row
    return out


def assert_matches(frame: pd.DataFrame, expected: dict[int, dict[str, Any]], pb: Playbook) -> None:
    assert list(frame.columns) == list(pb.feature_names)
    for cid, row in expected.items():
        for name, value in row.items():
            got = frame.loc[cid, name]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert pd.isna(got), (cid, name, got)
            elif isinstance(value, str):
                assert got == value, (cid, name, got, value)
            else:
                assert got == pytest.approx(value, rel=1e-12, abs=1e-9), (cid, name, got, value)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dense=st.booleans())
def test_every_feature_kind_matches_a_naive_loop(playbook: Playbook, seed: int, dense: bool) -> None:
    customers, events = make_data(seed, dense=dense)
    frame = build_features(events, customers, playbook, AS_OF)
    assert frame.index.equals(customers.index)
    assert_matches(frame, naive_features(events, customers, playbook, AS_OF), playbook)


def test_dtypes_float_or_category_and_declared_categories(playbook: Playbook) -> None:
    customers, events = make_data(1)
    frame = build_features(events, customers, playbook, AS_OF)
    for name in frame.columns:
        if name in ("plan", "segment"):
            assert isinstance(frame[name].dtype, pd.CategoricalDtype)
        else:
            assert frame[name].dtype == np.float64, name
    assert list(frame["plan"].cat.categories) == ["basic", "plus"]  # sorted values seen
    assert list(frame["segment"].cat.categories) == ["mass", "sme"]  # declared order
    private = (customers["segment"] == "private").to_numpy()
    assert frame["segment"][private].isna().all()  # outside the declared categories: missing


def test_categorical_and_string_columns_give_the_same_features(playbook: Playbook) -> None:
    customers, events = make_data(2)
    plain = build_features(events, customers, playbook, AS_OF)
    coded = events.assign(
        kind=events["kind"].astype("category"),
        channel=events["channel"].astype("category"),
        text=events["text"].astype("category"),
        ts=events["ts"].dt.as_unit("us"),  # another resolution, same instants
    )
    pd.testing.assert_frame_equal(build_features(coded, customers, playbook, AS_OF), plain)


def test_order_of_events_and_customers_does_not_matter(playbook: Playbook) -> None:
    customers, events = make_data(3, dense=False)
    base = build_features(events, customers, playbook, AS_OF)
    shuffled_events = events.sample(frac=1.0, random_state=0)
    shuffled_customers = customers.sample(frac=1.0, random_state=1)
    again = build_features(shuffled_events, shuffled_customers, playbook, AS_OF)
    assert again.index.equals(shuffled_customers.index)
    pd.testing.assert_frame_equal(again.loc[base.index], base)


def test_no_leakage_events_at_or_after_as_of_change_nothing(playbook: Playbook) -> None:
    customers, events = make_data(4)
    before = build_features(events, customers, playbook, AS_OF)
    future = pd.DataFrame(
        {
            "customer_id": np.repeat(customers.index.to_numpy(), 3),
            "ts": pd.Series(
                [AS_OF, AS_OF + timedelta(seconds=1), AS_OF + timedelta(days=2)] * len(customers),
                dtype="datetime64[ns, UTC]",
            ),
            "kind": ["login", "search", "purchase"] * len(customers),
            "channel": ["store"] * (3 * len(customers)),
            "amount": [50.0] * (3 * len(customers)),
            "text": ["胎压异常"] * (3 * len(customers)),
        }
    )
    after = build_features(pd.concat([events, future], ignore_index=True), customers, playbook, AS_OF)
    pd.testing.assert_frame_equal(after, before)


def test_window_edges_exactly_w_days_old_counts_as_of_does_not(playbook: Playbook) -> None:
    customers = pd.DataFrame(
        {"region": ["CN"], "plan": ["basic"], "credit": [1.0], "segment": ["mass"], "created": [AS_OF]},
        index=pd.Index([1], name="customer_id"),
    ).astype({"created": "datetime64[ns, UTC]"})
    ts = [AS_OF - timedelta(days=7), AS_OF - timedelta(days=7, microseconds=1), AS_OF]
    events = pd.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "ts": pd.Series(ts, dtype="datetime64[ns, UTC]"),
            "kind": ["login"] * 3,
            "channel": [None] * 3,
            "amount": [np.nan] * 3,
            "text": [None] * 3,
        }
    )
    frame = build_features(events, customers, playbook, AS_OF)
    assert frame.loc[1, "logins_7d"] == 1.0
    assert frame.loc[1, "logins_30d"] == 2.0
    assert frame.loc[1, "active_days_7d"] == 1.0
    assert frame.loc[1, "days_since_login"] == pytest.approx(7.0)
    assert frame.loc[1, "tenure"] == 0.0


def test_customers_without_events_get_zero_counts_and_the_window_as_recency(playbook: Playbook) -> None:
    customers, events = make_data(5)
    frame = build_features(events.iloc[:0], customers, playbook, AS_OF)
    assert (frame["logins_30d"] == 0).all() and (frame["spend_30d"] == 0).all()
    assert (frame["days_since_login"] == 30.0).all() and (frame["days_since_buy_web"] == 90.0).all()
    assert (frame["trend"] == -1.0).all()  # the declared zero-denominator value


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("胎压异常", True),
        ("我的车胎壓異常了", True),  # traditional, inside a sentence
        ("TIRE PRESSURE warning", True),
        ("ｔｉｒｅ　ｐｒｅｓｓｕｒｅ", True),  # full-width letters and an ideographic space
        ("low tyre   pressure", True),
        ("TPMS_LOW_PRESSURE", True),
        ("tire shop hours", False),
        ("胎压", False),
        (None, False),
    ],
)
def test_keyword_hits_in_both_languages_and_their_variants(
    playbook: Playbook, text: str | None, hit: bool
) -> None:
    customers = pd.DataFrame(
        {"region": ["CN"], "plan": ["basic"], "credit": [1.0], "segment": ["mass"], "created": [AS_OF]},
        index=pd.Index([9], name="customer_id"),
    ).astype({"created": "datetime64[ns, UTC]"})
    events = pd.DataFrame(
        {
            "customer_id": [9, 9],
            "ts": pd.Series(
                [AS_OF - timedelta(days=1), AS_OF - timedelta(days=20)], dtype="datetime64[ns, UTC]"
            ),
            "kind": ["search", "telemetry"],
            "channel": ["app", "vehicle"],
            "amount": [np.nan, np.nan],
            "text": pd.Series([text, text], dtype=object),
        }
    )
    frame = build_features(events, customers, playbook, AS_OF)
    assert frame.loc[9, "tire_hits_7d"] == (1.0 if hit else 0.0)
    assert frame.loc[9, "tire_hits_30d"] == (2.0 if hit else 0.0)


def test_keyword_hits_ignore_kinds_outside_the_feature(playbook: Playbook) -> None:
    customers, _ = make_data(6, n_customers=1)
    cid = int(customers.index[0])
    events = pd.DataFrame(
        {
            "customer_id": [cid],
            "ts": pd.Series([AS_OF - timedelta(days=1)], dtype="datetime64[ns, UTC]"),
            "kind": ["complaint"],  # a complaint about tire pressure is not a search
            "channel": ["phone"],
            "amount": [np.nan],
            "text": ["tire pressure"],
        }
    )
    assert build_features(events, customers, playbook, AS_OF).loc[cid, "tire_hits_7d"] == 0.0


def test_bad_inputs_are_refused_with_what_to_do(playbook: Playbook) -> None:
    customers, events = make_data(7)
    with pytest.raises(DataError, match="no time zone"):
        build_features(events, customers, playbook, datetime(2024, 5, 1))
    with pytest.raises(DataError, match="naive times"):
        build_features(events.assign(ts=events["ts"].dt.tz_localize(None)), customers, playbook, AS_OF)
    with pytest.raises(DataError, match="lacks column"):
        build_features(events.drop(columns=["kind"]), customers, playbook, AS_OF)
    with pytest.raises(DataError, match="no column 'credit'"):
        build_features(events, customers.drop(columns=["credit"]), playbook, AS_OF)
    doubled = pd.concat([customers, customers.iloc[:1]])
    with pytest.raises(DataError, match="duplicate customer_id"):
        build_features(events, doubled, playbook, AS_OF)


# -- training frames -------------------------------------------------------------------------------------
def test_training_frame_labels_features_and_cutoffs(playbook: Playbook) -> None:
    customers, events = make_data(8, n_customers=40, n_events=800)
    cutoffs = [AS_OF - timedelta(days=60), AS_OF - timedelta(days=40)]
    frame = training_frame(events, customers, playbook, cutoffs, data_end=AS_OF)
    assert list(frame.columns) == [*playbook.feature_names, "label", "cutoff"]
    assert frame["label"].dtype == np.int8
    assert set(frame["cutoff"]) == {pd.Timestamp(c) for c in cutoffs}
    for cutoff in cutoffs:
        part = frame[frame["cutoff"] == pd.Timestamp(cutoff)]
        # features: exactly what build_features gives at the cutoff (no leakage from the label window)
        expected = build_features(events, customers, playbook, cutoff).loc[part.index]
        pd.testing.assert_frame_equal(part[list(playbook.feature_names)], expected)
        # labels and eligibility, one customer at a time
        lo, hi = pd.Timestamp(cutoff), pd.Timestamp(cutoff) + pd.Timedelta(days=14)
        for cid in customers.index:
            mine = events[events["customer_id"] == cid]
            cancels = mine[mine["kind"] == "subscription_cancelled"]
            created = customers.loc[cid, "created"]
            eligible = (cancels["ts"] >= lo).all() and (pd.isna(created) or created <= lo)
            assert (cid in part.index) == eligible, cid
            if eligible:
                label = ((cancels["ts"] >= lo) & (cancels["ts"] < hi)).any()
                assert part.loc[cid, "label"] == int(label), cid


def test_training_frame_drops_cutoffs_whose_horizon_is_incomplete(playbook: Playbook) -> None:
    customers, events = make_data(9)
    late = AS_OF - timedelta(days=3)  # only 3 of 14 label days exist
    frame = training_frame(events, customers, playbook, [AS_OF - timedelta(days=30), late], data_end=AS_OF)
    assert set(frame["cutoff"]) == {pd.Timestamp(AS_OF - timedelta(days=30))}
    with pytest.raises(DataError, match="use cutoffs at or before 2024-04-17 12:00"):
        training_frame(events, customers, playbook, [late], data_end=AS_OF)


def test_training_cutoffs_fit_inside_the_data(playbook: Playbook) -> None:
    _, events = make_data(10)
    cutoffs = training_cutoffs(events, playbook, count=3)
    end = events["ts"].max()
    assert len(cutoffs) == 3 and cutoffs == sorted(cutoffs, reverse=True)
    assert all(c + pd.Timedelta(days=14) <= end for c in cutoffs)
    assert all(c == c.normalize() for c in cutoffs)
    assert cutoffs[0] - cutoffs[1] == pd.Timedelta(days=14)


def test_training_needs_a_target(tmp_path: Path) -> None:
    data = dict(
        PLAYBOOK, rules={"when": ["logins_7d >= 1"]}, selection={"mode": "threshold", "threshold": 1.0}
    )
    data.pop("target")
    path = tmp_path / "no_target.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    pb = load_playbook(path)
    customers, events = make_data(11)
    with pytest.raises(PlaybookError, match="declares no target"):
        training_frame(events, customers, pb, [AS_OF - timedelta(days=30)])


def test_eligible_mask_excludes_customers_who_already_left_or_did_not_exist(playbook: Playbook) -> None:
    customers, _ = make_data(12, n_customers=3)
    ids = customers.index.to_numpy()
    customers["created"] = pd.Series(
        [AS_OF - timedelta(days=100), AS_OF - timedelta(days=100), AS_OF + timedelta(days=1)],
        dtype="datetime64[ns, UTC]",
    ).array
    events = pd.DataFrame(
        {
            "customer_id": [ids[0], ids[1]],
            "ts": pd.Series(
                [AS_OF - timedelta(days=200), AS_OF + timedelta(days=1)], dtype="datetime64[ns, UTC]"
            ),
            "kind": ["subscription_cancelled", "subscription_cancelled"],
            "channel": [None, None],
            "amount": [np.nan, np.nan],
            "text": [None, None],
        }
    )
    assert eligible_mask(events, customers, playbook, AS_OF).tolist() == [False, True, False]
