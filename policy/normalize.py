"""Evasion-resistant normalisation of texts and library phrases, with a map back to the original.

Rules and the text compare after the same normalisation, so a rule written "保证收益" still fires on
"保證收益", "保 證 收 益" or "ＧＵＡＲＡＮＴＥＥＤ". Each original character is first mapped on its own
(the map is a pure function of the code point, so the kernel can cache it):

1. compatibility decomposition (NFKD: full-width → half-width, ligatures, circled and mathematical
   letters), combining marks dropped (accents and "zalgo" stacks: "gúaranteed" is "guaranteed"),
   recomposed (NFC, for Hangul); the net effect is NFKC plus accent stripping;
2. homoglyphs: Cyrillic/Greek/Armenian letters that look Latin become that Latin letter
   (``policy/_homoglyphs.py``); digit look-alikes are left alone;
3. case folding (``str.casefold``: "ß" is "ss");
4. traditional → simplified Chinese with OpenCC's ``t2s``, one character at a time. Per character
   (not per phrase) keeps the mapping to the original exact and makes the conversion a table; the few
   characters whose simplified form depends on the word (乾隆 vs 乾燥) then always take their
   standalone form (乾 → 干) on both sides, library and text, so matching stays consistent;
5. dropped: control and format characters (zero-width space/joiners, word joiner, BOM, soft hyphen,
   bidi controls, tags) and invisible fillers.

Steps 1-4 repeat until the result is stable, so normalising twice changes nothing per character.

The characters are then classed (``policy._ac_py``): SEP (whitespace, punctuation and symbols other
than ``% ‰ $ ¥ € £ # @ &``; emoji included), CLAUSE (the separators that end a clause: ``, . ! ? ; :
。 、`` after NFKC, and line breaks), CJK (Han, kana, bopomofo: scripts written without spaces), WORD
(ASCII letter or digit) and LETTER (alphabetic, spaced script). A run of separators then becomes one
space, or vanishes

- at the ends of the text;
- next to a CJK character ("保 本 保 息", "保-本-保-息", "保本★保息" are "保本保息"), except that a
  run holding clause punctuation or a line break between two words that are not both one character
  stays a boundary ("确保，本产品" is "确保 本产品", no "保本"; "保，本，保，息" still collapses);
- inside a chain of three or more single letters separated by gaps of at most three characters
  ("g.u.a.r.a.n.t.e.e.d", "g u a r a n t e e d", "g - u - a"), found greedily left to right.

So separators inserted to split a Chinese phrase vanish, English words stay words ("not guaranteed";
"guaranteed  return" is "guaranteed return"), and letter-spacing collapses. Known limits: a
separator inside an English word that leaves pieces longer than one letter ("guar-anteed") stays a
space, and two spaced letters ("u s") are not a chain.

Mapping back: ``Normalized.origin[i]`` is the original index of normalised character ``i``; a space
standing for a separator run points at the run's first character, and every character of an
expansion ("㍿" → "株式会社") at the character it came from.
"""

from __future__ import annotations

import unicodedata
from array import array
from dataclasses import dataclass
from functools import lru_cache

import opencc

from policy import _kernel
from policy._ac_py import CJK, CLAUSE, LETTER, SEP, WORD
from policy._homoglyphs import HOMOGLYPHS

__all__ = ["Normalized", "char_record", "normalize", "normalize_phrase"]

#: Symbols that carry meaning in phrases ("100%", "$100", "#1"), so they are not separators.
KEEP_SYMBOLS = frozenset("%‰$¥€£#@&")
#: Punctuation that ends a clause, and line breaks: between CJK words they stay a boundary.
CLAUSE_MARKS = frozenset(",.!?;:。、\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
#: Invisible characters that are letters to Unicode (Hangul fillers, braille blank).
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_DROP_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Cc"})
_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3040, 0x30FF),  # kana
    (0x3100, 0x312F),  # bopomofo
    (0x31A0, 0x31BF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x323AF),
)


@dataclass(frozen=True)
class Normalized:
    """A normalised text and, per character, the index in the original text it came from."""

    text: str
    origin: tuple[int, ...] | array

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span ``[a, b)`` of normalised ``[start, end)`` (``start < end``)."""
        return self.origin[start], self.origin[end - 1] + 1


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _dropped(ch: str) -> bool:
    if ch.isspace():
        return False
    return ch in _INVISIBLE or unicodedata.category(ch) in _DROP_CATEGORIES


def _map_once(s: str) -> str:
    out = []
    for ch in s:
        if _dropped(ch):
            continue
        d = "".join(c for c in unicodedata.normalize("NFKD", ch) if not _dropped(c))
        d = "".join(HOMOGLYPHS.get(c, c) for c in d)
        d = unicodedata.normalize("NFKD", d.casefold())
        d = unicodedata.normalize("NFC", "".join(c for c in d if not _dropped(c)))
        if d and any(_is_cjk(ord(c)) for c in d):
            d = "".join(_t2s().convert(c) if _is_cjk(ord(c)) else c for c in d)
        out.append(d)
    return "".join(out)


def char_class(ch: str) -> int:
    """The class bits (``policy._ac_py``) of one normalised character."""
    cp = ord(ch)
    if ch in CLAUSE_MARKS:
        return SEP | CLAUSE
    if ch.isspace() or (unicodedata.category(ch)[0] in "PS" and ch not in KEEP_SYMBOLS):
        return SEP
    if _is_cjk(cp):
        return CJK
    cls = 0
    if ch.isascii() and ch.isalnum():
        cls |= WORD
    if ch.isalpha():
        cls |= LETTER
    return cls


def char_record(cp: int) -> tuple[tuple[int, int], ...]:
    """What original code point ``cp`` becomes: ``(code point, class)`` per output character."""
    ch = chr(cp)
    if 0xD800 <= cp <= 0xDFFF:  # a lone surrogate: unicodedata cannot decompose it, keep it
        return ((cp, 0),)
    s = _map_once(ch)
    for _ in range(4):  # stable after one more round in practice; the bound guards the table
        nxt = _map_once(s)
        if nxt == s:
            break
        s = nxt
    return tuple((ord(c), char_class(c)) for c in s)


_NORMALIZER = _kernel.Normalizer(char_record)


def normalize(text: str) -> Normalized:
    """Normalise ``text`` for matching (see the module docstring), keeping the way back."""
    t, origin = _NORMALIZER.normalize(text)
    return Normalized(t, origin)


def normalize_phrase(phrase: str) -> str:
    """A library phrase, normalised exactly as texts are, so the two compare."""
    return _NORMALIZER.normalize(phrase)[0]
