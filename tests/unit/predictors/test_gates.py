"""Contact gates: each gate on a constructed case, quiet hours across zones and DST, content checked once
per combination, holdout handling, and the vectorised gates against a per-customer loop."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from predictors.errors import DataError
from predictors.gates import GATES, ContentVerdict, evaluate_gates, language_for, zone_for
from predictors.playbook import Playbook, load_playbook

NOW = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai, 10:00 in New York

BOOK: dict[str, Any] = {
    "name": "tires",
    "description": "gate tests",
    "schedule": "0 9 * * *",
    "features": [{"name": "hits", "kind": "count", "events": ["search"], "window": 7}],
    "rules": {"when": ["hits >= 3"]},
    "selection": {"mode": "threshold", "threshold": 1.0},
    "offer": {
        "channel": "sms",
        "industry": "automotive",
        "category": "service_appointment",
        "text": {"zh": "胎压检测优惠", "en": "Tire check offer"},
    },
    "contact": {
        "caps": [{"scope": "playbook", "max": 1, "days": 7}, {"scope": "overall", "max": 3, "days": 30}],
        "quiet_hours": {"start": "21:00", "end": "08:00"},
    },
}


def book(tmp_path: Path, **contact: Any) -> Playbook:
    data = dict(BOOK, contact={**BOOK["contact"], **contact})
    path = tmp_path / "tires.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_playbook(path)


@pytest.fixture
def pb(tmp_path: Path) -> Playbook:
    return book(tmp_path)


@pytest.fixture(scope="module")
def module_pb(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return book(tmp_path_factory.mktemp("gates"))


def customers(rows: dict[int, tuple[str | None, str | None, str | None]]) -> pd.DataFrame:
    """id -> (region, time_zone, preferred_language)"""
    return pd.DataFrame(
        {
            "region": pd.Series([r[0] for r in rows.values()], dtype=object),
            "time_zone": pd.Series([r[1] for r in rows.values()], dtype=object),
            "preferred_language": pd.Series([r[2] for r in rows.values()], dtype=object),
        },
    ).set_axis(pd.Index(list(rows), dtype="int64", name="customer_id"))


def cands(ids: list[int], holdout: list[bool] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": ids, "score": [1.0] * len(ids), "holdout": holdout or [False] * len(ids)}
    )


def consent_all(ids: list[int], channel: str = "sms") -> pd.DataFrame:
    return frame(
        [(c, channel, "opt_in", NOW - timedelta(days=100)) for c in ids],
        ["customer_id", "channel", "status", "ts"],
    )


def frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=columns)
    out["ts"] = pd.Series(list(out["ts"]), dtype="datetime64[ns, UTC]")
    return out


NO_HISTORY = frame([], ["customer_id", "playbook", "ts"])


def run(pb: Playbook, cust: pd.DataFrame, cand: pd.DataFrame, **kw: Any) -> pd.DataFrame:
    args: dict[str, Any] = {
        "now": NOW,
        "consent": consent_all(cand["customer_id"].tolist()),
        "history": NO_HISTORY,
        "suppressions": set(),
        "content_check": None,
    }
    args.update(kw)
    out = evaluate_gates(cand, cust, playbook=pb, **args)
    assert list(out.columns) == [
        "customer_id",
        "score",
        "holdout",
        "status",
        "reasons",
        "suppressed_by",
        "not_before",
    ]
    for reasons in out["reasons"]:
        assert [r["gate"] for r in reasons] == list(GATES)
    return out.set_index("customer_id")


def gate(out: pd.DataFrame, cid: int, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in out.loc[cid, "reasons"] if r["gate"] == name)
    return found


NY = ("US", "America/New_York", "en")  # 10:00 local at NOW: outside quiet hours


def test_everything_passes_gives_raised(pb: Playbook) -> None:
    out = run(pb, customers({1: NY}), cands([1]))
    assert out.loc[1, "status"] == "raised"
    assert out.loc[1, "suppressed_by"] is None
    assert pd.isna(out.loc[1, "not_before"])
    assert all(r["passed"] for r in out.loc[1, "reasons"])


def test_suppression_list_with_and_without_reasons(pb: Playbook) -> None:
    cust = customers({1: NY, 2: NY, 3: NY})
    out = run(pb, cust, cands([1, 2, 3]), suppressions={2})
    assert out["status"].tolist() == ["raised", "suppressed", "raised"]
    assert out.loc[2, "suppressed_by"] == "suppression_list"
    listed = pd.DataFrame({"customer_id": [3], "reason": ["asked not to be contacted"]})
    out = run(pb, cust, cands([1, 2, 3]), suppressions=listed)
    assert out.loc[3, "status"] == "suppressed"
    assert gate(out, 3, "suppression_list")["detail"] == "on the suppression list: asked not to be contacted"


def test_consent_takes_the_latest_record_for_the_offer_channel(pb: Playbook) -> None:
    t0 = NOW - timedelta(days=10)
    consent = frame(
        [
            (1, "sms", "opt_in", t0),
            (2, "sms", "opt_in", t0),
            (2, "sms", "opt_out", t0 + timedelta(days=1)),
            (3, "sms", "opt_in", t0 + timedelta(days=1)),  # later opt-in listed before the opt-out
            (3, "sms", "opt_out", t0),
            (4, "email", "opt_in", t0),  # another channel does not count
            (5, "sms", "opt_in", NOW + timedelta(days=1)),  # dated in the future: ignored
            (6, "sms", "opt_in", t0),
            (6, "sms", "opt_out", t0),  # same time: the later row wins
        ],
        ["customer_id", "channel", "status", "ts"],
    )
    ids = [1, 2, 3, 4, 5, 6, 7]
    out = run(pb, customers(dict.fromkeys(ids, NY)), cands(ids), consent=consent)
    assert out["status"].tolist() == [
        "raised",
        "suppressed",
        "raised",
        "suppressed",
        "suppressed",
        "suppressed",
        "suppressed",
    ]
    assert set(out["suppressed_by"].dropna()) == {"consent"}
    assert "opted out of sms" in gate(out, 2, "consent")["detail"]
    assert "no consent record for sms" in gate(out, 4, "consent")["detail"]
    assert "opt-in is required" in gate(out, 7, "consent")["detail"]


def test_region_allow_list_counts_subdivisions_as_their_country(tmp_path: Path) -> None:
    pb = book(tmp_path, regions=["CN", "US"])
    cust = customers(
        {
            1: ("CN", None, "zh"),
            2: ("US-CA", "America/Los_Angeles", "en"),
            3: ("GB", None, "en"),
            4: (None, "Asia/Shanghai", "zh"),
        }
    )
    now = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)  # daytime in Shanghai, 21:00 in LA (quiet)
    out = run(pb, cust, cands([1, 2, 3, 4]), now=now)
    assert gate(out, 1, "region")["passed"] and gate(out, 2, "region")["passed"]
    assert out.loc[3, "suppressed_by"] == "region"
    assert "GB is not among this playbook's regions (CN, US)" in gate(out, 3, "region")["detail"]
    assert out.loc[4, "suppressed_by"] == "region"


def test_frequency_caps_per_playbook_and_overall(pb: Playbook) -> None:
    day = timedelta(days=1)
    history = frame(
        [
            (1, "tires", NOW - 6 * day),  # this playbook within 7 days: capped
            (2, "tires", NOW - 8 * day),  # outside the 7 days
            (3, "churn", NOW - 1 * day),
            (3, "churn", NOW - 10 * day),
            (3, "other", NOW - 29 * day),  # three overall in 30 days: capped
            (4, "churn", NOW - 1 * day),
            (4, "churn", NOW - 31 * day),  # only one inside 30 days
            (5, "tires", NOW + 1 * day),  # in the future: not a contact made
        ],
        ["customer_id", "playbook", "ts"],
    )
    ids = [1, 2, 3, 4, 5]
    out = run(pb, customers(dict.fromkeys(ids, NY)), cands(ids), history=history)
    assert out["status"].tolist() == ["suppressed", "raised", "suppressed", "raised", "raised"]
    assert (
        gate(out, 1, "frequency_cap")["detail"]
        == "1 contact(s) in the last 7 d from this playbook; the cap is 1"
    )
    assert (
        gate(out, 3, "frequency_cap")["detail"]
        == "3 contact(s) in the last 30 d from all playbooks; the cap is 3"
    )
    assert gate(out, 2, "frequency_cap")["passed"]


def test_quiet_hours_across_midnight_shanghai_vs_new_york(pb: Playbook) -> None:
    cust = customers({1: ("CN", None, "zh"), 2: NY})
    out = run(pb, cust, cands([1, 2]))  # 22:00 Shanghai, 10:00 New York
    assert out.loc[1, "status"] == "deferred" and out.loc[1, "suppressed_by"] == "quiet_hours"
    assert out.loc[1, "not_before"] == pd.Timestamp("2024-05-02T00:00:00Z")  # 08:00 CST next day
    assert (
        "22:00 local time (Asia/Shanghai) is inside the quiet hours 21:00-08:00"
        in gate(out, 1, "quiet_hours")["detail"]
    )
    assert out.loc[2, "status"] == "raised"

    early = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)  # 11:00 Shanghai, 23:00 New York (previous day)
    out = run(pb, cust, cands([1, 2]), now=early)
    assert out.loc[1, "status"] == "raised"
    assert out.loc[2, "status"] == "deferred"
    assert out.loc[2, "not_before"] == pd.Timestamp("2024-05-01T12:00:00Z")  # 08:00 EDT the same UTC day


@pytest.mark.parametrize(
    ("now", "resume"),
    [
        # 01:30 EST on the night clocks spring forward: 08:00 that morning is EDT (UTC-4)
        (datetime(2024, 3, 10, 6, 30, tzinfo=UTC), "2024-03-10T12:00:00Z"),
        # 23:30 EDT the evening before clocks fall back: 08:00 next morning is EST (UTC-5)
        (datetime(2024, 11, 3, 3, 30, tzinfo=UTC), "2024-11-03T13:00:00Z"),
    ],
)
def test_quiet_hours_resume_time_follows_daylight_saving(pb: Playbook, now: datetime, resume: str) -> None:
    out = run(pb, customers({1: NY}), cands([1]), now=now)
    assert out.loc[1, "status"] == "deferred"
    assert out.loc[1, "not_before"] == pd.Timestamp(resume)


def test_a_daytime_quiet_window_and_zone_fallbacks(tmp_path: Path) -> None:
    pb = book(tmp_path, quiet_hours={"start": "12:00", "end": "14:00"})
    cust = customers(
        {
            1: ("CN", None, "zh"),  # region default Asia/Shanghai: 22:00, outside 12-14
            2: ("US", "America/Los_Angeles", "en"),  # 07:00: outside
            3: ("GB", "Mars/Olympus", "en"),  # invalid zone: Europe/London default, 15:00 BST
            4: ("ZZ", None, "en"),  # unknown: cannot know the local time
        }
    )
    out = run(
        pb, cust, cands([1, 2, 3, 4]), now=datetime(2024, 5, 1, 12, 30, tzinfo=UTC) + timedelta(hours=1.5)
    )
    assert out["status"].tolist() == ["raised", "raised", "raised", "suppressed"]
    assert "(Europe/London)" in gate(out, 3, "quiet_hours")["detail"]
    assert out.loc[4, "suppressed_by"] == "quiet_hours"
    assert "set the customer's time_zone" in gate(out, 4, "quiet_hours")["detail"]
    inside = run(pb, cust, cands([1]), now=datetime(2024, 5, 1, 5, 0, tzinfo=UTC))  # 13:00 Shanghai
    assert inside.loc[1, "not_before"] == pd.Timestamp("2024-05-01T06:00:00Z")


def test_no_quiet_hours_configured(tmp_path: Path) -> None:
    pb = book(tmp_path, quiet_hours=None)
    out = run(pb, customers({1: ("CN", None, "zh"), 2: ("ZZ", None, None)}), cands([1, 2]))
    assert out["status"].tolist() == ["raised", "raised"]


def test_content_check_is_called_once_per_combination(pb: Playbook) -> None:
    calls: list[tuple[str, ...]] = []

    def check(region: str, language: str, channel: str, industry: str, text: str) -> ContentVerdict:
        calls.append((region, language, channel, industry, text))
        if region == "US":
            return ContentVerdict(False, "block", ["US-TEST-1"], "promises a free service")
        return ContentVerdict(True, "allow", [], "")

    day = ("CN", "Asia/Shanghai", "zh")
    cust = customers(
        {
            1: ("CN", "America/New_York", "zh"),
            2: ("CN", "America/New_York", "zh"),
            3: ("CN", "America/New_York", None),  # CN default: zh
            4: ("CN", "America/New_York", "en"),
            5: NY,
            6: ("US", "America/New_York", None),  # default en
            7: ("HK", "America/New_York", "fr"),  # not an offer language: HK default zh
            8: day,
        }
    )
    ids = list(range(1, 9))
    out = run(pb, cust, cands(ids), content_check=check)
    assert sorted(calls) == sorted(
        [
            ("CN", "zh", "sms", "automotive", "胎压检测优惠"),
            ("CN", "en", "sms", "automotive", "Tire check offer"),
            ("US", "en", "sms", "automotive", "Tire check offer"),
            ("HK", "zh", "sms", "automotive", "胎压检测优惠"),
        ]
    )
    assert out.loc[5, "status"] == "suppressed" and out.loc[5, "suppressed_by"] == "content"
    assert (
        gate(out, 5, "content")["detail"]
        == "en offer text for US: block [US-TEST-1]; promises a free service"
    )
    assert out.loc[1, "status"] == "raised"
    assert out.loc[8, "status"] == "deferred"  # content passes, quiet hours defer


def test_holdout_customers_pass_the_same_gates(pb: Playbook) -> None:
    cust = customers({1: NY, 2: NY, 3: ("CN", None, "zh"), 4: NY})
    consent = consent_all([1, 3, 4])
    out = run(pb, cust, cands([1, 2, 3, 4], holdout=[True, True, True, False]), consent=consent)
    assert out["status"].tolist() == ["holdout", "suppressed", "holdout", "raised"]
    assert out.loc[1, "suppressed_by"] is None
    assert out.loc[2, "suppressed_by"] == "consent"  # would not have been contacted either
    assert pd.isna(out.loc[3, "not_before"])  # in quiet hours, but never contacted
    assert not gate(out, 3, "quiet_hours")["passed"]


def test_suppressed_by_names_the_first_failing_gate(pb: Playbook) -> None:
    history = frame([(1, "tires", NOW - timedelta(days=1))], ["customer_id", "playbook", "ts"])
    out = run(
        pb,
        customers({1: ("ZZ", None, "en")}),
        cands([1]),
        consent=consent_all([]),
        history=history,
        suppressions={1},
    )
    failed = [r["gate"] for r in out.loc[1, "reasons"] if not r["passed"]]
    assert failed == ["suppression_list", "consent", "frequency_cap", "quiet_hours"]
    assert out.loc[1, "suppressed_by"] == "suppression_list"


def test_bad_inputs(pb: Playbook) -> None:
    cust = customers({1: NY})
    with pytest.raises(DataError, match="timezone-aware"):
        run(pb, cust, cands([1]), now=datetime(2024, 5, 1, 12))
    with pytest.raises(DataError, match=r"candidates \[2\] are not in the customer frame"):
        run(pb, cust, cands([2]))
    with pytest.raises(DataError, match="consent lacks column"):
        run(pb, cust, cands([1]), consent=pd.DataFrame({"customer_id": [1]}))


def test_zone_and_language_defaults() -> None:
    assert zone_for("CN") == "Asia/Shanghai"
    assert zone_for("US-CA") == "America/Los_Angeles"
    assert zone_for("US-NJ") == "America/New_York"  # subdivision without its own entry: the country's
    assert zone_for("DE", "Not/AZone") == "Europe/Berlin"
    assert zone_for("ZZ") is None and zone_for(None) is None
    assert language_for("TW", None) == "zh" and language_for("SG", None) == "en"
    assert language_for("CN", "en") == "en" and language_for("CN", "fr") == "zh"


# -- the vectorised gates against one customer at a time -------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_gates_match_a_per_customer_loop(module_pb: Playbook, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pb = module_pb
    n = int(rng.integers(1, 40))
    ids = rng.choice(1000, n, replace=False).astype(np.int64)
    regions = rng.choice(["CN", "US", "GB", "ZZ"], n)
    cust = customers({int(c): (str(r), None, None) for c, r in zip(ids, regions, strict=True)})
    holdout = (rng.random(n) < 0.3).tolist()
    cand = cands(ids.tolist(), holdout)
    consent = frame(
        [
            (
                int(rng.choice(ids)),
                str(rng.choice(["sms", "email"])),
                str(rng.choice(["opt_in", "opt_out"])),
                NOW - timedelta(days=float(rng.uniform(-2, 50))),
            )
            for _ in range(int(rng.integers(0, 3 * n)))
        ],
        ["customer_id", "channel", "status", "ts"],
    )
    history = frame(
        [
            (
                int(rng.choice(ids)),
                str(rng.choice(["tires", "churn"])),
                NOW - timedelta(days=float(rng.uniform(-2, 40))),
            )
            for _ in range(int(rng.integers(0, 3 * n)))
        ],
        ["customer_id", "playbook", "ts"],
    )
    suppressed = {int(c) for c in ids if rng.random() < 0.1}
    now = NOW - timedelta(hours=float(rng.uniform(0, 24)))
    out = run(pb, cust, cand, now=now, consent=consent, history=history, suppressions=suppressed)

    for cid, region, held in zip(ids.tolist(), regions.tolist(), holdout, strict=True):
        fails = []
        if cid in suppressed:
            fails.append("suppression_list")
        mine = [
            r for r in consent.itertuples() if r.customer_id == cid and r.channel == "sms" and r.ts <= now
        ]
        latest = None
        for r in sorted(enumerate(mine), key=lambda p: (p[1].ts, p[0])):
            latest = r[1].status
        if latest != "opt_in":
            fails.append("consent")
        contacts = [r for r in history.itertuples() if r.customer_id == cid and r.ts <= now]
        week = sum(1 for r in contacts if r.playbook == "tires" and r.ts > now - timedelta(days=7))
        month = sum(1 for r in contacts if r.ts > now - timedelta(days=30))
        if week >= 1 or month >= 3:
            fails.append("frequency_cap")
        zone = {"CN": "Asia/Shanghai", "US": "America/New_York", "GB": "Europe/London"}.get(region)
        quiet = False
        if zone is None:
            fails.append("quiet_hours")
        else:
            local = now.astimezone(zoneinfo.ZoneInfo(zone)).time()
            quiet = local.hour >= 21 or local.hour < 8
        if fails:
            expected = "suppressed"
        elif held:
            expected = "holdout"
        elif quiet:
            expected = "deferred"
        else:
            expected = "raised"
        assert out.loc[cid, "status"] == expected, (cid, fails, held, quiet)
        assert out.loc[cid, "suppressed_by"] == (
            fails[0] if fails else "quiet_hours" if expected == "deferred" else None
        )
