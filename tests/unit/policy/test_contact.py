from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from policy.contact import ContactRules, in_quiet_hours
from policy.errors import PolicyError, UnknownChannel
from policy.library import PolicyLibrary
from policy.rule import QuietHours

MANIFEST: dict[str, Any] = {
    "name": "test",
    "version": "1.0.0",
    "industries": ["finance", "retail"],
    "channels": ["chat", "sms", "voice", "social"],
    "timezones": {"CN": "Asia/Shanghai", "US-CA": "America/Los_Angeles"},
}


def rule(rid: str, contact: dict[str, Any], **scope: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "source": f"Test Act Art. {rid}",
        "kind": "contact",
        "action": "block",
        "scope": {"regions": ["*"], **scope},
        "contact": contact,
    }


RULES = ContactRules(
    PolicyLibrary.from_data(
        MANIFEST,
        [
            rule("QUIET", {"quiet_hours": {"start": "21:00", "end": "08:00"}}, channels=["sms", "voice"]),
            rule("CAP", {"max_contacts": {"count": 2, "period_hours": 24}}, regions=["CN"]),
            rule("CHANNELS", {"allowed_channels": ["chat", "sms", "voice"]}, industries=["finance"]),
        ],
    )
)


def utc(h: int, m: int = 0) -> datetime:
    return datetime(2025, 3, 1, h, m, tzinfo=UTC)


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(20, 59), False),
        (time(21, 0), True),
        (time(23, 59), True),
        (time(0, 0), True),
        (time(7, 59), True),
        (time(8, 0), False),
        (time(12, 0), False),
    ],
)
def test_quiet_window_wraps_midnight(local: time, quiet: bool) -> None:
    assert in_quiet_hours(QuietHours(start=time(21), end=time(8)), local) is quiet


def test_daytime_window() -> None:
    assert in_quiet_hours(QuietHours(start=time(12), end=time(14)), time(13))
    assert not in_quiet_hours(QuietHours(start=time(12), end=time(14)), time(14))


def test_quiet_hours_in_the_customers_zone() -> None:
    night = RULES.check_contact("CN-GD", "sms", utc(14))  # 22:00 in Shanghai
    assert not night.allowed and night.rule == "QUIET" and "22:00" in night.reason
    assert night.local_time is not None and night.local_time.hour == 22
    assert RULES.check_contact("CN-GD", "sms", utc(2)).allowed  # 10:00
    assert RULES.check_contact("CN-GD", "chat", utc(14)).allowed  # chat is not scoped
    assert not RULES.check_contact("US-CA", "voice", utc(5, 30)).allowed  # 21:30 PST


def test_region_without_zone_needs_the_callers_zone() -> None:
    with pytest.raises(PolicyError, match="pass the customer's timezone"):
        RULES.check_contact("US", "voice", utc(12))
    assert RULES.check_contact("US", "voice", utc(16), timezone="America/Chicago").allowed  # 10:00 CST
    with pytest.raises(PolicyError, match="not an IANA zone"):
        RULES.check_contact("US", "voice", utc(16), timezone="Nowhere/City")


def test_contact_cap_with_count_or_counter() -> None:
    assert RULES.check_contact("CN", "chat", utc(3), contacts_in_window=1).allowed
    capped = RULES.check_contact("CN", "chat", utc(3), contacts_in_window=2)
    assert not capped.allowed and capped.rule == "CAP" and "limit is 2" in capped.reason
    asked: list[timedelta] = []

    def counter(period: timedelta) -> int:
        asked.append(period)
        return 5

    assert not RULES.check_contact("CN", "chat", utc(3), contacts_in_window=counter).allowed
    assert asked == [timedelta(hours=24)]


def test_allowed_channels_per_industry() -> None:
    refused = RULES.check_contact("CN", "social", utc(3), industry="finance")
    assert not refused.allowed and refused.rule == "CHANNELS"
    assert RULES.check_contact("CN", "social", utc(3), industry="retail").allowed
    # industry unknown: every industry's rules bind
    assert not RULES.check_contact("CN", "social", utc(3)).allowed


def test_naive_time_and_unknown_channel_are_errors() -> None:
    with pytest.raises(PolicyError, match="timezone-aware"):
        RULES.check_contact("CN", "sms", datetime(2025, 3, 1, 12))
    with pytest.raises(UnknownChannel):
        RULES.check_contact("CN", "fax", utc(3))


def test_default_library_us_florida() -> None:
    from pathlib import Path

    rules = ContactRules(PolicyLibrary.from_dir(Path(__file__).resolve().parents[3] / "config" / "policies"))
    d = rules.check_contact("US-FL", "voice", datetime(2025, 1, 2, 1, 30, tzinfo=UTC))  # 20:30 EST
    assert not d.allowed and d.rule == "US-FL-FTSA-LIMITS"
    d = rules.check_contact("US-NY", "voice", datetime(2025, 1, 2, 1, 30, tzinfo=UTC))
    assert d.allowed
