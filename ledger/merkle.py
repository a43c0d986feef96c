"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.

Byte-for-byte the Certificate Transparency tree: ``leaf = SHA-256(0x00 || data)``,
``node = SHA-256(0x01 || left || right)``, the empty tree hashes to ``SHA-256("")``,
and proofs are the audit paths of RFC 9162 section 2.1.3 / 2.1.4, so any CT
verifier accepts what we emit and we accept what a CT log emits.

Everything here is a pure function over bytes and depends only on the standard
library, because the offline auditor tool (``appliance-verify``) imports it.
Proof *generation* is written once against a subtree-hash oracle
(:func:`inclusion_path`, :func:`consistency_path`): the list-based public
functions hand it an oracle that hashes from leaves, the node's stored tree
hands it one that looks stored nodes up, so both produce identical proofs.

The verifiers never raise: anything malformed (wrong types, wrong hash
lengths, sizes out of range) is simply "not a valid proof" and returns False.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_path",
    "consistency_proof",
    "inclusion_path",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "root_hash",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: ``oracle(start, end)`` returns MTH(D[start:end]) for ``0 <= start < end``.
SubtreeOracle = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """Hash one log entry as a leaf: ``SHA-256(0x00 || data)``.

    Only bytes-like data: ``bytes(3)`` would silently hash three zero bytes.
    """
    h = hashlib.sha256(_LEAF_PREFIX)
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 6962's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _list_oracle(leaf_hashes: Sequence[bytes]) -> SubtreeOracle:
    def mth(start: int, end: int) -> bytes:
        if end - start == 1:
            return leaf_hashes[start]
        k = split_point(end - start)
        return node_hash(mth(start, start + k), mth(start + k, end))

    return mth


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of a list of leaf hashes (``EMPTY_ROOT`` for none)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    # Iterative fold over the perfect subtrees, left to right; same result as
    # the recursive definition but without recursion or per-level lists.
    stack: list[tuple[int, bytes]] = []
    for h in leaf_hashes:
        size, cur = 1, h
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            cur = node_hash(left, cur)
            size *= 2
        stack.append((size, cur))
    _, acc = stack.pop()
    while stack:
        _, left = stack.pop()
        acc = node_hash(left, acc)
    return acc


def inclusion_path(index: int, size: int, mth: SubtreeOracle) -> list[bytes]:
    """Audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end, m = 0, size, index
    # Walk down from the root; siblings are collected top-down, the proof is bottom-up.
    while end - start > 1:
        k = split_point(end - start)
        if m < k:
            path.append(mth(start + k, end))
            end = start + k
        else:
            path.append(mth(start, start + k))
            start += k
            m -= k
    path.reverse()
    return path


def consistency_path(old_size: int, new_size: int, mth: SubtreeOracle) -> list[bytes]:
    """Consistency proof between tree sizes (RFC 9162 2.1.4.1 SUBPROOF)."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    path: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                path.append(mth(start, end))
            break
        k = split_point(n)
        if m <= k:
            path.append(mth(start + k, end))
            end = start + k
        else:
            path.append(mth(start, start + k))
            start += k
            m -= k
            complete = False
    path.reverse()
    return path


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for ``leaf_hashes[index]`` in the tree of all ``leaf_hashes``."""
    return inclusion_path(index, len(leaf_hashes), _list_oracle(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the first ``old_size`` leaves' tree is a prefix of the whole tree."""
    return consistency_path(old_size, len(leaf_hashes), _list_oracle(leaf_hashes))


def _is_hash(value: object) -> bool:
    return isinstance(value, (bytes, bytearray)) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """Root implied by an inclusion proof, or None when the proof is malformed."""
    try:
        if not (_is_hash(leaf) and _is_size(index) and _is_size(size) and index < size):
            return None
        path = list(path)
        if not all(_is_hash(p) for p in path):
            return None
        fn, sn, r = index, size - 1, bytes(leaf)
        for p in path:
            if sn == 0:
                return None
            if fn & 1 or fn == sn:
                r = node_hash(bytes(p), r)
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
            else:
                r = node_hash(r, bytes(p))
            fn >>= 1
            sn >>= 1
        return r if sn == 0 else None
    except Exception:  # noqa: BLE001 - a verifier answers "invalid", never raises
        return None


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """True iff ``path`` proves leaf ``index`` with hash ``leaf_hash`` is in ``root``."""
    if not _is_hash(root):
        return False
    r = root_from_inclusion(leaf_hash, index, tree_size, path)
    return r is not None and r == bytes(root)


def verify_consistency(
    old_size: int, new_size: int, path: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """True iff ``path`` proves the tree ``old_root`` (old_size) is a prefix of ``new_root``."""
    try:
        if not (_is_size(old_size) and _is_size(new_size) and old_size <= new_size):
            return False
        if not (_is_hash(old_root) and _is_hash(new_root)):
            return False
        proof = list(path)
        if not all(_is_hash(p) for p in proof):
            return False
        old_root, new_root = bytes(old_root), bytes(new_root)
        if old_size == new_size:
            return not proof and old_root == new_root and (old_size > 0 or old_root == EMPTY_ROOT)
        if old_size == 0:
            # Every tree extends the empty tree; CT verifiers accept an empty proof only.
            return not proof and old_root == EMPTY_ROOT
        if not proof:
            return False
        if old_size & (old_size - 1) == 0:
            proof = [old_root, *proof]
        fn, sn = old_size - 1, new_size - 1
        while fn & 1:
            fn >>= 1
            sn >>= 1
        fr = sr = bytes(proof[0])
        for c in proof[1:]:
            if sn == 0:
                return False
            c = bytes(c)
            if fn & 1 or fn == sn:
                fr = node_hash(c, fr)
                sr = node_hash(c, sr)
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
            else:
                sr = node_hash(sr, c)
            fn >>= 1
            sn >>= 1
        return sn == 0 and fr == old_root and sr == new_root
    except Exception:  # noqa: BLE001 - a verifier answers "invalid", never raises
        return False
