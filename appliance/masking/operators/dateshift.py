"""Per-subject date shifting: every date of one subject moves by the same secret number of days.

Intervals within a subject survive (days between admission and complaint, age at an event to within
the shift), while the calendar dates do not; different subjects move by different amounts, so dates
cannot be lined up across subjects. The offset is HMAC(pseudonym key, subject) mapped into
[-max_days, -1] ∪ [1, max_days] (never 0: an unshifted subject would be a silent leak). The output
keeps the input's format.

Without a subject there is nothing to keep consistent, and a per-call offset would link nothing
while still revealing the date to within ``max_days``; the operator then outputs the year only.
Unparseable values become the type tag.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from pydantic import Field

from appliance.masking.operators._dates import parse_date
from appliance.masking.operators.base import Operator, OperatorContext, OperatorParams

__all__ = ["DateShiftOperator", "subject_offset"]

_LABEL = b"appliance/masking/dateshift/v1\x00"


def subject_offset(pseudonym_key: bytes, subject: str, max_days: int) -> int:
    """The subject's shift in days, never 0, within ±``max_days``."""
    mac = hmac.new(pseudonym_key, _LABEL + subject.encode(), hashlib.sha256).digest()
    magnitude = int.from_bytes(mac[:8], "big") % max_days + 1
    return magnitude if mac[8] & 1 else -magnitude


class DateShiftParams(OperatorParams):
    max_days: int = Field(default=30, ge=1, le=3650)
    day_first: bool = True


class DateShiftOperator(Operator[DateShiftParams]):
    name = "dateshift"
    Params = DateShiftParams
    needs_subject = True

    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        parsed = parse_date(value, day_first=self.params.day_first)
        if parsed is None:
            return f"<{entity_type}>"
        if ctx.subject is None:
            return str(parsed.value.year)
        days = subject_offset(ctx.keys.pseudonym_key, ctx.subject, self.params.max_days)
        try:
            return parsed.render(parsed.value + timedelta(days=days))
        except OverflowError:
            return f"<{entity_type}>"
