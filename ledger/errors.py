"""Errors raised by the ledger.

One root (:class:`LedgerError`) so callers can catch everything the ledger
refuses, and a few specific subclasses for the cases a caller acts on
differently. None of them carries an HTTP status: the node maps them.
"""

from __future__ import annotations

__all__ = [
    "ChainBroken",
    "CheckpointInvalid",
    "EntryInvalid",
    "LedgerClosed",
    "LedgerCorrupt",
    "LedgerError",
    "ProofUnavailable",
]


class LedgerError(Exception):
    """Root of every error the ledger raises."""


class EntryInvalid(LedgerError):
    """An entry cannot be recorded as given (bad field, not canonicalisable)."""


class ChainBroken(LedgerError):
    """The `prev` hash chain does not link (tampering or a bug)."""


class LedgerCorrupt(LedgerError):
    """Stored data before the tail is inconsistent; the ledger refuses to open."""


class ProofUnavailable(LedgerError):
    """A proof was asked for sizes or indexes the ledger cannot prove."""


class CheckpointInvalid(LedgerError):
    """A signed checkpoint does not parse or its signature does not verify."""


class LedgerClosed(LedgerError):
    """An append was attempted on a ledger that has been closed."""
