"""Properties of ledger.merkle over random trees: proofs verify, and any single tamper is rejected.

The reference Merkle tree hash below is written straight from RFC 6962 section 2.1 with hashlib, sharing no
code with the module under test.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300
SETTINGS = settings(max_examples=200, deadline=None)


def _k(n: int) -> int:
    """RFC 6962: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_mth(entries: tuple[bytes, ...]) -> bytes:
    """MTH(D[n]) exactly as RFC 6962 section 2.1 defines it."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = _k(len(entries))
    return hashlib.sha256(b"\x01" + reference_mth(entries[:k]) + reference_mth(entries[k:])).digest()


def inclusion_shape(m: int, n: int) -> tuple[str, ...]:
    """Sides of the siblings in PATH(m, D[n]) (RFC 6962 2.1.1), leaf to root."""
    if n == 1:
        return ()
    k = _k(n)
    return (*inclusion_shape(m, k), "R") if m < k else (*inclusion_shape(m - k, n - k), "L")


def consistency_shape(m: int, n: int, complete: bool = True) -> tuple[str, ...]:
    """Layout of SUBPROOF(m, D[n], complete) (RFC 6962 2.1.2), bottom-up."""
    if m == n:
        return () if complete else ("old-subtree",)
    k = _k(n)
    if m <= k:
        return (*consistency_shape(m, k, complete), "R")
    return (*consistency_shape(m - k, n - k, False), "L")


@cache
def _entries(seed: int, n: int) -> tuple[bytes, ...]:
    return tuple(hashlib.sha256(b"%d/%d" % (seed, i)).digest()[: (seed + i) % 40] for i in range(n))


class _Tree:
    """Leaf hashes of n+1 entries (so a tree of size n+1 exists for tamper checks); roots[size] on demand."""

    def __init__(self, seed: int, n: int) -> None:
        self.leaves = [leaf_hash(e) for e in _entries(seed, n + 1)]
        self.roots = _Roots(self.leaves)


class _Roots(dict[int, bytes]):
    def __init__(self, leaves: list[bytes]) -> None:
        super().__init__()
        self.leaves = leaves

    def __missing__(self, size: int) -> bytes:
        self[size] = root_hash(self.leaves[:size])
        return self[size]


def _tree(seed: int, n: int) -> tuple[list[bytes], _Roots]:
    tree = _Tree(seed, n)
    return tree.leaves, tree.roots


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _structural_tampers(path: list[bytes], extra: bytes) -> list[list[bytes]]:
    """The path with one element dropped, duplicated in place, or an element appended / prepended."""
    out: list[list[bytes]] = []
    for i in range(len(path)):
        out.append(path[:i] + path[i + 1 :])
        out.append([*path[: i + 1], path[i], *path[i + 1 :]])
    out += [[*path, extra], [extra, *path]]
    return out


seeds = st.integers(min_value=0, max_value=2**16)
sizes = st.integers(min_value=1, max_value=MAX_LEAVES)


@SETTINGS
@given(seed=seeds, n=st.integers(min_value=0, max_value=MAX_LEAVES))
def test_root_hash_equals_rfc6962_mth(seed, n):
    entries = _entries(seed, n)
    assert root_hash([leaf_hash(e) for e in entries]) == reference_mth(entries)


def test_reference_mth_of_nothing_is_the_empty_root():
    assert reference_mth(()) == EMPTY_ROOT == root_hash([])


@SETTINGS
@given(seed=seeds, n=sizes, data=st.data())
def test_inclusion_proofs_verify_and_every_single_tamper_is_rejected(seed, n, data):
    leaves, roots = _tree(seed, n)
    index = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    leaf, root, path = leaves[index], roots[n], inclusion_proof(leaves[:n], index)
    assert verify_inclusion(leaf, index, n, path, root)
    assert root_from_inclusion(leaf, index, n, path) == root

    for bit in range(256):  # every single bit of every element
        assert not verify_inclusion(_flip(leaf, bit), index, n, path, root)
        assert not verify_inclusion(leaf, index, n, path, _flip(root, bit))
        for i in range(len(path)):
            assert not verify_inclusion(
                leaf, index, n, [*path[:i], _flip(path[i], bit), *path[i + 1 :]], root
            )

    for tampered in _structural_tampers(path, root):
        assert not verify_inclusion(leaf, index, n, tampered, root)

    for other in (index - 1, index + 1):
        assert not verify_inclusion(leaf, other, n, path, root)
    for other in (n - 1, n + 1):
        # Against the real tree of the other size the proof must fail. Against the same root it passes
        # exactly when both sizes give the audit path the same shape: RFC 6962 proofs do not bind the
        # tree size, the signed tree head does (Go's proof.VerifyInclusion agrees).
        assert not verify_inclusion(leaf, index, other, path, roots[other])
        same_shape = index < other and inclusion_shape(index, other) == inclusion_shape(index, n)
        assert verify_inclusion(leaf, index, other, path, root) is same_shape


@SETTINGS
@given(seed=seeds, n=sizes, data=st.data())
def test_consistency_proofs_verify_and_every_single_tamper_is_rejected(seed, n, data):
    leaves, roots = _tree(seed, n)
    old = data.draw(st.integers(min_value=0, max_value=n), label="old_size")
    old_root, new_root, path = roots[old], roots[n], consistency_proof(leaves[:n], old)
    assert verify_consistency(old, n, path, old_root, new_root)
    if old in (0, n):
        assert path == []
        return

    for bit in range(256):
        assert not verify_consistency(old, n, path, _flip(old_root, bit), new_root)
        assert not verify_consistency(old, n, path, old_root, _flip(new_root, bit))
        for i in range(len(path)):
            tampered = [*path[:i], _flip(path[i], bit), *path[i + 1 :]]
            assert not verify_consistency(old, n, tampered, old_root, new_root)

    for tampered in [*_structural_tampers(path, old_root), *_structural_tampers(path, new_root)]:
        assert not verify_consistency(old, n, tampered, old_root, new_root)

    for other in (old - 1, old + 1):
        assert not verify_consistency(other, n, path, old_root, new_root)
        if other < n:
            assert not verify_consistency(other, n, path, roots[other], new_root)
    for other in (n - 1, n + 1):
        # As for inclusion: the new size is bound by the tree head, not by the proof's hashes.
        assert not verify_consistency(old, other, path, old_root, roots[other])
        same_shape = old < other and consistency_shape(old, other) == consistency_shape(old, n)
        assert verify_consistency(old, other, path, old_root, new_root) is same_shape


@SETTINGS
@given(seed=seeds, n=sizes, data=st.data())
def test_every_prefix_is_consistent_with_every_later_tree(seed, n, data):
    leaves, roots = _tree(seed, n)
    old = data.draw(st.integers(min_value=0, max_value=n), label="old_size")
    new = data.draw(st.integers(min_value=old, max_value=n), label="new_size")
    assert verify_consistency(old, new, consistency_proof(leaves[:new], old), roots[old], roots[new])


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    st.text(max_size=40),
    st.lists(st.one_of(st.none(), st.integers(), st.binary(max_size=40), st.text(max_size=5)), max_size=5),
)


@SETTINGS
@given(args=st.tuples(junk, junk, junk, junk, junk))
def test_verifiers_never_raise_on_arbitrary_input(args: tuple[Any, ...]):
    assert verify_inclusion(*args) in (True, False)
    assert verify_consistency(*args) in (True, False)
    assert root_from_inclusion(*args[:4]) is None or len(root_from_inclusion(*args[:4])) == 32
