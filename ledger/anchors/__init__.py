"""Anchoring signed checkpoints outside the node: Ethereum (web3) and Hyperledger Fabric (gRPC gateway).

Only :mod:`ledger.anchors.base` is imported here; the back ends pull in web3 or
grpc and are imported by name when used, so the offline verifier stays light.
"""

from ledger.anchors.base import (
    Anchor,
    AnchorError,
    AnchorIndex,
    AnchorMismatch,
    AnchorRecord,
    AnchorRejected,
    AnchorUnavailable,
    OnChain,
)

__all__ = [
    "Anchor",
    "AnchorError",
    "AnchorIndex",
    "AnchorMismatch",
    "AnchorRecord",
    "AnchorRejected",
    "AnchorUnavailable",
    "OnChain",
]
