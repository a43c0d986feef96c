"""Matcher cases, run on the pure-Python twin automaton and on the compiled one (ids py/c).

Positive cases find the evasive original whole; negative cases are benign texts that must not trip
the rule (each names the confusion it guards against).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from policy import _ac_py, _kernel
from policy.matcher import Match, PhraseMatcher
from policy.normalize import Normalized, normalize

try:
    from ext import _ac as _compiled
except ImportError:  # no compiler at install time: only the twin is tested
    _compiled = None

LIBRARY = [
    "保本保息",  # 0
    "保证收益",  # 1
    "最",  # 2
    "最近",  # 3
    "guaranteed",  # 4
    "art",  # 5
    "risk free",  # 6
    "絕對",  # 7: traditional in the library, simplified in texts
    "100% 保本",  # 8
    "稳赚不赔",  # 9
    "保本",  # 10
    "No Risk",  # 11
]


@pytest.fixture(params=[_ac_py, _compiled], ids=["py", "c"], scope="module")
def kernel(request):
    if request.param is None:
        pytest.skip("ext._ac is not built; run `python setup.py build_ext --inplace`")
    return request.param


@pytest.fixture(scope="module")
def matcher(kernel):
    return PhraseMatcher.compile(LIBRARY, automaton=kernel.Automaton)


def hits(matcher: PhraseMatcher, text: str) -> list[tuple[str, str]]:
    return [(matcher.phrases[m.phrase], text[m.start : m.end]) for m in matcher.find(text)]


POSITIVE = {
    "plain": ("本产品保本保息", [("保本", "保本"), ("保本保息", "保本保息")]),
    "cjk-spaces": ("本产品保 本 保 息！", [("保本", "保 本"), ("保本保息", "保 本 保 息")]),
    "cjk-dashes": ("保-本-保-息", [("保本", "保-本"), ("保本保息", "保-本-保-息")]),
    "traditional-text": ("保證收益", [("保证收益", "保證收益")]),
    "traditional-library": ("绝对安全", [("絕對", "绝对")]),
    "traditional-both": ("絕對安全", [("絕對", "絕對")]),
    "full-width": ("ＧＵＡＲＡＮＴＥＥＤ!", [("guaranteed", "ＧＵＡＲＡＮＴＥＥＤ")]),
    "letter-spaced": ("it is g.u.a.r.a.n.t.e.e.d.", [("guaranteed", "g.u.a.r.a.n.t.e.e.d")]),
    "letter-spaced-blank": ("g u a r a n t e e d returns", [("guaranteed", "g u a r a n t e e d")]),
    # A one-letter word before a spaced-out word is not part of the chain (regression: "aguaranteed").
    "article-then-dotted": ("a G.U.A.R.A.N.T.E.E.D return", [("guaranteed", "G.U.A.R.A.N.T.E.E.D")]),
    "article-then-dashed": ("I am a g-u-a-r-a-n-t-e-e-d win", [("guaranteed", "g-u-a-r-a-n-t-e-e-d")]),
    "zero-width": ("稳\u200b赚\u200d不赔", [("稳赚不赔", "稳\u200b赚\u200d不赔")]),
    "homoglyph": ("guаrаntееd", [("guaranteed", "guаrаntееd")]),
    "case": ("GUARANTEED", [("guaranteed", "GUARANTEED")]),
    "two-words": ("totally Risk  Free!", [("risk free", "Risk  Free")]),
    "two-words-hyphen": ("risk-free", [("risk free", "risk-free")]),
    "two-words-capitals": ("NO RISK", [("No Risk", "NO RISK")]),
    "mixed-scripts": ("１００％ 保本", [("100% 保本", "１００％ 保本"), ("保本", "保本")]),
    "ascii-next-to-cjk": ("产品guaranteed收益", [("guaranteed", "guaranteed")]),
    "punctuation-around": ("(guaranteed)", [("guaranteed", "guaranteed")]),
    "absolute-and-exception": ("最近的产品", [("最", "最"), ("最近", "最近")]),
    "absolute-alone": ("最好的产品", [("最", "最")]),
    "art-alone": ("modern art.", [("art", "art")]),
}

NEGATIVE = {
    "inside-a-word": "unguaranteed",
    "prefix-of-a-word": "guaranteedly",
    "art-in-start": "start the party",
    "art-in-earth": "Earth and artist",
    "digit-boundary": "art1",
    "shorter-word": "guarantee",
    "clause-boundary": "请确保，本产品已开户",
    "line-boundary": "确保\n本金",
    "cjk-not-adjacent": "保持本色",
    "benign-chinese": "本金安全由存款保险保障，请放心。",
    "benign-english": "Returns are not assured; risk applies.",
    "split-word-is-no-chain": "ar t",
    "empty": "",
    "separators-only": " ，。 ",
}


@pytest.mark.parametrize(("text", "expected"), POSITIVE.values(), ids=POSITIVE.keys())
def test_finds_evasive_forms(matcher, text, expected):
    assert hits(matcher, text) == expected


@pytest.mark.parametrize("text", NEGATIVE.values(), ids=NEGATIVE.keys())
def test_benign_text_does_not_trip(matcher, text):
    got = hits(matcher, text)
    assert got == [], got


def test_two_letters_do_not_chain_but_three_do(kernel):
    m = PhraseMatcher.compile(["us", "usa"], automaton=kernel.Automaton)
    assert hits(m, "u s") == []
    assert hits(m, "U.S. bonds") == []
    assert hits(m, "u s a") == [("usa", "u s a")]
    assert hits(m, "U.S.A.") == [("usa", "U.S.A")]


def test_every_overlapping_occurrence(kernel):
    m = PhraseMatcher.compile(["aa", "a aa", "保保"], automaton=kernel.Automaton)
    assert [(x.phrase, x.start, x.end) for x in m.find("保保保")] == [(2, 0, 2), (2, 1, 3)]
    # "aa aa": words are words, so only whole-word hits; "a aa" needs its own words.
    assert [(x.phrase, x.start, x.end) for x in m.find("aa aa a aa")] == [
        (0, 0, 2),
        (0, 3, 5),
        (1, 6, 10),
        (0, 8, 10),
    ]


def test_duplicates_each_reported(kernel):
    m = PhraseMatcher.compile(["保本", "保本", "保 本"], automaton=kernel.Automaton)
    assert m.find("保本") == [Match(0, 0, 2), Match(1, 0, 2), Match(2, 0, 2)]
    assert len(m) == 3
    assert m.phrases == ("保本", "保本", "保 本")


def test_sorted_by_start_end_phrase(kernel):
    m = PhraseMatcher.compile(["近的", "最近", "最", "的"], automaton=kernel.Automaton)
    got = m.find("最近的")
    assert got == sorted(got, key=lambda x: (x.start, x.end, x.phrase))
    assert [(x.start, x.end, x.phrase) for x in got] == [(0, 1, 2), (0, 2, 1), (1, 3, 0), (2, 3, 3)]


@pytest.mark.parametrize("phrase", ["", " ", "\u200b", "。，"])
def test_empty_phrase_refused_with_its_index(phrase):
    with pytest.raises(ValueError, match="phrase #1"):
        PhraseMatcher.compile(["保本", phrase])


def test_non_string_phrase_refused():
    with pytest.raises(TypeError, match="phrase #0"):
        PhraseMatcher.compile([b"x"])  # type: ignore[list-item]


def test_empty_library_finds_nothing(kernel):
    m = PhraseMatcher.compile([], automaton=kernel.Automaton)
    assert m.find("保本 guaranteed") == []
    assert len(m) == 0


def test_find_normalized_runs_several_matchers_over_one_normalisation(kernel):
    a = PhraseMatcher.compile(["保本"], automaton=kernel.Automaton)
    b = PhraseMatcher.compile(["guaranteed"], automaton=kernel.Automaton)
    text = "保 本, g.u.a.r.a.n.t.e.e.d"
    n = normalize(text)
    assert a.find_normalized(n) == a.find(text) == [Match(0, 0, 3)]
    assert b.find_normalized(n) == b.find(text) == [Match(0, 5, 24)]


def test_astral_characters(kernel):
    m = PhraseMatcher.compile(["𠮷野家", "𝐠𝐨𝐥𝐝"], automaton=kernel.Automaton)
    assert [(x.phrase, x.start, x.end) for x in m.find("去𠮷野家吃 gold")] == [(0, 1, 4), (1, 6, 10)]


def test_many_phrases(kernel):
    rng = random.Random(7)
    cjk = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]
    phrases = sorted({"".join(rng.choices(cjk, k=rng.randint(2, 6))) for _ in range(5000)})
    m = PhraseMatcher.compile(phrases, automaton=kernel.Automaton)
    picks = rng.sample(range(len(phrases)), 50)
    text = "，".join(phrases[i] for i in picks)
    found = {x.phrase for x in m.find(text)}
    assert set(picks) <= found
    for x in m.find(text):
        assert normalize(text[x.start : x.end]).text == m.normalized_phrases[x.phrase]


def test_megabyte_text(kernel):
    m = PhraseMatcher.compile(LIBRARY, automaton=kernel.Automaton)
    unit = "今天天气不错，最近的产品收益稳定。Nothing here is g.u.a.r.a.n.t.e.e.d at all. "
    reps = (1 << 20) // len(unit) + 1
    text = unit * reps
    got = m.find(text)
    assert sum(1 for x in got if m.phrases[x.phrase] == "guaranteed") == reps
    assert sum(1 for x in got if m.phrases[x.phrase] == "最近") == reps


def test_picker_forced_to_python_by_the_environment():
    env = {**os.environ, "APPLIANCE_NO_EXTENSIONS": "1"}
    code = "from policy import _kernel; print(_kernel.IMPLEMENTATION, _kernel.Automaton.__module__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["py", "policy._ac_py"]


def test_picker_prefers_the_compiled_kernel():
    if _compiled is None:
        pytest.skip("ext._ac is not built; run `python setup.py build_ext --inplace`")
    if os.environ.get("APPLIANCE_NO_EXTENSIONS") in ("1", "true", "yes"):
        assert _kernel.IMPLEMENTATION == "py"
    else:
        assert (_kernel.IMPLEMENTATION, _kernel.Automaton) == ("c", _compiled.Automaton)


def test_kernels_share_their_constants():
    if _compiled is None:
        pytest.skip("ext._ac is not built; run `python setup.py build_ext --inplace`")
    names = ["SEP", "CJK", "WORD", "LETTER", "CLAUSE", "LEFT", "RIGHT", "CHAIN_MIN", "CHAIN_GAP"]
    assert [getattr(_compiled, n) for n in names] == [getattr(_ac_py, n) for n in names]


def test_origin_must_match_the_text(kernel):
    m = PhraseMatcher.compile(["保本"], automaton=kernel.Automaton)
    with pytest.raises(ValueError, match="origin"):
        m.find_normalized(Normalized("保本", (0,)))
