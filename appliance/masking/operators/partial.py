"""Partial masking: keep the first N and last M characters, mask the rest (``138****5678``).

Only letters and digits are counted and masked, so separators survive ("138-****-5678") and the
reader still recognises the shape; full-width digits and CJK characters count as one character each
(code points, never bytes). A short value never shows more than half of itself: when the configured
keeps would cover the whole value they shrink, so ``keep_last: 4`` on a 4-digit value shows 2.
Emails keep the first character of the local part and the domain, with a fixed run of mask
characters so the local part's length is not revealed (``j***@example.com``).
"""

from __future__ import annotations

from pydantic import Field

from appliance.masking.operators.base import Operator, OperatorContext, OperatorParams

__all__ = ["PartialOperator", "mask_partial"]


class PartialParams(OperatorParams):
    keep_first: int = Field(default=0, ge=0, le=64)
    keep_last: int = Field(default=4, ge=0, le=64)
    mask_char: str = Field(default="*", min_length=1, max_length=1)
    email_keep_domain: bool = True


def mask_partial(value: str, keep_first: int, keep_last: int, mask_char: str = "*") -> str:
    """Mask the letters/digits of ``value`` except the first ``keep_first`` and last ``keep_last``."""
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    n = len(positions)
    if keep_first + keep_last >= n:
        allowed = n // 2
        keep_first = min(keep_first, allowed)
        keep_last = min(keep_last, allowed - keep_first)
    masked = positions[keep_first : n - keep_last]
    if not masked:
        return value
    chars = list(value)
    for i in masked:
        chars[i] = mask_char
    return "".join(chars)


class PartialOperator(Operator[PartialParams]):
    name = "partial"
    Params = PartialParams

    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        p = self.params
        if entity_type == "EMAIL" and ("@" in value or "＠" in value):
            return self._email(value)
        return mask_partial(value, p.keep_first, p.keep_last, p.mask_char)

    def _email(self, value: str) -> str:
        local, at, domain = value.rpartition("@" if "@" in value else "＠")
        m = self.params.mask_char
        head = local[:1] + m * 3 if local else m * 3
        if not self.params.email_keep_domain:
            _, dot, tld = domain.rpartition(".")
            domain = m * 3 + dot + tld if dot else m * 3
        return f"{head}{at}{domain}"
