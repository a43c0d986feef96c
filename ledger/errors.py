"""Errors raised by the ledger.

One root (:class:`LedgerError`) so callers can catch everything the ledger
refuses, and a few specific subclasses for the cases a caller acts on
differently. None of them carries an HTTP status: the node maps them.
"""

from __future__ import annotations

__all__ = [
    "ChainBroken",
    "CheckpointInvalid",
    "ConsistencyUnproven",
    "CosignatureInvalid",
    "CosignatureMissing",
    "EntryInvalid",
    "LedgerClosed",
    "LedgerCorrupt",
    "LedgerError",
    "LogSignatureInvalid",
    "ProofUnavailable",
    "UnknownLog",
    "WitnessConflict",
    "WitnessError",
    "WitnessRequestInvalid",
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


class CosignatureInvalid(CheckpointInvalid):
    """A witness cosignature is missing from a checkpoint, malformed, or does not verify."""


class CosignatureMissing(CosignatureInvalid):
    """The checkpoint carries no cosignature line by that witness key (nothing was altered)."""


class WitnessError(LedgerError):
    """Root of what a witness refuses to cosign (c2sp.org/tlog-witness); the subclass says why."""


class WitnessRequestInvalid(WitnessError):
    """The add-checkpoint request is malformed (syntax, old size above the checkpoint's size)."""


class UnknownLog(WitnessError):
    """The witness is not configured with a key for the checkpoint's origin."""


class LogSignatureInvalid(WitnessError):
    """The checkpoint is not validly signed by the log key the witness trusts for its origin."""


class WitnessConflict(WitnessError):
    """The old size is not the size the witness last cosigned, or the same size has another root.

    ``size`` is the witness's size, which the log retries from (a different root at the same size
    is a fork: retrying cannot help).
    """

    def __init__(self, message: str, size: int, *, fork: bool = False) -> None:
        super().__init__(message)
        self.size = size
        self.fork = fork


class ConsistencyUnproven(WitnessError):
    """The consistency proof does not prove the witness's last checkpoint is a prefix of the new one."""
