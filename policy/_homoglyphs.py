"""Look-alike letters that evaders swap into Latin words, mapped to the Latin letter they imitate.

Applied by ``policy.normalize`` after accents are stripped and before case folding, so an upper-case
Greek Nu (looks like N) and a lower-case nu (looks like v) can map to different letters. The table is
deliberately small: the Cyrillic, Greek and Armenian letters that render like Latin ones in common
fonts, plus a few Latin variants (dotless i, script g). Digit look-alikes (O/0, l/1) are NOT mapped:
"100%" and "1OO%" are different strings to a reader, and folding them would make codes collide.
"""

from __future__ import annotations

__all__ = ["HOMOGLYPHS"]

_PAIRS = (
    # Cyrillic capitals
    ("А", "A"), ("В", "B"), ("Е", "E"), ("Ѕ", "S"), ("І", "I"), ("Ј", "J"), ("К", "K"), ("М", "M"),
    ("Н", "H"), ("О", "O"), ("Р", "P"), ("С", "C"), ("Т", "T"), ("Х", "X"), ("У", "Y"), ("Ү", "Y"),
    ("Ԁ", "D"), ("Ԛ", "Q"), ("Ԝ", "W"), ("Ӏ", "l"), ("Һ", "H"),
    # Cyrillic small letters
    ("а", "a"), ("е", "e"), ("о", "o"), ("р", "p"), ("с", "c"), ("х", "x"), ("у", "y"), ("і", "i"),
    ("ѕ", "s"), ("ј", "j"), ("ԁ", "d"), ("һ", "h"), ("ԛ", "q"), ("ԝ", "w"), ("ѡ", "w"), ("ӏ", "l"),
    ("ү", "y"), ("к", "k"),
    # Greek capitals
    ("Α", "A"), ("Β", "B"), ("Ε", "E"), ("Ζ", "Z"), ("Η", "H"), ("Ι", "I"), ("Κ", "K"), ("Μ", "M"),
    ("Ν", "N"), ("Ο", "O"), ("Ρ", "P"), ("Τ", "T"), ("Υ", "Y"), ("Χ", "X"),
    # Greek small letters
    ("α", "a"), ("ε", "e"), ("ι", "i"), ("κ", "k"), ("ν", "v"), ("ο", "o"), ("ρ", "p"), ("τ", "t"),
    ("υ", "u"), ("χ", "x"), ("γ", "y"), ("ω", "w"),
    # Armenian
    ("օ", "o"), ("ս", "u"), ("հ", "h"), ("ց", "g"),
    # Latin variants that survive NFKC
    ("ı", "i"), ("ɡ", "g"), ("ɑ", "a"), ("ɩ", "i"), ("ʏ", "y"),
)  # fmt: skip

#: One code point to the Latin letter it imitates (before case folding).
HOMOGLYPHS: dict[str, str] = dict(_PAIRS)
