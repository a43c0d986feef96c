"""The audit ledger: hash-chained entries in an RFC 6962 Merkle log with signed tree heads.

Depends only on the standard library and ``cryptography`` (plus ``orjson`` when
present), so auditors can install it alone and verify offline.
"""

from ledger.errors import (
    ChainBroken,
    CheckpointInvalid,
    EntryInvalid,
    LedgerClosed,
    LedgerCorrupt,
    LedgerError,
    ProofUnavailable,
)
from ledger.log import BatchReceipt, Ledger, Receipt, Record
from ledger.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "BatchReceipt",
    "ChainBroken",
    "CheckpointInvalid",
    "EntryInvalid",
    "Ledger",
    "LedgerClosed",
    "LedgerCorrupt",
    "LedgerError",
    "ProofUnavailable",
    "Receipt",
    "Record",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]
