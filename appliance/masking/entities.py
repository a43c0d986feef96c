"""The entity types the masking engine detects, and what one detection is.

The names are canonical: masking profiles, the HTTP API, the CLI's ``--spans``
output and ledger entries all use them, so a profile that names an unknown type
is refused at load rather than silently masking nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ENTITY_TYPES", "EntityType", "Finding"]


class EntityType(StrEnum):
    CN_RESIDENT_ID = "CN_RESIDENT_ID"  # GB 11643 18-digit (check char) and 15-digit legacy
    CN_MOBILE = "CN_MOBILE"  # 1[3-9]x xxxx xxxx, optional +86 / 0086
    CN_LANDLINE = "CN_LANDLINE"  # 0 + area code + 7-8 digit local number
    CN_USCC = "CN_USCC"  # Unified Social Credit Code, GB 32100 check
    CN_PASSPORT = "CN_PASSPORT"  # E/G + 8 digits, EA1234567 ...
    CN_PERMIT = "CN_PERMIT"  # HK/Macau/Taiwan travel permits (C/H/M/T...)
    CN_PLATE = "CN_PLATE"  # 京A12345, 粤B·D12345 (new-energy)
    BANK_CARD = "BANK_CARD"  # payment cards, all networks, Luhn
    IBAN = "IBAN"  # ISO 13616, mod 97
    US_SSN = "US_SSN"  # invalid ranges rejected
    US_ITIN = "US_ITIN"  # 9xx-(50-65|70-88|90-92|94-99)-xxxx
    PHONE = "PHONE"  # international numbers (libphonenumber metadata)
    EMAIL = "EMAIL"
    IP_ADDRESS = "IP_ADDRESS"  # IPv4 and IPv6
    MAC_ADDRESS = "MAC_ADDRESS"
    PASSPORT = "PASSPORT"  # non-Chinese passport numbers, in context
    DATE_OF_BIRTH = "DATE_OF_BIRTH"  # dates in a birth context
    PERSON = "PERSON"
    ADDRESS = "ADDRESS"


ENTITY_TYPES: frozenset[str] = frozenset(t.value for t in EntityType)


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected entity: offsets are code points into the ORIGINAL text, end exclusive.

    ``validator`` names the check that passed (``"gb11643"``, ``"luhn"``,
    ``"mod97"``, ...) or ``"pattern"``/``"context"`` when only the shape and
    the surrounding words speak for it, so a reviewer can tell a checksum-proven
    card from a lucky digit run.
    """

    type: str
    start: int
    end: int
    score: float
    validator: str

    def as_dict(self) -> dict[str, object]:
        return {"type": self.type, "start": self.start, "end": self.end, "score": self.score}
