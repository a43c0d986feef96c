"""The PII analyzer: text in, sorted non-overlapping :class:`Finding` objects out.

All detection happens in the scanner kernel (``ext/_scan.pyx``, or its twin ``_scan_py.py``), built
once from ``_lexicon``; this module turns its integer tuples into findings and finishes the one check
the kernel leaves open on purpose: phone numbers outside mainland China, which need libphonenumber's
metadata. The kernel marks two kinds of candidates, so the slow path runs for a handful of spans, never
per message; here they become ``libphonenumber`` or are dropped:

* ``phone-candidate``: ``+``/``00`` international numbers and NANP shapes (checked as US numbers);
* ``phone-national``: 8-12 digit national-format numbers ("09-7625400", "052 5552606") that the kernel
  proposes only where the nearest context word is a phone word ("phone", "number", "call", 电话 ...).
  Kept if libphonenumber calls the number valid in one of the analyzer's ``phone_regions`` (default
  ``_lexicon.PHONE_REGIONS``) *as written*: the digits must be the number's national format there,
  trunk prefix included, so "2345678901" is no German number although libphonenumber would read one.

Why the analyzer is this thin: the hot path must stay at tens of thousands of messages per second per
core with every recognizer on, so per call it allocates the findings and nothing else. Entity filters
are resolved once per distinct filter object and cached as a bit mask.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from functools import lru_cache

import phonenumbers
from phonenumbers.phonenumberutil import NumberParseException

from appliance.masking import _kernel, _lexicon
from appliance.masking.entities import ENTITY_TYPES, Finding
from appliance.masking.errors import UnknownEntityType

__all__ = ["Analyzer"]

_TYPES = _kernel.TYPES
_VALIDATORS = tuple(
    "libphonenumber" if v in ("phone-candidate", "phone-national") else v for v in _kernel.VALIDATORS
)
_PHONE_CANDIDATE = _kernel.VALIDATORS.index("phone-candidate")
_PHONE_NATIONAL = _kernel.VALIDATORS.index("phone-national")
_ALL = (1 << len(_TYPES)) - 1
_DIGITS = {**{c: chr(c - 0xFEE0) for c in range(0xFF10, 0xFF1A)}, 0xFF0B: "+"}
_MASK_CACHE_SIZE = 64

if set(_TYPES) != ENTITY_TYPES:  # pragma: no cover - a programming error, caught at import
    raise ImportError("the scanner's TYPES and appliance.masking.entities.EntityType disagree")


@lru_cache(maxsize=4096)
def _phone_valid(span: str) -> bool:
    """libphonenumber's verdict on a kernel phone candidate (``+``/``00`` international, else NANP)."""
    folded = span.translate(_DIGITS)
    digits = "".join(c for c in folded if "0" <= c <= "9")
    region: str | None = None
    if "+" in folded:
        number = "+" + digits
    elif digits.startswith("00"):
        number = "+" + digits[2:]
    else:
        number, region = digits, "US"
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, region))
    except NumberParseException:
        return False


@lru_cache(maxsize=4096)
def _national_valid(span: str, regions: tuple[str, ...]) -> bool:
    """Whether a kernel ``phone-national`` candidate is a valid number of one of ``regions``, written in
    that region's national format (the same digits, trunk prefix included)."""
    digits = "".join(c for c in span.translate(_DIGITS) if "0" <= c <= "9")
    for region in regions:
        try:
            number = phonenumbers.parse(digits, region)
        except NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        if "".join(c for c in national if "0" <= c <= "9") == digits:
            return True
    return False


def _check_regions(regions: Iterable[str]) -> tuple[str, ...]:
    if isinstance(regions, str):
        raise ValueError("phone_regions: need a collection of region codes, not one string")
    out = tuple(regions)
    unknown = [r for r in out if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(
            f"phone_regions: {', '.join(map(repr, unknown))} not a region libphonenumber knows "
            "(ISO 3166 alpha-2, upper case)"
        )
    return out


@lru_cache(maxsize=1)
def _default_scanner() -> object:
    return _kernel.Scanner(**_lexicon.scanner_arguments(_TYPES))


class Analyzer:
    """Detects PII with one scanner; cheap to call, safe to share between threads."""

    __slots__ = ("_masks", "_regions", "_scan")

    def __init__(self, scanner: object, *, phone_regions: Iterable[str] = _lexicon.PHONE_REGIONS) -> None:
        """``phone_regions``: where national-format phone numbers (no ``+``) may come from, as ISO 3166
        region codes; ``()`` reports none of them."""
        self._scan = scanner.scan  # type: ignore[attr-defined]
        self._masks: dict[object, int] = {}
        self._regions = _check_regions(phone_regions)

    @classmethod
    def default(cls, *, phone_regions: Iterable[str] = _lexicon.PHONE_REGIONS) -> Analyzer:
        """An analyzer over the built-in lexicon (the scanner is built once per process)."""
        return cls(_default_scanner(), phone_regions=phone_regions)

    @property
    def phone_regions(self) -> tuple[str, ...]:
        """The regions national-format phone numbers are checked against."""
        return self._regions

    @property
    def implementation(self) -> str:
        """``"c"`` for the compiled scanner, ``"py"`` for the twin."""
        return _kernel.IMPLEMENTATION

    @staticmethod
    def supported_entities() -> tuple[str, ...]:
        return _TYPES

    def _mask(self, entities: Collection[str] | None) -> int:
        if entities is None:
            return _ALL
        try:
            return self._masks[entities]
        except (KeyError, TypeError):  # new filter, or an unhashable one (a list)
            pass
        mask = 0
        unknown = []
        for name in entities:
            if name in ENTITY_TYPES:
                mask |= 1 << _TYPES.index(name)
            else:
                unknown.append(name)
        if unknown:
            raise UnknownEntityType(
                f"unknown entity type(s) {', '.join(map(repr, sorted(map(str, unknown))))}; "
                f"known: {', '.join(sorted(ENTITY_TYPES))}"
            )
        try:
            if len(self._masks) >= _MASK_CACHE_SIZE:
                self._masks.clear()
            self._masks[entities] = mask
        except TypeError:
            pass
        return mask

    def analyze(
        self, text: str, *, entities: Collection[str] | None = None, min_score: float = 0.5
    ) -> list[Finding]:
        """Findings in ``text`` (offsets in code points, end exclusive), sorted and non-overlapping.

        ``entities`` limits the types reported (unknown names raise :class:`UnknownEntityType`);
        ``min_score`` drops weaker findings: 0.5 keeps checksum-proven values and context-backed shapes,
        and drops shapes that sit next to words like "订单号" or "tracking".
        """
        mask = self._mask(entities)
        floor = math.ceil(min_score * 1000 - 1e-9)
        out: list[Finding] = []
        for t, start, end, score, v in self._scan(text):
            if score < floor or not (mask >> t) & 1:
                continue
            if v == _PHONE_CANDIDATE and not _phone_valid(text[start:end]):
                continue
            if v == _PHONE_NATIONAL and not _national_valid(text[start:end], self._regions):
                continue
            out.append(Finding(_TYPES[t], start, end, score / 1000, _VALIDATORS[v]))
        return out

    def analyze_batch(
        self, texts: Iterable[str], *, entities: Collection[str] | None = None, min_score: float = 0.5
    ) -> list[list[Finding]]:
        """``analyze`` for each text, with the filter resolved once."""
        self._mask(entities)
        return [self.analyze(t, entities=entities, min_score=min_score) for t in texts]
