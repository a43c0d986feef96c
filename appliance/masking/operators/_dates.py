"""Parse the date forms customer text uses, and write a new date back in the same form.

Shared by ``generalize`` (needs the date) and ``dateshift`` (needs the date *and* the format).
Rendering replaces only the year/month/day parts of the original string, so separators, zero
padding, month-name style, an ordinal suffix, CJK markers and full-width digits all survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = ["ParsedDate", "parse_date", "parse_year"]

_MONTHS = "january february march april may june july august september october november december".split()
_MONTH_NUMBER = {name: i for i, name in enumerate(_MONTHS, 1)} | {
    name[:3]: i for i, name in enumerate(_MONTHS, 1)
}
_MONTH_NUMBER["sept"] = 9
_MON = r"(?P<mon>[A-Za-z]{3,9})\.?"
_ORD = r"(?P<suf>st|nd|rd|th)?"
_D = r"\d"  # any Unicode decimal digit: full-width digits parse too

# Each pattern must match the whole (stripped) value; the order decides ambiguous forms.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), kind)
    for p, kind in (
        (rf"(?P<y>{_D}{{4}})\s*年\s*(?P<m>{_D}{{1,2}})\s*月\s*(?P<d>{_D}{{1,2}})\s*[日号]?", "ymd"),
        (rf"(?P<y>{_D}{{4}})(?P<sep>[-/.－／．])(?P<m>{_D}{{1,2}})(?P=sep)(?P<d>{_D}{{1,2}})", "ymd"),
        (rf"(?P<y>(?:19|20){_D}{{2}})(?P<m>{_D}{{2}})(?P<d>{_D}{{2}})", "ymd"),
        (rf"(?P<a>{_D}{{1,2}})(?P<sep>[-/.－／．])(?P<b>{_D}{{1,2}})(?P=sep)(?P<y>{_D}{{4}})", "ab-y"),
        (rf"{_MON}\s+(?P<d>{_D}{{1,2}}){_ORD},?\s+(?P<y>{_D}{{4}})", "name"),
        (rf"(?P<d>{_D}{{1,2}}){_ORD}\s+(?:of\s+)?{_MON},?\s+(?P<y>{_D}{{4}})", "name"),
    )
)
_YEAR = re.compile(rf"(?P<y>(?:1[89]|20){_D}{{2}})\s*年?")


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _digits_like(template: str, text: str) -> str:
    """``text`` (ASCII digits) in the width of ``template``: full-width stays full-width."""
    if template and template[0] >= "０":
        return "".join(chr(ord(c) - 48 + 0xFF10) for c in text)
    return text


@dataclass(frozen=True, slots=True)
class ParsedDate:
    """A date found in ``text``, with where each part sat so a new date can be written the same way."""

    value: date
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (part, start, end): part in y, m, d, mon, suf
    pad: bool  # write month/day with two digits ("03"), as the input did

    def render(self, new: date) -> str:
        out: list[str] = []
        pos = 0
        for part, start, end in self.spans:
            old = self.text[start:end]
            out.append(self.text[pos:start])
            if part == "y":
                out.append(_digits_like(old, f"{new.year:04d}"))
            elif part in ("m", "d"):
                n = new.month if part == "m" else new.day
                out.append(_digits_like(old, f"{n:02d}" if self.pad else str(n)))
            elif part == "mon":
                name = _MONTHS[new.month - 1]
                name = name[:3] if len(old) == 3 else name
                out.append(name.upper() if old.isupper() else name.capitalize() if old[0].isupper() else name)
            else:  # ordinal suffix follows the new day
                suf = _ordinal(new.day)
                out.append(suf.upper() if old.isupper() else suf)
            pos = end
        out.append(self.text[pos:])
        return "".join(out)


def _padded(fields: list[str], *, numeric_month: bool) -> bool:
    """Whether the input wrote month/day zero-padded: a leading zero says yes, a single digit no.

    Both two-digit with no zero ("1990/12/25") says nothing: numeric forms are then taken as padded
    (ISO style), month-name forms ("December 12, 1990") as not.
    """
    if any(len(f) == 2 and f[0] in "0０" for f in fields):
        return True
    if any(len(f) == 1 for f in fields):
        return False
    return numeric_month


def parse_date(text: str, *, day_first: bool = True) -> ParsedDate | None:
    """The date ``text`` spells, or None.

    ``nn/nn/yyyy`` is read day-first (as most of the world writes it) unless ``day_first`` is False
    or a part above 12 settles it.
    """
    stripped = text.strip()
    offset = text.find(stripped) if stripped else 0
    for pattern, kind in _PATTERNS:
        m = pattern.fullmatch(stripped)
        if m is None:
            continue
        groups = m.groupdict()
        y = int(groups["y"])
        names = ["y"]
        if kind == "ymd":
            mo, d = int(groups["m"]), int(groups["d"])
            names += ["m", "d"]
        elif kind == "ab-y":
            a, b = int(groups["a"]), int(groups["b"])
            first_is_day = a > 12 or (day_first and b <= 12)
            mo, d = (b, a) if first_is_day else (a, b)
            m_group, d_group = ("b", "a") if first_is_day else ("a", "b")
            spans = [("y", *m.span("y")), ("m", *m.span(m_group)), ("d", *m.span(d_group))]
        else:
            mo_num = _MONTH_NUMBER.get(groups["mon"].lower())
            if mo_num is None:
                continue
            mo, d = mo_num, int(groups["d"])
            names += ["mon", "d"] + (["suf"] if groups.get("suf") else [])
        try:
            value = date(y, mo, d)
        except ValueError:
            continue
        if kind != "ab-y":
            spans = [(n, *m.span(n)) for n in names]
        spans.sort(key=lambda s: s[1])
        return ParsedDate(
            value,
            text,
            tuple((n, s + offset, e + offset) for n, s, e in spans),
            _padded([stripped[s:e] for n, s, e in spans if n in ("m", "d")], numeric_month=kind != "name"),
        )
    return None


def parse_year(text: str) -> int | None:
    """A bare year ("1990", "1990年"), for values that name no month or day."""
    m = _YEAR.fullmatch(text.strip())
    return int(m["y"]) if m else None
