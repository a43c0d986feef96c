"""Pure-Python twin of ``ext/_ac.pyx``: the normaliser's two passes and the Aho-Corasick scan.

The compiled kernel follows this module function for function; hypothesis holds them equal
(``tests/property/test_ac_equality.py``). Neither knows Unicode: what a character becomes and which
class it belongs to comes from the ``record`` callback ``policy.normalize`` hands in, asked once per
distinct code point and cached, so the tables cost nothing at import and a text's alphabet is paid for
once.

Normalisation, given per-character records ``(code point, class)*`` (empty: the character is dropped):

1. map: every original character becomes its records, each remembering the original index;
2. gaps: maximal runs of SEP characters between words become one space, or nothing when
   - the run is at the start or the end of the text,
   - the character before or after the run is CJK (no spaces in Chinese: "保 本 保 息" is "保本保息"),
     unless the run holds clause punctuation or a line break and the words on either side are not
     both one character: "确保，本产品" keeps its clause boundary (a space) and is no "保本", while
     "保，本，保，息" still collapses;
   - the run sits inside a letter-spaced chain: at least ``CHAIN_MIN`` words of exactly one LETTER,
     each gap between them at most ``CHAIN_GAP`` characters ("g.u.a.r.a.n.t.e.e.d", "g u a r a n"),
     and all gaps of one kind: only spaces, or all holding punctuation ("a G.U.A.R" keeps "a").
     Chains are found greedily left to right.
   So ordinary prose keeps its word boundaries ("not guaranteed" stays two words).

The automaton's tables are flat int arrays built by ``policy.matcher`` (goto edges sorted per state,
anchored failure links, outputs per state, dictionary-suffix links, phrase lengths and boundary
flags); the scan leaves the root on an ASCII letter or digit only at a word start (no phrase can
start inside a word) and reports ``(phrase, start, end)`` in normalised offsets, by end position,
then along the output chain.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence

__all__ = [
    "CHAIN_GAP",
    "CHAIN_MIN",
    "CJK",
    "CLAUSE",
    "LEFT",
    "LETTER",
    "RIGHT",
    "SEP",
    "WORD",
    "Automaton",
    "Normalizer",
]

#: Character classes (bits) in a record.
SEP = 1  # whitespace, punctuation, most symbols: becomes one space or nothing
CJK = 2  # a script written without spaces: separators next to it vanish
WORD = 4  # ASCII letter or digit: what word boundaries look at
LETTER = 8  # an alphabetic character of a spaced script: can form a letter-spaced chain
CLAUSE = 16  # with SEP: punctuation that ends a clause (，。、；：！？ and line breaks)

#: Phrase flags: the phrase starts (ends) with a WORD character, so it needs a boundary there.
LEFT = 1
RIGHT = 2

CHAIN_MIN = 3
CHAIN_GAP = 3

Record = Sequence[tuple[int, int]]


class Normalizer:
    """Normalises texts with per-character records from ``record(code point)``, cached here."""

    def __init__(self, record: Callable[[int], Record]) -> None:
        self._record = record
        self._cache: dict[int, tuple[tuple[int, int], ...]] = {}

    def _lookup(self, cp: int) -> tuple[tuple[int, int], ...]:
        got = self._cache.get(cp)
        if got is None:
            got = tuple((int(c), int(k)) for c, k in self._record(cp))
            self._cache[cp] = got
        return got

    def normalize(self, text: str) -> tuple[str, array]:
        """The normalised text and, per normalised character, its index in ``text``."""
        cps: list[int] = []
        cls: list[int] = []
        org: list[int] = []
        for i, ch in enumerate(text):
            for c, k in self._lookup(ord(ch)):
                cps.append(c)
                cls.append(k)
                org.append(i)
        return _gaps(cps, cls, org)


def _gaps(cps: list[int], cls: list[int], org: list[int]) -> tuple[str, array]:
    """Pass 2: separator runs become one space or vanish (see the module docstring)."""
    n = len(cps)
    out_cp: list[int] = []
    out_org: list[int] = []
    last_cls = 0  # class of the last character written (0: none yet)
    last_len = 0  # length of the last word written
    chain_end = -1  # index of the last single letter of the current chain
    i = 0
    while i < n:
        if cls[i] & SEP:
            j = i
            gap = 0
            while j < n and cls[j] & SEP:
                gap |= cls[j]
                j += 1
            if out_cp and j < n and i > chain_end:
                space = True
                if last_cls & CJK or cls[j] & CJK:
                    space = False
                    if gap & CLAUSE:
                        r = j
                        while r < n and not cls[r] & SEP:
                            r += 1
                        space = last_len != 1 or r - j != 1
                if space:
                    out_cp.append(32)
                    out_org.append(org[i])
                    last_cls = SEP
            i = j
            continue
        k = i
        while k < n and not cls[k] & SEP:
            k += 1
        if k - i == 1 and cls[i] & LETTER and i > chain_end:
            count = 1
            end = i
            p = k
            chain_kind = 0
            while p < n:
                q = p
                while q < n and cls[q] & SEP:
                    q += 1
                if q - p > CHAIN_GAP or q == n:
                    break
                # All gaps of a chain are spaces, or all hold punctuation: "a G.U.A.R.A.N.T.E.E.D"
                # is the word "a" and a spaced-out "guaranteed", not "aguaranteed".
                kind = 1 if all(chr(cps[x]).isspace() for x in range(p, q)) else 2
                if chain_kind and kind != chain_kind:
                    break
                chain_kind = kind
                r = q
                while r < n and not cls[r] & SEP:
                    r += 1
                if r - q != 1 or not cls[q] & LETTER:
                    break
                count += 1
                end = q
                p = r
            if count >= CHAIN_MIN:
                chain_end = end
        out_cp.extend(cps[i:k])
        out_org.extend(org[i:k])
        last_cls = cls[k - 1]
        last_len = k - i
        i = k
    return "".join(map(chr, out_cp)), array("i", out_org)


class Automaton:
    """An Aho-Corasick automaton over code points, read from the flat tables ``policy.matcher`` builds."""

    def __init__(
        self,
        *,
        edge_start: Sequence[int],
        edge_char: Sequence[int],
        edge_next: Sequence[int],
        fail: Sequence[int],
        out_start: Sequence[int],
        out_phrase: Sequence[int],
        dict_link: Sequence[int],
        phrase_len: Sequence[int],
        phrase_flags: Sequence[int],
    ) -> None:
        states = len(fail)
        self._goto: list[dict[int, int]] = [
            {edge_char[e]: edge_next[e] for e in range(edge_start[s], edge_start[s + 1])}
            for s in range(states)
        ]
        self._fail = list(fail)
        self._out: list[tuple[int, ...]] = [
            tuple(out_phrase[out_start[s] : out_start[s + 1]]) for s in range(states)
        ]
        # The first state along the failure chain (itself included) that ends a phrase, 0 for none.
        self._report = [s if self._out[s] else dict_link[s] for s in range(states)]
        self._dict = list(dict_link)
        self._len = list(phrase_len)
        self._flags = list(phrase_flags)

    def scan(self, text: str) -> list[tuple[int, int, int]]:
        """Every occurrence ``(phrase, start, end)`` in ``text`` (already normalised) that respects the
        phrase's word boundaries, by end position."""
        goto, fail, report, out, dict_link = self._goto, self._fail, self._report, self._out, self._dict
        plen, flags = self._len, self._flags
        n = len(text)
        found: list[tuple[int, int, int]] = []
        state = 0
        prev_word = False
        for j, ch in enumerate(text):
            c = ord(ch)
            word = _word(ch)
            while True:
                nxt = goto[state].get(c)
                if nxt is not None and (state or not (word and prev_word)):
                    state = nxt
                    break
                if state == 0:
                    break
                state = fail[state]
            prev_word = word
            s = report[state]
            while s:
                for p in out[s]:
                    start = j + 1 - plen[p]
                    f = flags[p]
                    if f & LEFT and start > 0 and _word(text[start - 1]):
                        continue
                    if f & RIGHT and j + 1 < n and _word(text[j + 1]):
                        continue
                    found.append((p, start, j + 1))
                s = dict_link[s]
        return found

    def find(self, text: str, origin: Sequence[int]) -> list[tuple[int, int, int]]:
        """``scan``, mapped through ``origin`` to original ``(phrase, start, end)``, sorted by
        (start, end, phrase)."""
        if len(origin) != len(text):
            raise ValueError(f"origin has {len(origin)} entries for a text of {len(text)} characters")
        found = [(p, origin[s], origin[e - 1] + 1) for p, s, e in self.scan(text)]
        found.sort(key=lambda m: (m[1], m[2], m[0]))
        return found


def _word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()
