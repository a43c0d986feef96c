"""The stored Merkle tree: every node of the log's tree in one append-only file.

Nodes are kept in post-order (each leaf hash, then the internal nodes it
completes), so the file only ever grows at its end and the position of any
perfect subtree is arithmetic: leaf ``i`` sits at ``2i - popcount(i)`` and the
subtree of height ``k`` ending at leaf ``j`` sits ``k`` slots after it. A
tree of ``n`` leaves occupies exactly ``2n - popcount(n)`` slots of 32 bytes.

Any RFC 6962 subtree hash is either one stored node or (on the right edge of a
tree) a fold of the tree's *frontier*, its perfect subtrees, so a proof for any
size is read from O(log n) stored nodes: the log is never rehashed.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence

from ledger.errors import LedgerCorrupt, ProofUnavailable
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, consistency_path, inclusion_path, node_hash

__all__ = ["TreeFile", "leaf_position", "node_position", "root_of_frontier", "slots_for"]


def leaf_position(i: int) -> int:
    """Slot of leaf ``i`` in the post-order file."""
    return 2 * i - i.bit_count()


def node_position(level: int, index: int) -> int:
    """Slot of the height-``level`` subtree over leaves ``[index << level, (index + 1) << level)``."""
    return leaf_position(((index + 1) << level) - 1) + level


def slots_for(n: int) -> int:
    """Number of slots a tree of ``n`` leaves occupies."""
    return 2 * n - n.bit_count()


def leaves_for_slots(slots: int) -> int:
    """Largest ``n`` whose tree fits in ``slots`` slots (a torn file rounds down)."""
    n = slots // 2
    while slots_for(n + 1) <= slots:
        n += 1
    while n and slots_for(n) > slots:
        n -= 1
    return n


class TreeFile:
    """Post-order node file of one log, read with ``pread`` and appended at the end."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd
        # Reads go through a read-only map of the file (no syscall per node). It is
        # replaced, never closed, when the file grew past it: a reader in another
        # thread may still hold the old one, and only acknowledged slots are read.
        self._map: mmap.mmap | None = None

    @classmethod
    def open(cls, path: str, *, readonly: bool = False) -> TreeFile:
        flags = os.O_RDONLY if readonly else os.O_RDWR | os.O_CREAT
        return cls(path, os.open(path, flags | os.O_CLOEXEC, 0o600))

    def close(self) -> None:
        self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- size ---------------------------------------------------------------------------
    def stored_leaves(self) -> int:
        """Leaves whose nodes are completely on file (a torn tail rounds down)."""
        return leaves_for_slots(os.fstat(self._fd).st_size // HASH_SIZE)

    def truncate(self, leaves: int) -> None:
        size = slots_for(leaves) * HASH_SIZE
        if os.fstat(self._fd).st_size != size:
            self._map = None  # never touch pages past a new end (SIGBUS)
            os.ftruncate(self._fd, size)

    def append(self, data: bytes, leaves_before: int) -> None:
        """Write post-order node bytes for the leaves after ``leaves_before``."""
        offset = slots_for(leaves_before) * HASH_SIZE
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written

    def sync(self) -> None:
        os.fdatasync(self._fd)

    # -- reads --------------------------------------------------------------------------
    def _mapped(self, end: int) -> mmap.mmap:
        m = self._map
        if m is None or len(m) < end:
            size = os.fstat(self._fd).st_size
            if size < end:
                raise LedgerCorrupt(
                    f"{self.path}: node slot {end // HASH_SIZE - 1} is missing "
                    "(the file is shorter than the log)"
                )
            m = self._map = mmap.mmap(self._fd, size, prot=mmap.PROT_READ)
        return m

    def _slot(self, pos: int) -> bytes:
        start = pos * HASH_SIZE
        return self._mapped(start + HASH_SIZE)[start : start + HASH_SIZE]

    def node(self, level: int, index: int) -> bytes:
        return self._slot(node_position(level, index))

    def leaf(self, i: int) -> bytes:
        return self._slot(leaf_position(i))

    def leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes ``[start, end)`` read in one pass over their slots."""
        if start >= end:
            return []
        first, last = leaf_position(start), leaf_position(end - 1)
        raw = self._mapped((last + 1) * HASH_SIZE)[first * HASH_SIZE : (last + 1) * HASH_SIZE]
        offsets = ((leaf_position(i) - first) * HASH_SIZE for i in range(start, end))
        return [raw[o : o + HASH_SIZE] for o in offsets]

    def slots(self, first: int, count: int) -> bytes:
        """``count`` stored slots from slot ``first`` on (fewer where the file ends)."""
        end = min(first + count, os.fstat(self._fd).st_size // HASH_SIZE)
        if end <= first:
            return b""
        return self._mapped(end * HASH_SIZE)[first * HASH_SIZE : end * HASH_SIZE]

    def frontier(self, size: int) -> list[bytes]:
        """Roots of the perfect subtrees of the tree of ``size`` leaves, leftmost (largest) first."""
        out, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append(self.node(level, start >> level))
                start += 1 << level
        return out

    def root(self, size: int) -> bytes:
        return root_of_frontier(self.frontier(size))

    def _oracle(self, size: int):  # type: ignore[no-untyped-def]
        """Subtree-hash oracle for proofs within the tree of ``size`` leaves."""
        frontier = self.frontier(size)
        # Where each frontier subtree starts: a right-edge range [start, size) in a
        # proof is always a suffix of the frontier, folded once here.
        starts: dict[int, int] = {}
        s = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                starts[s] = len(starts)
                s += 1 << level
        suffix: dict[int, bytes] = {}
        acc = None
        for j in range(len(frontier) - 1, -1, -1):
            acc = frontier[j] if acc is None else node_hash(frontier[j], acc)
            suffix[j] = acc

        def mth(start: int, end: int) -> bytes:
            width = end - start
            if width & (width - 1) == 0 and start % width == 0:
                return self.node(width.bit_length() - 1, start // width)
            if end == size and start in starts:
                return suffix[starts[start]]
            raise ProofUnavailable(f"subtree [{start}, {end}) is not part of a tree of size {size}")

        return mth

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        if not 0 <= index < size:
            raise ProofUnavailable(f"entry {index} is not in a tree of size {size}")
        return inclusion_path(index, size, self._oracle(size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        if not 0 <= old_size <= new_size:
            raise ProofUnavailable(f"no consistency proof from size {old_size} to size {new_size}")
        return consistency_path(old_size, new_size, self._oracle(new_size))


def root_of_frontier(frontier: Sequence[bytes]) -> bytes:
    """Root of a tree from its perfect subtrees' roots, leftmost first (the empty tree for none)."""
    if not frontier:
        return EMPTY_ROOT
    acc = frontier[-1]
    for h in reversed(frontier[:-1]):
        acc = node_hash(h, acc)
    return acc
