"""Region codes and their inheritance: a rule for ``CN`` binds ``CN-GD``, a rule for ``EU`` binds ``FR-75``.

Customers are located by ISO 3166-1 alpha-2 country codes, optionally refined by an ISO 3166-2
subdivision (``US-CA``). Subdivision codes are checked for shape only (country valid, 1-3 letters or
digits after the dash): the subdivision lists change every year and an unlisted but well-formed
subdivision must still inherit its country's rules rather than escape them. Groups (``EU``, ``EEA``)
are defined by the library, may contain other groups, and are resolved here to a fixed chain so the
evaluator does one set lookup per rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from policy.errors import UnknownRegion

__all__ = ["GLOBAL", "Region", "RegionGroups", "is_country"]

#: The scope that binds every region.
GLOBAL = "*"

_CODE = re.compile(r"^([A-Z]{2})(?:-([A-Z0-9]{1,3}))?$")
_GROUP = re.compile(r"^[A-Z][A-Z0-9_]{1,31}$")


def _countries() -> frozenset[str]:
    try:
        import pycountry
    except ImportError:  # pragma: no cover - pycountry comes with schwifty; phonenumbers is a direct dep
        import phonenumbers

        return frozenset(r for r in phonenumbers.SUPPORTED_REGIONS if _CODE.match(r))
    return frozenset(c.alpha_2 for c in pycountry.countries)


_COUNTRIES = _countries()


def is_country(code: str) -> bool:
    """Whether ``code`` is an assigned ISO 3166-1 alpha-2 country code."""
    return code in _COUNTRIES


@dataclass(frozen=True)
class Region:
    """A customer's region: a country, optionally a subdivision of it."""

    code: str
    country: str
    subdivision: str | None = None

    @classmethod
    def parse(cls, code: str) -> Region:
        """``"us-ca"`` → Region("US-CA", "US", "CA"); an unknown or malformed code is refused."""
        if not isinstance(code, str):
            raise UnknownRegion(f"region must be a string such as 'CN' or 'US-CA', not {type(code).__name__}")
        norm = code.strip().upper()
        m = _CODE.match(norm)
        if m is None:
            raise UnknownRegion(
                f"region {code!r} is not an ISO 3166-1 alpha-2 code ('CN') or an ISO 3166-2 subdivision "
                "('CN-GD', 'US-CA'); send the customer's country code",
                code=code,
            )
        country, sub = m.group(1), m.group(2)
        if country not in _COUNTRIES:
            raise UnknownRegion(
                f"region {code!r}: {country!r} is not an assigned ISO 3166-1 alpha-2 country code; "
                "send the customer's country code (e.g. 'CN', 'US', 'DE')",
                code=code,
            )
        return cls(norm, country, sub)

    def chain(self, groups: RegionGroups | None = None) -> tuple[str, ...]:
        """Most specific first: ``US-CA``, ``US``, the groups holding either, then ``*``."""
        out: list[str] = [self.code]
        if self.subdivision is not None:
            out.append(self.country)
        if groups is not None:
            out.extend(groups.containing(tuple(out)))
        out.append(GLOBAL)
        return tuple(out)


class RegionGroups:
    """Named groups of regions (``EU: [AT, BE, ...]``), possibly nested; validated once at load."""

    def __init__(self, groups: Mapping[str, Iterable[str]] | None = None) -> None:
        raw = {name: tuple(members) for name, members in (groups or {}).items()}
        for name, members in raw.items():
            if not _GROUP.match(name) or name in _COUNTRIES:
                raise UnknownRegion(
                    f"region group {name!r}: a group name is 2-32 upper-case letters, digits or '_' and "
                    "must not be a country code; rename it (e.g. 'EU', 'GCC')",
                    code=name,
                )
            for member in members:
                if member not in raw:
                    Region.parse(member)
        self._members = raw
        self._closure = {name: self._expand(name, ()) for name in raw}

    def _expand(self, name: str, path: tuple[str, ...]) -> frozenset[str]:
        if name in path:
            cycle = " → ".join((*path, name))
            raise UnknownRegion(f"region groups form a cycle ({cycle}); remove one of the memberships")
        out: set[str] = set()
        for member in self._members[name]:
            if member in self._members:
                out |= self._expand(member, (*path, name))
            else:
                out.add(member)
        return frozenset(out)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._members))

    def members(self, name: str) -> frozenset[str]:
        """Every country or subdivision in ``name``, nested groups expanded."""
        return self._closure[name]

    def containing(self, codes: Iterable[str]) -> tuple[str, ...]:
        """The groups (sorted) that hold any of ``codes``."""
        wanted = set(codes)
        return tuple(name for name in sorted(self._closure) if self._closure[name] & wanted)

    def as_dict(self) -> dict[str, list[str]]:
        return {name: list(self._members[name]) for name in sorted(self._members)}

    def is_scope_code(self, code: str) -> bool:
        """Whether a rule may name ``code`` in its scope: ``*``, a group, a country or a subdivision."""
        if code == GLOBAL or code in self._members:
            return True
        m = _CODE.match(code)
        return m is not None and m.group(1) in _COUNTRIES
