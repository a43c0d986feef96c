"""The compiled phrase kernel (``ext/_ac.pyx``) and its Python twin agree, and both are right.

Equality: the two normalisers give the same text and origins on any Unicode and on texts over a
small alphabet where separators, CJK, single letters, look-alikes and invisibles collide; the two
automata report the same matches, in the same order, for random libraries on random texts.
Correctness, against a brute-force oracle on the normalised text: every occurrence of every phrase
that respects the word boundaries is reported exactly once, and nothing else; spans map back inside
the original text.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from policy import _ac_py
from policy.matcher import PhraseMatcher
from policy.normalize import Normalized, char_record, normalize_phrase

try:
    from ext import _ac as _compiled
except ImportError:  # no compiler at install time: nothing to compare
    _compiled = None

NOT_BUILT = "ext._ac is not built; run `python setup.py build_ext --inplace`"
PY_NORM = _ac_py.Normalizer(char_record)
C_NORM = _compiled.Normalizer(char_record) if _compiled is not None else None

ALPHABET = (
    "abcdegnrtuxyzAGUZ019 .-_,，。、·*/\n\t\u3000\u200b\u00ad\ufeff保本息证證最近绝對收益高"
    "ＡＧｕ０аеорсΑΟéü\u0301ß㍿ﬁ%$😀"
)
PHRASE_ALPHABET = "abegnrtu01 .-保本息证最近绝对收益高%"

texts = st.text(alphabet=ALPHABET, max_size=80)
phrases = st.lists(st.text(alphabet=PHRASE_ALPHABET, min_size=1, max_size=6), min_size=1, max_size=12)


def _normalizers() -> list[_ac_py.Normalizer]:
    return [PY_NORM] if C_NORM is None else [PY_NORM, C_NORM]


def _library(raw: list[str]) -> list[str]:
    kept = [p for p in raw if normalize_phrase(p)]
    assume(kept)
    return kept


def _oracle(matcher: PhraseMatcher, text: str) -> list[tuple[int, int, int]]:
    """Every boundary-respecting occurrence, found by str.find on the normalised text."""
    out = []
    for idx, phrase in enumerate(matcher.normalized_phrases):
        at = text.find(phrase)
        while at >= 0:
            end = at + len(phrase)
            left_ok = not (_word(phrase[0]) and at > 0 and _word(text[at - 1]))
            right_ok = not (_word(phrase[-1]) and end < len(text) and _word(text[end]))
            if left_ok and right_ok:
                out.append((idx, at, end))
            at = text.find(phrase, at + 1)
    return sorted(out)


def _word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@pytest.mark.skipif(_compiled is None, reason=NOT_BUILT)
@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=200))
def test_normalizers_agree_on_any_unicode(text):
    assert C_NORM.normalize(text) == PY_NORM.normalize(text)


@pytest.mark.skipif(_compiled is None, reason=NOT_BUILT)
@settings(max_examples=600, deadline=None)
@given(text=texts)
def test_normalizers_agree_where_separators_collide(text):
    assert C_NORM.normalize(text) == PY_NORM.normalize(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=120))
def test_origins_point_into_the_text_in_order(text):
    for norm in _normalizers():
        out, origin = norm.normalize(text)
        assert len(out) == len(origin)
        assert all(0 <= o < len(text) for o in origin)
        assert all(a <= b for a, b in pairwise(origin))
        assert not out.startswith(" ") and not out.endswith(" ") and "  " not in out


@pytest.mark.skipif(_compiled is None, reason=NOT_BUILT)
@settings(max_examples=400, deadline=None)
@given(raw=phrases, text=texts)
def test_automata_agree_on_random_libraries(raw, text):
    lib = _library(raw)
    py = PhraseMatcher.compile(lib, automaton=_ac_py.Automaton)
    c = PhraseMatcher.compile(lib, automaton=_compiled.Automaton)
    norm = Normalized(*PY_NORM.normalize(text))
    assert c._automaton.scan(norm.text) == py._automaton.scan(norm.text)
    assert c.find_normalized(norm) == py.find_normalized(norm)


@pytest.mark.skipif(_compiled is None, reason=NOT_BUILT)
@settings(max_examples=200, deadline=None)
@given(raw=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=8), text=st.text(max_size=150))
def test_automata_agree_on_any_unicode(raw, text):
    lib = _library(raw)
    py = PhraseMatcher.compile(lib, automaton=_ac_py.Automaton)
    c = PhraseMatcher.compile(lib, automaton=_compiled.Automaton)
    assert c._automaton.scan(text) == py._automaton.scan(text)


@pytest.mark.parametrize("kernel", ["py", "c"])
@settings(max_examples=300, deadline=None)
@given(raw=phrases, text=texts)
def test_matches_are_exactly_the_occurrences(kernel, raw, text):
    if kernel == "c" and _compiled is None:
        pytest.skip(NOT_BUILT)
    automaton = _ac_py.Automaton if kernel == "py" else _compiled.Automaton
    matcher = PhraseMatcher.compile(_library(raw), automaton=automaton)
    norm = Normalized(*(PY_NORM if kernel == "py" else C_NORM).normalize(text))
    got = matcher._automaton.scan(norm.text)
    assert sorted(got) == _oracle(matcher, norm.text)
    for p, s, e in got:
        assert norm.text[s:e] == matcher.normalized_phrases[p]
    for m in matcher.find_normalized(norm):
        assert 0 <= m.start < m.end <= len(text)


@settings(max_examples=200, deadline=None)
@given(
    raw=st.lists(
        st.sampled_from(["保本", "保本保息", "最", "最近", "guaranteed", "art", "risk free"]), min_size=1
    ),
    text=texts,
)
def test_found_spans_normalise_to_the_phrase(raw, text):
    matcher = PhraseMatcher.compile(raw)
    for m in matcher.find(text):
        assert 0 <= m.start < m.end <= len(text)
        assert matcher.normalized_phrases[m.phrase] in normalize_phrase(text[m.start : m.end])
