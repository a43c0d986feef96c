"""The compiled PII scanner and its Python twin give identical output on any text.

Three kinds of input: arbitrary Unicode (everything the str type can hold, astral planes and lone
combining marks included), texts over a small alphabet of digits, separators, letters and CJK that
makes numbers and boundaries collide, and texts assembled from fragments (context words in both
languages, surnames and address markers, synthetic identifiers valid and invalid, look-alikes) that
reach every recognizer. The kernel's findings must also pass the authoritative validators.
"""

from __future__ import annotations

import random
from datetime import date
from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from appliance.masking import _lexicon, _scan_py, synth, validators

try:
    from ext import _scan as _compiled
except ImportError:  # no compiler at install time: nothing to compare
    _compiled = None

pytestmark = pytest.mark.skipif(_compiled is None, reason="ext._scan is not built")

_ARGS = _lexicon.scanner_arguments(_scan_py.TYPES, today=date.today())
PY = _scan_py.Scanner(**_ARGS)
C = _compiled.Scanner(**_ARGS) if _compiled is not None else None


def _synthetic() -> list[str]:
    out = []
    for etype, styles in synth.STYLES.items():
        for style in styles:
            for seed in range(3):
                rng = random.Random(f"{etype}/{style}/{seed}")
                out.append(synth.generate(etype, rng, style=style))
                if etype in synth.INVALID_TYPES:
                    out.append(synth.generate(etype, rng, valid=False, style=style))
    out += [synth.lookalike(random.Random(seed))[0] for seed in range(20)]
    return out


FRAGMENTS = [
    *_synthetic(),
    *(w for words in _lexicon.RAISING.values() for w in words[:6]),
    *_lexicon.LOWERING[:30],
    *_lexicon.NAME_BEFORE[:20],
    *_lexicon.NAME_BEFORE_WEAK,
    *_lexicon.HONORIFICS[:8],
    *_lexicon.SURNAMES[:20],
    *_lexicon.COMPOUND_SURNAMES[:5],
    *(m for level in _lexicon.ADDRESS_MARKERS for m in level),
    *_lexicon.ADDRESS_LEAD[:5],
    *_lexicon.PLATE_PROVINCES[:5],
    *("Street", "Ave", "Apt", "Box", "APO", "PSC", "USS", "NY", "Mr.", "Dr", "Jr.", "MD", "March", "7th"),
    *("John", "Smith", "Mary", "王", "小明", "北京", "朝阳", "建国", "here", "这边"),
    *(" ", "  ", "-", "－", ".", ",", "，", "。", ":", "：", "::", "/", "@", "+", "＋", "(", ")", "（", "）"),
    *(
        "\u3000",
        "\u00a0",
        "\n",
        "·",
        "X",
        "x",
        "Ｘ",
        "0",
        "00",
        "86",
        "1",
        "9",
        "０",
        "１",
        "年",
        "月",
        "日",
        "号",
    ),
    *("e", "E", "a", "fe80", "db8", "ff", "0011", "192", "168", "255", "256", "😀", "\u0301", "İ", "ß"),
    *("%", "%eth0", "/24", "/8", "/0", "/128", "/33", "fe80::1", "10.0.0.0", "::", "@eth0", "Mr. Mayers"),
    *("078.05.1123", ".", "number", "phones", "taxpayer id", "ITIN", "order number", "account number"),
    *("AL47-2121-1009-0000-0002-3569-8741", "09-7625400", "052 5552606", "122000000000003"),
    *("5019717010103742", "911-701234", "91170-1234", "、"),
]

ALPHABET = (
    "0123456789０１２３４５６７８９ -－.,:@+()/%XxEADGSabcf年月日号市区路省王张我叫卡身份证订单\u3000\n、，"
)


def _same(text: str) -> list[tuple[int, int, int, int, int]]:
    got = C.scan(text)
    assert got == PY.scan(text)
    return got


def _well_formed(text: str, hits: list[tuple[int, int, int, int, int]]) -> None:
    assert all(0 <= a < b <= len(text) for _, a, b, _, _ in hits)
    assert all(x[2] <= y[1] for x, y in pairwise(hits))
    assert all(0 <= t < len(_scan_py.TYPES) and 0 <= v < len(_scan_py.VALIDATORS) for t, _, _, _, v in hits)
    assert all(0 < score <= 1000 for _, _, _, score, _ in hits)


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=300))
def test_identical_on_any_unicode(text):
    _well_formed(text, _same(text))


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet=ALPHABET, max_size=120))
def test_identical_where_numbers_and_boundaries_collide(text):
    _well_formed(text, _same(text))


@settings(max_examples=600, deadline=None)
@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=25))
def test_identical_on_texts_built_from_fragments(parts):
    text = "".join(parts)
    _well_formed(text, _same(text))


def _check(etype: str, validator: str, span: str) -> bool:
    """What validators.py says about a span the kernel reported (score >= 0.5)."""
    if (
        etype == "CN_LANDLINE"
        and not validators.check(etype, span)
        and span.replace("－", "-").count("-") == 2
    ):
        span = span.replace("－", "-").rsplit("-", 1)[0]  # an extension the kernel keeps with the number
    if etype == "CN_PERMIT" and validators.normalize_digits(span).isdigit():
        return validators.cn_permit(validators.normalize_digits(span), allow_bare_digits=True)
    if etype == "BANK_CARD":
        return validators.luhn(validators.normalize_digits(span))
    return validators.check(etype, span)


CHECKED = {
    "CN_RESIDENT_ID", "CN_MOBILE", "CN_LANDLINE", "CN_USCC", "CN_PASSPORT", "CN_PERMIT", "CN_PLATE",
    "BANK_CARD", "IBAN", "US_SSN", "US_ITIN", "EMAIL", "IP_ADDRESS", "MAC_ADDRESS", "PASSPORT",
    "DATE_OF_BIRTH",
}  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=25))
def test_findings_pass_the_authoritative_validators(parts):
    text = "".join(parts)
    for t, a, b, score, v in _same(text):
        etype = _scan_py.TYPES[t]
        if score >= 500 and etype in CHECKED:
            assert _check(etype, _scan_py.VALIDATORS[v], text[a:b]), (etype, text[a:b], text)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_synthetic_values_survive_any_surroundings(data):
    """A checksum-proven value is found whatever CJK or punctuation touches it (not ASCII letters)."""
    etype = data.draw(
        st.sampled_from(["CN_RESIDENT_ID", "CN_USCC", "BANK_CARD", "IBAN", "CN_MOBILE", "EMAIL"])
    )
    value = synth.generate(etype, random.Random(data.draw(st.integers(0, 10**6))))
    # A few values prove two types at once (a 15-digit ID that is also a Luhn-valid Amex number).
    assume(not any(validators.check(t, value) for t in validators.CHECKSUM_TYPES if t != etype))
    left = data.draw(st.text(alphabet="，。：的号是卡手机 (", max_size=4))
    right = data.draw(st.text(alphabet="，。的请是。) ", max_size=4))
    text = left + value + right
    spans = {(_scan_py.TYPES[t], a, b) for t, a, b, _, _ in _same(text)}
    assert (etype, len(left), len(left) + len(value)) in spans
