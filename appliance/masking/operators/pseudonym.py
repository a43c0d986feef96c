"""Keyed pseudonyms: ``<CN_MOBILE:9f86d081…>``, the same for the same value within a tenant.

HMAC-SHA-256 under the tenant's pseudonym key, so joins and counts still work on masked data while
nobody without the key can test a guess (a plain hash of a phone number is reversed by enumerating
the 10^10 numbers). The value is normalised first, so "138 1234 5678", "+86 138-1234-5678" and
"13812345678" are one person, and "John.Doe@Example.com" equals "john.doe@example.com".
The entity type is *not* part of the MAC input: a number detected once as CN_MOBILE and once as
PHONE still joins.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import string
import unicodedata
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from appliance.masking.operators.base import Operator, OperatorContext, OperatorParams

__all__ = ["PseudonymOperator", "normalise"]

_LABEL = b"appliance/masking/pseudonym/v1\x00"
#: Identifiers whose separators and letter case carry no meaning.
_CODE_TYPES = frozenset(
    {
        "CN_RESIDENT_ID",
        "CN_USCC",
        "CN_PASSPORT",
        "CN_PERMIT",
        "CN_PLATE",
        "BANK_CARD",
        "IBAN",
        "US_SSN",
        "US_ITIN",
        "PASSPORT",
        "MAC_ADDRESS",
        "CN_LANDLINE",
    }
)
_PHONE_TYPES = frozenset({"CN_MOBILE", "PHONE"})
_NON_ALNUM = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")


def normalise(value: str, entity_type: str) -> str:
    """The form two spellings of one identifier share (NFKC folds full-width characters first)."""
    v = unicodedata.normalize("NFKC", value).strip()
    if entity_type in _PHONE_TYPES:
        digits = "".join(c for c in v if c.isdigit())
        if digits.startswith("00"):  # international call prefix: 0086..., 001...
            digits = digits[2:]
        if len(digits) == 13 and digits.startswith("86") and _CN_MOBILE.fullmatch(digits[2:]):
            digits = digits[2:]  # a CN mobile with and without +86 is one number
        return digits
    if entity_type in _CODE_TYPES:
        return _NON_ALNUM.sub("", v).upper()
    if entity_type == "IP_ADDRESS":
        try:
            return ipaddress.ip_address(v).compressed
        except ValueError:
            return v.lower()
    return _SPACES.sub(" ", v).casefold()


class PseudonymParams(OperatorParams):
    length: int = Field(default=16, ge=8, le=64)  # hex characters of the MAC shown
    template: str = "<{type}:{digest}>"

    @field_validator("template")
    @classmethod
    def _fields(cls, v: str) -> str:
        fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        if "digest" not in fields or fields - {"type", "digest"}:
            raise ValueError(
                f"template {v!r} must use {{digest}} and may use {{type}}, e.g. '<{{type}}:{{digest}}>'"
            )
        return v


class PseudonymOperator(Operator[PseudonymParams]):
    name = "pseudonym"
    Params = PseudonymParams

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._macs: dict[bytes, hmac.HMAC] = {}  # key -> HMAC primed with the label; copied per value

    def digest(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        """The hex MAC alone, for callers that store pseudonyms as keys rather than display them."""
        key = ctx.keys.pseudonym_key
        base = self._macs.get(key)
        if base is None:
            if len(self._macs) >= 64:  # a node serves few tenants; bound the cache all the same
                self._macs.clear()
            base = self._macs[key] = hmac.new(key, _LABEL, hashlib.sha256)
        mac = base.copy()
        mac.update(normalise(value, entity_type).encode())
        return mac.hexdigest()[: self.params.length]

    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        return self.params.template.format(type=entity_type, digest=self.digest(value, entity_type, ctx))
