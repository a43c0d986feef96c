"""Type stub for the compiled PII scanner; the pure-Python twin is ``appliance/masking/_scan_py.py``."""

from collections.abc import Sequence

TYPES: tuple[str, ...]
VALIDATORS: tuple[str, ...]

class Scanner:
    """Finds PII candidates in one pass; build once from the lexicon, then call ``scan`` per text."""

    def __init__(
        self,
        *,
        raising: Sequence[Sequence[str]],
        lowering: Sequence[str],
        surnames: Sequence[str],
        compound_surnames: Sequence[str],
        name_before: Sequence[str],
        name_before_weak: Sequence[str],
        honorifics: Sequence[str],
        name_stops: Sequence[str],
        name_titles: Sequence[str],
        name_after: Sequence[str],
        name_suffixes: Sequence[str],
        given_names: Sequence[str],
        nonnames: Sequence[str],
        address_markers: Sequence[Sequence[str]],
        address_stops: Sequence[str],
        address_lead: Sequence[str],
        street_suffixes: Sequence[str],
        street_units: Sequence[str],
        us_states: Sequence[str],
        plate_provinces: Sequence[str],
        months: Sequence[str],
        iban_formats: Sequence[str],
        cn_area_codes: Sequence[str],
        today: int,
    ) -> None: ...
    def scan(self, text: str) -> list[tuple[int, int, int, int, int]]:
        """Sorted, non-overlapping ``(type, start, end, score_milli, validator)`` for ``text``."""
