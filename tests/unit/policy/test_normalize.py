"""Normalisation cases, run on the pure-Python twin and on the compiled kernel (ids py/c).

Each case is (original, normalised); span cases check that the origin map leads back to the
evasive original, whole.
"""

from __future__ import annotations

import pytest

from policy import _ac_py
from policy.normalize import Normalized, char_record, normalize, normalize_phrase

try:
    from ext import _ac as _compiled
except ImportError:  # no compiler at install time: only the twin is tested
    _compiled = None


@pytest.fixture(params=[_ac_py, _compiled], ids=["py", "c"], scope="module")
def norm(request):
    if request.param is None:
        pytest.skip("ext._ac is not built; run `python setup.py build_ext --inplace`")
    normalizer = request.param.Normalizer(char_record)

    def run(text: str) -> Normalized:
        return Normalized(*normalizer.normalize(text))

    return run


CASES = {
    # --- NFKC, case ---------------------------------------------------------------------------------
    "full-width-latin": ("ＧＵＡＲＡＮＴＥＥＤ", "guaranteed"),
    "full-width-digits-percent": ("１００％保本", "100%保本"),
    "ideographic-space": ("高\u3000收益", "高收益"),
    "ligature": ("proﬁt", "profit"),
    "circled": ("Ⓖⓤⓐⓡⓐⓝⓣⓔⓔⓓ", "guaranteed"),
    "math-bold": ("𝐠𝐮𝐚𝐫𝐚𝐧𝐭𝐞𝐞𝐝", "guaranteed"),
    "compat-ideograph-square": ("㍿", "株式会社"),
    "casefold": ("GuAranTEED", "guaranteed"),
    "casefold-sharp-s": ("Straße", "strasse"),
    "accents": ("gúaránteéd", "guaranteed"),
    "combining-stack": ("g\u0336u\u0336a\u0336r\u0336d", "guard"),
    # --- traditional -> simplified -----------------------------------------------------------------------
    "t2s-guarantee": ("保證", "保证"),
    "t2s-absolute": ("絕對", "绝对"),
    "t2s-sentence": ("穩賺不賠，無風險", "稳赚不赔 无风险"),
    "simplified-unchanged": ("保证收益", "保证收益"),
    # --- invisibles ----------------------------------------------------------------------------------
    "zwsp": ("保\u200b本", "保本"),
    "zwnj-zwj": ("gua\u200cran\u200dteed", "guaranteed"),
    "word-joiner-bom": ("\ufeffgua\u2060ranteed", "guaranteed"),
    "soft-hyphen": ("guar\u00adanteed", "guaranteed"),
    "bidi-override": ("保\u202e本", "保本"),
    "control": ("保\x00本\x07", "保本"),
    "hangul-filler": ("保\u3164本", "保本"),
    # --- separators between CJK ----------------------------------------------------------------------
    "cjk-spaces": ("保 本 保 息", "保本保息"),
    "cjk-dashes": ("保-本-保-息", "保本保息"),
    "cjk-dots": ("保.本.保.息", "保本保息"),
    "cjk-mixed": ("保 _本·保*息", "保本保息"),
    "cjk-emoji": ("保😀本", "保本"),
    "cjk-star": ("保本★保息", "保本保息"),
    "cjk-words-spaced": ("保本 保息", "保本保息"),
    "cjk-single-commas": ("保，本，保，息", "保本保息"),
    "cjk-clause-kept": ("确保，本产品安全", "确保 本产品安全"),
    "cjk-full-stop-kept": ("请确保。本周到账", "请确保 本周到账"),
    "cjk-line-break-kept": ("确保\n本金", "确保 本金"),
    "cjk-latin": ("保本 guaranteed 收益", "保本guaranteed收益"),
    # --- separators between letters ------------------------------------------------------------------
    "letters-dots": ("g.u.a.r.a.n.t.e.e.d", "guaranteed"),
    "letters-spaces": ("g u a r a n t e e d", "guaranteed"),
    "letters-dashes-spaced": ("g - u - a - r - d", "guard"),
    "letters-chain-then-word": ("r i s k free", "risk free"),
    "letters-chain-in-sentence": ("it is g.u.a.r.a.n.t.e.e.d now", "it is guaranteed now"),
    "three-letters": ("a b c", "abc"),
    "two-letters-stay": ("u s bonds", "u s bonds"),
    "abbreviation-two": ("U.S. bonds", "u s bonds"),
    "long-gap-breaks-chain": ("a    b    c", "a b c"),
    "words-stay-words": ("not guaranteed", "not guaranteed"),
    "double-space": ("guaranteed  return", "guaranteed return"),
    "punctuation-between-words": ("returns, guaranteed!", "returns guaranteed"),
    "tabs-newlines": ("high\t\treturn\nnow", "high return now"),
    "trim": ("  hi  ", "hi"),
    "digits-not-chained": ("1 2 3", "1 2 3"),
    "kept-symbols": ("$100 & #1 @ 5‰", "$100 & #1 @ 5‰"),
    # --- homoglyphs -------------------------------------------------------------------------------------
    "cyrillic": ("guаrаntееd", "guaranteed"),
    "cyrillic-paypal": ("раураl", "paypal"),
    "cyrillic-capitals": ("САSН", "cash"),
    "greek-capital-alpha": ("Αpple", "apple"),
    "greek-small": ("ρrοfit", "profit"),
    "digit-lookalike-kept": ("1OO% guaranteed", "1oo% guaranteed"),
    "zero-kept": ("g0ld", "g0ld"),
    # --- edges -----------------------------------------------------------------------------------------
    "empty": ("", ""),
    "only-separators": (" .-。\u200b ", ""),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_normalises(norm, text, expected):
    got = norm(text)
    assert got.text == expected
    assert len(got.origin) == len(got.text)


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_phrases_normalise_like_texts(text, expected):
    assert normalize_phrase(text) == expected == normalize(text).text


SPANS = {
    # (original, normalised substring, original span it must map back to)
    "cjk-spaces-whole": ("产品保 本 保 息哦", "保本保息", "保 本 保 息"),
    "letters-whole": ("it is g.u.a.r.a.n.t.e.e.d!", "guaranteed", "g.u.a.r.a.n.t.e.e.d"),
    "zero-width-inside": ("x 保\u200b本 y", "保本", "保\u200b本"),
    "traditional": ("這是保證收益", "保证", "保證"),
    "full-width": ("ＧＵＡＲＡＮＴＥＥＤ return", "guaranteed", "ＧＵＡＲＡＮＴＥＥＤ"),
    "expansion": ("1㍿", "株式", "㍿"),
    "sharp-s-half": ("Straße", "ss", "ß"),
    "words": ("not  guaranteed", "not guaranteed", "not  guaranteed"),
}


@pytest.mark.parametrize(("text", "needle", "original"), SPANS.values(), ids=SPANS.keys())
def test_spans_map_back_to_the_original(norm, text, needle, original):
    got = norm(text)
    at = got.text.index(needle)
    a, b = got.span(at, at + len(needle))
    assert text[a:b] == original


def test_origin_of_each_character(norm):
    got = norm("\u200bＡ 保")
    assert got.text == "a保"
    assert list(got.origin) == [1, 3]


def test_megabyte_text(norm):
    text = ("保 本 保 息，guaranteed returns! 最近的产品 " * 40_000)[: 1 << 20]
    got = norm(text)
    assert len(got.origin) == len(got.text)
    assert got.text.startswith("保本保息 guaranteed returns 最近的产品")


def test_normalized_is_a_frozen_value():
    got = normalize("保 本")
    with pytest.raises(AttributeError):
        got.text = "x"  # type: ignore[misc]


def test_records_are_stable_per_character():
    """Normalising a character's own output gives the same output: the per-character map is a fixpoint."""
    for cp in [*range(0x20, 0x250), *range(0x370, 0x500), *range(0x3000, 0x3100), *range(0xFF00, 0xFFF0)]:
        out = "".join(chr(c) for c, _ in char_record(cp))
        again = "".join(chr(c) for ch in out for c, _ in char_record(ord(ch)))
        assert again == out, hex(cp)


@pytest.mark.parametrize("kernel", [_ac_py, _compiled], ids=["py", "c"])
def test_reentrant_use_while_a_record_is_computed(kernel):
    """The record callback is Python: another thread (here: the callback itself) may normalise a
    long text meanwhile; neither call may see the other's buffer."""
    if kernel is None:
        pytest.skip("ext._ac is not built; run `python setup.py build_ext --inplace`")
    inner: list[tuple[str, object]] = []

    def record(cp: int) -> tuple[tuple[int, int], ...]:
        if cp == ord("息") and not inner:
            inner.append(normalizer.normalize("保 本 inner ＴＥＸＴ " * 500))
        return char_record(cp)

    normalizer = kernel.Normalizer(record)
    outer = "保 本 保 息，g.u.a.r.d " * 300
    reference = _ac_py.Normalizer(char_record)
    assert normalizer.normalize(outer) == reference.normalize(outer)
    assert inner == [reference.normalize("保 本 inner ＴＥＸＴ " * 500)]
