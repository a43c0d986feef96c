"""Finds every occurrence of every library phrase in a text, evasions included, in one pass.

``PhraseMatcher.compile(phrases)`` normalises the phrases (``policy.normalize``), builds one
Aho-Corasick automaton over code points for the whole library here in Python (trie, failure links,
dictionary-suffix links) and hands it as flat int arrays to the kernel ``policy._kernel`` picked: the
compiled ``ext/_ac.pyx`` or its twin ``policy/_ac_py.py``. ``find`` normalises the text, scans it once
and maps each match back to the original code points.

Every occurrence is reported, overlapping ones too: "最近" in a text yields both the absolute term 最
and 最近, so the evaluator can let an exception phrase cancel the term. Word boundaries apply only at
the ends of a phrase that are ASCII letters or digits ("art" is not found in "start"); CJK has no
spaces, so a CJK end matches anywhere.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, NamedTuple

from policy import _kernel
from policy._ac_py import LEFT, RIGHT
from policy.normalize import Normalized, normalize, normalize_phrase

__all__ = ["Match", "PhraseMatcher"]


class Match(NamedTuple):
    """Phrase ``phrase`` (index into the compiled library) found at original ``[start, end)``.

    A named tuple rather than a frozen dataclass: a dense text yields tens of thousands of matches,
    and a frozen dataclass costs about three times as much to build (20,000 matches: ~20 ms against
    ~6 ms), which at 50 MB/s is a fifth of the budget for 5 MB.
    """

    phrase: int
    start: int
    end: int


def _word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _tables(phrases: Sequence[str]) -> dict[str, array]:
    """The automaton's flat tables (see ``policy._ac_py.Automaton``) for normalised ``phrases``.

    Failure links are anchored: they lead to the longest proper suffix that is a trie state AND could
    start a match, i.e. does not begin with an ASCII letter or digit right after another (a phrase
    starting with one needs a word boundary before it). The scan applies the same rule at the root,
    so inside a word it idles at the root instead of chasing suffixes no match can use; the matches
    reported are exactly those of the classic automaton after the boundary checks.
    """
    goto: list[dict[int, int]] = [{}]
    ends: list[list[int]] = [[]]
    for idx, phrase in enumerate(phrases):
        s = 0
        for ch in phrase:
            c = ord(ch)
            nxt = goto[s].get(c)
            if nxt is None:
                nxt = len(goto)
                goto[s][c] = nxt
                goto.append({})
                ends.append([])
            s = nxt
        ends[s].append(idx)
    # Number the states depth first (pre-order): walking a phrase visits consecutive states, which
    # share cache lines; most states have one edge, to the next number.
    order: list[int] = []
    stack = [0]
    while stack:
        s = stack.pop()
        order.append(s)
        stack.extend(goto[s][c] for c in sorted(goto[s], reverse=True))
    renum = [0] * len(order)
    for new, old in enumerate(order):
        renum[old] = new
    goto = [{c: renum[t] for c, t in goto[old].items()} for old in order]
    ends = [ends[old] for old in order]
    states = len(goto)
    last = [0] * states  # the character on the edge into each state
    for s in range(states):
        for c, t in goto[s].items():
            last[t] = c
    fail = [0] * states
    dict_link = [0] * states
    bfs = list(goto[0].values())
    for s in bfs:  # breadth first: a failure target is shallower, so already final
        for c, t in goto[s].items():
            bfs.append(t)
            f = fail[s]
            while f and c not in goto[f]:
                f = fail[f]
            g = goto[f].get(c, 0)
            if f == 0 and _word(chr(c)) and _word(chr(last[s])):
                g = 0  # a suffix starting inside a word: no phrase can start there
            fail[t] = g
            dict_link[t] = g if ends[g] else dict_link[g]
    edge_start = array("i", [0])
    edge_char = array("i")
    edge_next = array("i")
    out_start = array("i", [0])
    out_phrase = array("i")
    for s in range(states):
        for c in sorted(goto[s]):
            edge_char.append(c)
            edge_next.append(goto[s][c])
        edge_start.append(len(edge_char))
        out_phrase.extend(ends[s])
        out_start.append(len(out_phrase))
    flags = array("i", ((LEFT if _word(p[0]) else 0) | (RIGHT if _word(p[-1]) else 0) for p in phrases))
    return {
        "edge_start": edge_start,
        "edge_char": edge_char,
        "edge_next": edge_next,
        "fail": array("i", fail),
        "out_start": out_start,
        "out_phrase": out_phrase,
        "dict_link": array("i", dict_link),
        "phrase_len": array("i", map(len, phrases)),
        "phrase_flags": flags,
    }


class PhraseMatcher:
    """A compiled phrase library: build once with ``compile``, then ``find`` in any number of texts."""

    def __init__(self, phrases: tuple[str, ...], normalized: tuple[str, ...], automaton: Any) -> None:
        self._phrases = phrases
        self._normalized = normalized
        self._automaton = automaton

    @classmethod
    def compile(cls, phrases: Sequence[str], *, automaton: type | None = None) -> PhraseMatcher:
        """Normalise ``phrases`` and build the automaton; ``automaton`` picks a kernel (tests only)."""
        originals = tuple(phrases)
        normalized = []
        for idx, phrase in enumerate(originals):
            if not isinstance(phrase, str):
                raise TypeError(f"phrase #{idx} is {type(phrase).__name__}, not str")
            norm = normalize_phrase(phrase)
            if not norm:
                raise ValueError(
                    f"phrase #{idx} ({phrase!r}) is empty after normalisation; remove it from the library"
                )
            normalized.append(norm)
        kernel = automaton if automaton is not None else _kernel.Automaton
        return cls(originals, tuple(normalized), kernel(**_tables(normalized)))

    @property
    def phrases(self) -> tuple[str, ...]:
        """The phrases as given, in index order (``Match.phrase`` indexes this)."""
        return self._phrases

    @property
    def normalized_phrases(self) -> tuple[str, ...]:
        """The phrases as the automaton sees them."""
        return self._normalized

    def __len__(self) -> int:
        return len(self._phrases)

    def find(self, text: str) -> list[Match]:
        """Every occurrence in ``text``, offsets in ``text``'s code points, by (start, end, phrase)."""
        return self.find_normalized(normalize(text))

    def find_normalized(self, normalized: Normalized) -> list[Match]:
        """Like ``find`` on a text normalised once by the caller (to run several matchers over it)."""
        return list(map(Match._make, self._automaton.find(normalized.text, normalized.origin)))
