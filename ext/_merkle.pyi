"""Type stub for the compiled Merkle kernels; the pure-Python twin is ``ledger/_merkle_py.py``."""

from collections.abc import Sequence

def hash_leaves(items: Sequence[bytes]) -> bytes:
    """Concatenated RFC 6962 leaf hashes (32 bytes each) of ``items``, in order."""

def extend_tree(frontier: Sequence[bytes], size: int, leaf_hashes: bytes) -> tuple[bytes, list[bytes]]:
    """Append leaves to a post-order node sequence; returns (new post-order nodes, new frontier)."""
