"""The policy engine's errors: one root, a few specific ones, no HTTP status (the node maps them).

Every message says what was wrong and what to do, because the reader is a policy author fixing a YAML
file or an integrator passing a region code, not someone who can read a stack trace.
"""

from __future__ import annotations

__all__ = [
    "LibraryInvalid",
    "PolicyError",
    "RuleInvalid",
    "TextRejected",
    "UnknownChannel",
    "UnknownIndustry",
    "UnknownRegion",
]


class PolicyError(Exception):
    """Root of every error the policy package raises."""


class UnknownRegion(PolicyError):
    """A region code that is not ISO 3166-1/3166-2 (or a group the library defines)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class UnknownIndustry(PolicyError):
    """An industry the library does not know; ``known`` lists the ones it does."""

    def __init__(self, message: str, *, industry: str = "", known: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.industry = industry
        self.known = known


class UnknownChannel(PolicyError):
    """A channel the library does not know; ``known`` lists the ones it does."""

    def __init__(self, message: str, *, channel: str = "", known: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.channel = channel
        self.known = known


class TextRejected(PolicyError):
    """A text the evaluator refuses to judge (too long): deciding on a truncated text would be unsafe."""


class LibraryInvalid(PolicyError):
    """A library directory that cannot be loaded; ``file``, ``rule`` and ``fix`` locate and mend it."""

    def __init__(
        self, message: str, *, file: str | None = None, rule: str | None = None, fix: str = ""
    ) -> None:
        where = ": ".join(p for p in (file, f"rule {rule}" if rule else None) if p)
        text = f"{where}: {message}" if where else message
        if fix:
            text = f"{text}; {fix}"
        super().__init__(text)
        self.file = file
        self.rule = rule
        self.fix = fix
        self.problem = message


class RuleInvalid(LibraryInvalid):
    """One rule of a library is invalid (bad field, unsafe regex, unknown scope value)."""
