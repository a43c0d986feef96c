"""Contact rules for proactive service: quiet hours in the customer's local time, allowed channels,
and caps on contacts per period.

Quiet hours are judged in the customer's zone, because the laws are (TCPA: "local time at the called
party's location"). The zone comes from the caller (``timezone=``) or the library's ``timezones`` map,
most specific region first (``US-FL`` before ``US``); a region with no known zone is refused rather than
guessed, since a wrong guess would call someone at night. A contact is allowed only if every binding
rule allows it; the first refusal (by rule id) is reported.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from policy.errors import PolicyError
from policy.library import PolicyLibrary
from policy.rule import QuietHours

__all__ = ["ContactDecision", "ContactRules", "in_quiet_hours"]

#: How many contacts the customer had in the last ``period`` (the caller counts; we never store them).
Counter = Callable[[timedelta], int]


@dataclass(frozen=True)
class ContactDecision:
    """Whether a proactive contact may be made now, and if not which rule refused and why."""

    allowed: bool
    reason: str
    rule: str | None
    policy_version: str
    local_time: datetime | None = None


def in_quiet_hours(window: QuietHours, local: time) -> bool:
    """Whether local wall-clock ``local`` is inside ``window`` (start inclusive, end exclusive; may wrap)."""
    start, end = window.start, window.end
    if start < end:
        return start <= local < end
    return local >= start or local < end


class ContactRules:
    """The contact rules of one library version."""

    def __init__(self, library: PolicyLibrary) -> None:
        self.library = library

    def timezone_for(self, region: str) -> zoneinfo.ZoneInfo | None:
        ctx = self.library.context(region=region, industry=None, channel=None)
        for code in ctx.chain:
            name = self.library.timezones.get(code)
            if name is not None:
                return zoneinfo.ZoneInfo(name)
        return None

    def check_contact(
        self,
        region: str,
        channel: str,
        at: datetime,
        *,
        contacts_in_window: int | Counter = 0,
        industry: str | None = None,
        timezone: str | None = None,
    ) -> ContactDecision:
        """May the customer in ``region`` be contacted on ``channel`` at ``at`` (an aware datetime)?

        ``contacts_in_window``: contacts already made to this customer, either one number (the caller's
        own window) or a function from a rule's period to the count in that period (exact per rule).
        ``industry=None`` binds the rules of every industry (fail closed).
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise PolicyError(
                "`at` must be timezone-aware (e.g. datetime.now(UTC)); a naive time is ambiguous"
            )
        ctx = self.library.context(region=region, industry=industry, channel=channel, at=at)
        rules = self.library.applicable(ctx, ("contact",))
        version = self.library.version_id
        local: datetime | None = None
        for rule in rules:
            spec = rule.contact
            assert spec is not None  # kind contact guarantees it
            if spec.allowed_channels is not None and ctx.channel not in spec.allowed_channels:
                return ContactDecision(
                    False,
                    f"channel {channel!r} is not allowed here; use one of: "
                    f"{', '.join(spec.allowed_channels)}",
                    rule.id,
                    version,
                )
            if spec.quiet_hours is not None:
                if local is None:
                    local = at.astimezone(self._zone(region, timezone))
                if in_quiet_hours(spec.quiet_hours, local.time()):
                    window = f"{spec.quiet_hours.start:%H:%M}-{spec.quiet_hours.end:%H:%M}"
                    return ContactDecision(
                        False,
                        f"{local:%H:%M} local time ({local.tzname()}) is inside the quiet hours {window}; "
                        "try again after they end",
                        rule.id,
                        version,
                        local,
                    )
            if spec.max_contacts is not None:
                period = timedelta(hours=spec.max_contacts.period_hours)
                count = contacts_in_window(period) if callable(contacts_in_window) else contacts_in_window
                if count >= spec.max_contacts.count:
                    return ContactDecision(
                        False,
                        f"{count} contacts already in the last {spec.max_contacts.period_hours} h; "
                        f"the limit is {spec.max_contacts.count}",
                        rule.id,
                        version,
                        local,
                    )
        return ContactDecision(True, "no contact rule objects", None, version, local)

    def _zone(self, region: str, timezone: str | None) -> zoneinfo.ZoneInfo:
        if timezone is not None:
            try:
                return zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise PolicyError(
                    f"timezone {timezone!r} is not an IANA zone; use e.g. 'America/Chicago'"
                ) from exc
        zone = self.timezone_for(region)
        if zone is None:
            raise PolicyError(
                f"no time zone is known for region {region!r} (it may span several); pass the customer's "
                "timezone=... or a subdivision code such as US-CA"
            )
        return zone
