"""Synthetic customers and events with planted signal, generated with numpy only (no per-event loop).

Tests, the demo and the end-to-end benchmark need realistic *shapes* at any size (a million customers
and twenty million events in seconds) and signal a playbook can find:

* churners (8 %) whose activity fades towards a churn time in ``[as_of - 120 d, as_of + 30 d)``, with
  complaints, support contacts and failed payments concentrated in the 30 days before it and a
  ``subscription_cancelled`` event at it (if it is before ``as_of``);
* tire-pressure searchers (3 %) with a burst of 3 to 6 searches (zh/en, full-width, traditional and
  upper-case variants, some ``TPMS_*`` telemetry) within 6 days, about half of the bursts in the last
  week before ``as_of``, and 40 % of them buying in a store within 14 days of the burst; a few other
  customers search a tire phrase once (noise).

Everything else is background: logins, page views, searches, purchases and so on, over the 180 days
before ``as_of`` (or since the customer was created). ``kind``, ``channel`` and ``text`` come back as
pandas categoricals (compact at 20 M rows; missing values are NaN); the same seed gives the same data.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from predictors.errors import DataError
from predictors.playbook import DEFAULT_EVENT_KINDS

__all__ = ["HISTORY_DAYS", "KINDS", "generate"]

DAY_NS = 86_400 * 10**9
HISTORY_DAYS = 180
#: The store schema's event kinds, in the order the generator indexes them.
KINDS: tuple[str, ...] = DEFAULT_EVENT_KINDS
_K = {k: i for i, k in enumerate(KINDS)}
# Background kind mix: ordinary customers, and churners in the 30 days before they leave.
_MIX = {
    "login": (0.30, 0.26),
    "logout": (0.10, 0.08),
    "page_view": (0.30, 0.26),
    "search": (0.12, 0.10),
    "add_to_cart": (0.05, 0.02),
    "purchase": (0.04, 0.01),
    "refund": (0.005, 0.01),
    "complaint": (0.003, 0.06),
    "support_contact": (0.01, 0.07),
    "plan_change": (0.002, 0.01),
    "subscription_cancelled": (0.0, 0.0),
    "payment_failed": (0.002, 0.05),
    "survey": (0.003, 0.01),
    "telemetry": (0.065, 0.06),
}
CHANNELS: tuple[str, ...] = ("web", "app", "phone", "chat", "email", "store", "sms", "wechat", "vehicle")
_C = {c: i for i, c in enumerate(CHANNELS)}
# Three equally likely channels per kind (None = no channel).
_KIND_CHANNELS = {
    "login": ("app", "app", "web"),
    "logout": ("app", "web", "web"),
    "page_view": ("app", "web", "web"),
    "search": ("app", "web", "web"),
    "add_to_cart": ("app", "web", "web"),
    "purchase": ("web", "app", "store"),
    "refund": ("web", "web", "store"),
    "complaint": ("phone", "chat", "email"),
    "support_contact": ("phone", "chat", "chat"),
    "plan_change": ("web", "app", "phone"),
    "subscription_cancelled": ("web", "phone", "phone"),
    "payment_failed": (None, None, None),
    "survey": ("email", "email", "sms"),
    "telemetry": ("app", "vehicle", "vehicle"),
}
_QUERIES_ZH = (
    "套餐资费",
    "账单查询",
    "退款进度",
    "流量包",
    "会员权益",
    "发票",
    "保养预约",
    "门店地址",
    "违章查询",
)
_QUERIES_EN = (
    "data plan",
    "billing",
    "refund status",
    "roaming",
    "premium benefits",
    "invoice",
    "store hours",
)
_PAGES = ("/home", "/billing", "/plans", "/offers", "/support", "/account", "/vehicle")
_TELEMETRY = ("app.open", "app.crash", "battery.ok", "gps.fix", "firmware.update", "door.lock")
_TIRE_ZH = ("胎压异常", "胎压报警灯亮了", "轮胎气压低怎么办", "胎压灯一直亮", "胎壓異常", "胎压报警")
_TIRE_EN = (
    "tire pressure warning",
    "TPMS light on",
    "low tyre pressure",
    "Tire Pressure sensor",
    "ＴＩＲＥ ＰＲＥＳＳＵＲＥ",
)
_TIRE_TELEMETRY = ("TPMS_LOW_PRESSURE", "TPMS_WARN")
_CANCEL_ZH = ("取消订阅", "怎么退订", "注销账户")
_CANCEL_EN = ("cancel subscription", "how to close account", "Cancel my plan")
_REGIONS = ("CN", "US", "HK", "TW", "SG", "GB", "EU", "MO")
_REGION_P = (0.45, 0.20, 0.08, 0.07, 0.05, 0.05, 0.08, 0.02)
_ZH_SHARE = {"CN": 0.95, "HK": 0.85, "TW": 0.9, "MO": 0.9, "SG": 0.5}
_US_ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")


def _texts() -> tuple[list[str], dict[str, np.ndarray]]:
    vocab: list[str] = []
    groups: dict[str, np.ndarray] = {}
    for name, words in (
        ("zh", _QUERIES_ZH),
        ("en", _QUERIES_EN),
        ("page", _PAGES),
        ("telemetry", _TELEMETRY),
        ("tire_zh", _TIRE_ZH),
        ("tire_en", _TIRE_EN),
        ("tire_telemetry", _TIRE_TELEMETRY),
        ("cancel_zh", _CANCEL_ZH),
        ("cancel_en", _CANCEL_EN),
    ):
        groups[name] = np.arange(len(vocab), len(vocab) + len(words))
        vocab.extend(words)
    return vocab, groups


def _pick(rng: np.random.Generator, options: np.ndarray, n: int) -> np.ndarray:
    picked: np.ndarray = options[rng.integers(0, len(options), n)]
    return picked


def generate(
    n_customers: int, n_events: int, seed: int, as_of: datetime | pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(customers, events)`` in the shapes :func:`predictors.features.build_features` takes.

    ``customers`` is indexed by ``customer_id`` (1..n) with region, time_zone (explicit for most US
    customers, else None), preferred_language, segment, plan and created; ``events`` has about
    ``n_events`` rows (exactly, unless the planted events alone exceed it), all before ``as_of``, in
    shuffled order.
    """
    if n_customers < 1 or n_events < 0:
        raise DataError(f"need n_customers >= 1 and n_events >= 0, not {n_customers} and {n_events}")
    stamp = pd.Timestamp(as_of)
    if stamp.tzinfo is None:
        raise DataError("as_of must be timezone-aware, e.g. datetime(2024, 5, 1, tzinfo=UTC)")
    end = int(stamp.tz_convert("UTC").as_unit("ns").value)
    rng = np.random.default_rng(seed)
    n = n_customers
    ids = np.arange(1, n + 1, dtype=np.int64)

    # -- customers --------------------------------------------------------------------------------------
    region_i = rng.choice(len(_REGIONS), size=n, p=_REGION_P)
    regions = np.array(_REGIONS, dtype=object)[region_i]
    zh_share = np.array([_ZH_SHARE.get(r, 0.05) for r in _REGIONS])[region_i]
    lang = np.where(rng.random(n) < zh_share, "zh", "en").astype(object)
    lang[rng.random(n) < 0.05] = None
    zones = np.full(n, None, dtype=object)
    us = np.flatnonzero(regions == "US")
    explicit = us[rng.random(len(us)) < 0.7]
    zones[explicit] = _pick(rng, np.array(_US_ZONES, dtype=object), len(explicit))
    segment = _pick(
        rng, np.array(("mass", "mass", "mass", "affluent", "affluent", "private", "sme"), dtype=object), n
    )
    plan = _pick(rng, np.array(("basic", "basic", "plus", "plus", "premium"), dtype=object), n)
    age_days = np.where(rng.random(n) < 0.05, rng.uniform(5, 60, n), rng.uniform(60, 2000, n))
    created = end - (age_days * DAY_NS).astype(np.int64)
    customers = pd.DataFrame(
        {
            "region": pd.array(regions, dtype=object),
            "time_zone": pd.array(zones, dtype=object),
            "preferred_language": pd.array(lang, dtype=object),
            "segment": pd.array(segment, dtype=object),
            "plan": pd.array(plan, dtype=object),
            "created": pd.Series(created.view("datetime64[ns]")).dt.tz_localize("UTC").array,
        },
        index=pd.Index(ids, name="customer_id"),
    )

    # -- who is who ------------------------------------------------------------------------------------
    churner = rng.random(n) < 0.08
    tire = rng.random(n) < 0.03
    churn_at = end + (rng.uniform(-120, 30, n) * DAY_NS).astype(np.int64)
    start = np.maximum(created, end - HISTORY_DAYS * DAY_NS)
    stop = np.where(churner, np.minimum(churn_at, end), end)
    span = np.maximum(stop - start, 0)

    # -- planted events ---------------------------------------------------------------------------------
    vocab, groups = _texts()
    planted: list[tuple[np.ndarray, ...]] = []  # (customer idx, ts, kind, channel, amount, text)
    leaving = np.flatnonzero(churner & (churn_at < end) & (churn_at > start))
    planted.append(
        (
            leaving,
            churn_at[leaving],
            np.full(len(leaving), _K["subscription_cancelled"]),
            _pick(rng, np.array([_C["web"], _C["phone"]]), len(leaving)),
            np.full(len(leaving), np.nan),
            np.full(len(leaving), -1),
        )
    )
    searchers = np.flatnonzero(tire)
    recent = rng.random(len(searchers)) < 0.5
    burst_end = end - (
        np.where(recent, rng.uniform(0.05, 1.0, len(searchers)), rng.uniform(8, 60, len(searchers))) * DAY_NS
    ).astype(np.int64)
    per = rng.integers(3, 7, len(searchers))
    who = np.repeat(np.arange(len(searchers)), per)
    ts = burst_end[who] - (rng.uniform(0, 6.0, len(who)) * DAY_NS).astype(np.int64)
    zh = lang[searchers[who]] == "zh"
    is_tel = rng.random(len(who)) < 0.15
    text = np.where(zh, _pick(rng, groups["tire_zh"], len(who)), _pick(rng, groups["tire_en"], len(who)))
    text = np.where(is_tel, _pick(rng, groups["tire_telemetry"], len(who)), text)
    planted.append(
        (
            searchers[who],
            ts,
            np.where(is_tel, _K["telemetry"], _K["search"]),
            np.where(is_tel, _C["vehicle"], _pick(rng, np.array([_C["app"], _C["web"]]), len(who))),
            np.full(len(who), np.nan),
            text,
        )
    )
    buyers = np.flatnonzero(rng.random(len(searchers)) < 0.4)
    bought = burst_end[buyers] + (rng.uniform(0.2, 14, len(buyers)) * DAY_NS).astype(np.int64)
    ok = bought < end
    buyers, bought = buyers[ok], bought[ok]
    planted.append(
        (
            searchers[buyers],
            bought,
            np.full(len(buyers), _K["purchase"]),
            np.full(len(buyers), _C["store"]),
            np.round(rng.lognormal(5.0, 0.5, len(buyers)), 2),
            np.full(len(buyers), -1),
        )
    )
    noise = np.flatnonzero((rng.random(n) < 0.01) & ~tire)
    planted.append(
        (
            noise,
            end - (rng.uniform(0.01, 30, len(noise)) * DAY_NS).astype(np.int64),
            np.full(len(noise), _K["search"]),
            np.full(len(noise), _C["web"]),
            np.full(len(noise), np.nan),
            _pick(rng, np.concatenate([groups["tire_zh"], groups["tire_en"]]), len(noise)),
        )
    )
    columns = [np.concatenate(parts) for parts in zip(*planted, strict=True)]
    if len(columns[0]) > n_events:
        keep = np.sort(rng.choice(len(columns[0]), n_events, replace=False))
        columns = [c[keep] for c in columns]
    m = n_events - len(columns[0])

    # -- background events -------------------------------------------------------------------------------
    activity = rng.lognormal(0.0, 0.8, n) * span
    weights = activity / activity.sum() if activity.sum() > 0 else np.full(n, 1.0 / n)
    counts = rng.multinomial(m, weights)
    cust = np.repeat(np.arange(n), counts)
    u = rng.random(m)
    fade = churner[cust]
    distance = np.where(fade, np.sqrt(u), u) * span[cust]  # churners: density falls towards churn
    ts = stop[cust] - 1 - distance.astype(np.int64)
    near_churn = fade & (distance < 30 * DAY_NS)
    table = np.array([_MIX[k] for k in KINDS])  # kinds x 2
    cum = np.cumsum(table / table.sum(axis=0), axis=0)
    draw = rng.random(m)
    kind = np.where(
        near_churn,
        np.searchsorted(cum[:, 1], draw, side="right"),
        np.searchsorted(cum[:, 0], draw, side="right"),
    ).clip(0, len(KINDS) - 1)
    chan_table = np.array(
        [[_C[c] if c is not None else -1 for c in _KIND_CHANNELS[k]] for k in KINDS], dtype=np.int64
    )
    channel = chan_table[kind, rng.integers(0, 3, m)]
    amount = np.full(m, np.nan)
    buy = kind == _K["purchase"]
    amount[buy] = np.round(rng.lognormal(4.0, 1.0, int(buy.sum())), 2)
    back = kind == _K["refund"]
    amount[back] = -np.round(rng.lognormal(3.5, 0.8, int(back.sum())), 2)
    text = np.full(m, -1)
    search = kind == _K["search"]
    zh_cust = lang[cust[search]] == "zh"
    text[search] = np.where(
        zh_cust,
        _pick(rng, groups["zh"], int(search.sum())),
        _pick(rng, groups["en"], int(search.sum())),
    )
    # A third of churners' searches in their last 30 days are about leaving.
    leave = search & near_churn & (rng.random(m) < 0.33)
    zh_leave = lang[cust[leave]] == "zh"
    text[leave] = np.where(
        zh_leave,
        _pick(rng, groups["cancel_zh"], int(leave.sum())),
        _pick(rng, groups["cancel_en"], int(leave.sum())),
    )
    page = kind == _K["page_view"]
    text[page] = _pick(rng, groups["page"], int(page.sum()))
    tel = kind == _K["telemetry"]
    text[tel] = _pick(rng, groups["telemetry"], int(tel.sum()))

    cust = np.concatenate([columns[0], cust])
    ts = np.concatenate([columns[1], ts])
    kind = np.concatenate([columns[2], kind])
    channel = np.concatenate([columns[3], channel])
    amount = np.concatenate([columns[4], amount])
    text = np.concatenate([columns[5], text])
    order = rng.permutation(len(cust))
    events = pd.DataFrame(
        {
            "customer_id": ids[cust[order]],
            "ts": pd.Series(ts[order].view("datetime64[ns]")).dt.tz_localize("UTC"),
            "kind": pd.Categorical.from_codes(kind[order].astype(np.int16), categories=list(KINDS)),
            "channel": pd.Categorical.from_codes(channel[order].astype(np.int16), categories=list(CHANNELS)),
            "amount": amount[order],
            "text": pd.Categorical.from_codes(text[order].astype(np.int16), categories=vocab),
        }
    )
    return customers, events
