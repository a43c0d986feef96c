"""Errors of the privacy-computing queries: one root, a few specific ones; no HTTP statuses here.

``appliance/server/errors.py`` maps them to problem+json; the CLI maps them to exit code 2. Every
message says what was wrong and what to do about it. Failures that involve a secret (a wrong
passphrase, an altered ciphertext) share one opaque message, so nobody learns which it was.
"""

from __future__ import annotations

__all__ = [
    "BudgetExhausted",
    "CiphertextInvalid",
    "DisclosureRefused",
    "KeyUnavailable",
    "PrivacyError",
    "QueryInvalid",
    "QueryUnsupported",
    "ResultUnsafe",
]


class PrivacyError(Exception):
    """Root of the errors the privacy package raises."""


class QueryInvalid(PrivacyError):
    """A query names an unknown table or column, a column the server may not see, or bad values."""


class QueryUnsupported(PrivacyError):
    """Valid SQL (or JSON) that this engine does not compute: the message names the construct."""


class ResultUnsafe(PrivacyError):
    """The encrypted result would be wrong: plaintext modulus overflow or multiplicative depth exceeded."""


class DisclosureRefused(PrivacyError):
    """A result fails a disclosure guard (group below the minimum size, not approved, ...)."""


class BudgetExhausted(DisclosureRefused):
    """The analyst's differential-privacy budget cannot pay for this query."""


class CiphertextInvalid(PrivacyError):
    """A ciphertext or context fails its integrity check or cannot be parsed (one opaque message)."""


class KeyUnavailable(PrivacyError):
    """The secret keys cannot be opened here (no custodian keys, wrong passphrase, wrong key id)."""
