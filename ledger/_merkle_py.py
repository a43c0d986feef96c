"""Pure-Python twin of the compiled Merkle kernels in ``ext/_merkle.pyx``.

The ledger's hot loops (hashing a batch of leaves, extending the stored
post-order node file) are compiled when a C compiler was available at install
time; this module is the reference they are tested against and the fallback
when they are not. Keep the two behaviourally identical.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["extend_tree", "hash_leaves"]

_sha256 = hashlib.sha256


def hash_leaves(items: Sequence[bytes]) -> bytes:
    """Concatenated RFC 6962 leaf hashes (32 bytes each) of ``items``, in order."""
    out = bytearray()
    for item in items:
        out += _sha256(b"\x00" + item).digest()
    return bytes(out)


def extend_tree(frontier: Sequence[bytes], size: int, leaf_hashes: bytes) -> tuple[bytes, list[bytes]]:
    """Append leaves to a post-order node sequence.

    ``frontier`` holds the roots of the perfect subtrees of the current tree of
    ``size`` leaves, largest (leftmost) first: one per set bit of ``size``.
    Returns the bytes to append to the post-order node file (each new leaf hash
    followed by the internal nodes it completes) and the new frontier.
    """
    if len(leaf_hashes) % 32:
        raise ValueError("leaf_hashes must be a whole number of 32-byte hashes")
    if len(frontier) != bin(size).count("1"):
        raise ValueError(f"frontier of {len(frontier)} hashes does not fit a tree of size {size}")
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    stack = list(frontier)
    out = bytearray()
    n = size
    for off in range(0, len(leaf_hashes), 32):
        cur = leaf_hashes[off : off + 32]
        out += cur
        c = n
        while c & 1:
            cur = _sha256(b"\x01" + stack.pop() + cur).digest()
            out += cur
            c >>= 1
        stack.append(cur)
        n += 1
    return bytes(out), stack
