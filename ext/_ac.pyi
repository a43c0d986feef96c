"""Type stub for the compiled phrase-matching kernel; the pure-Python twin is ``policy/_ac_py.py``."""

from array import array
from collections.abc import Callable, Sequence

SEP: int
CJK: int
WORD: int
LETTER: int
CLAUSE: int
LEFT: int
RIGHT: int
CHAIN_MIN: int
CHAIN_GAP: int

class Normalizer:
    """Normalises texts with per-character records ``(code point, class)*`` from ``record``, cached."""

    def __init__(self, record: Callable[[int], Sequence[tuple[int, int]]]) -> None: ...
    def normalize(self, text: str) -> tuple[str, array]:
        """The normalised text and, per normalised character, its index in ``text``."""

class Automaton:
    """An Aho-Corasick automaton over code points, from the flat tables ``policy.matcher`` builds."""

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
    ) -> None: ...
    def scan(self, text: str) -> list[tuple[int, int, int]]:
        """Every ``(phrase, start, end)`` in normalised ``text`` that respects word boundaries."""
    def find(self, text: str, origin: Sequence[int]) -> list[tuple[int, int, int]]:
        """``scan`` mapped through ``origin`` to original offsets, sorted by (start, end, phrase)."""
