"""Every Merkle kernel case, run on the pure-Python twin and on the compiled kernel."""

from __future__ import annotations

import hashlib

import pytest

from ledger import _merkle_py, merkle

try:
    from ext import _merkle as _compiled
except ImportError:  # no compiler at install time: only the twin is tested
    _compiled = None


@pytest.fixture(params=[_merkle_py, _compiled], ids=["py", "c"], scope="module")
def kernel(request):
    if request.param is None:
        pytest.skip("ext._merkle is not built; run `python setup.py build_ext --inplace`")
    return request.param


# RFC 6962 known answers: the leaves and tree heads of Certificate Transparency's reference test data.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Sizes on both sides of powers of two, where the frontier and the completed subtrees change shape.
SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129]


def entries(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") * (i % 5) for i in range(n)]


def split(blob: bytes) -> list[bytes]:
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


def fold(frontier: list[bytes]) -> bytes:
    """Tree head from the perfect-subtree roots: fold right to left, ``acc = node_hash(left, acc)``."""
    if not frontier:
        return merkle.EMPTY_ROOT
    acc = frontier[-1]
    for left in reversed(frontier[:-1]):
        acc = merkle.node_hash(left, acc)
    return acc


def leaf_pos(i: int) -> int:
    """Post-order index of leaf ``i`` in the node file."""
    return 2 * i - i.bit_count()


def perfect_roots(leaf_hashes: list[bytes]) -> list[bytes]:
    """Independent frontier: root_hash of each perfect subtree, largest first."""
    roots, start, size = [], 0, len(leaf_hashes)
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            roots.append(merkle.root_hash(leaf_hashes[start : start + (1 << bit)]))
            start += 1 << bit
    return roots


def post_order_nodes(leaf_hashes: list[bytes], start: int) -> bytes:
    """Independent node file for leaves ``start:``: each leaf, then every perfect subtree it completes."""
    out = bytearray()
    for i in range(start, len(leaf_hashes)):
        out += leaf_hashes[i]
        level = 1
        while (i + 1) % (1 << level) == 0:
            out += merkle.root_hash(leaf_hashes[i + 1 - (1 << level) : i + 1])
            level += 1
    return bytes(out)


def test_hash_leaves_of_nothing_is_empty(kernel):
    assert kernel.hash_leaves([]) == b""


def test_hash_leaves_empty_entry_is_the_rfc6962_empty_leaf(kernel):
    assert kernel.hash_leaves([b""]).hex() == CT_ROOTS[0]


def test_hash_leaves_matches_leaf_hash(kernel):
    items = entries(2500)  # more than one internal batch
    assert kernel.hash_leaves(items) == b"".join(merkle.leaf_hash(x) for x in items)


def test_hash_leaves_accepts_bytes_like_items(kernel):
    items = [b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4]]
    assert kernel.hash_leaves(items) == merkle.leaf_hash(b"abc") * 3


def test_hash_leaves_accepts_any_iterable(kernel):
    assert kernel.hash_leaves(x for x in CT_LEAVES) == b"".join(map(merkle.leaf_hash, CT_LEAVES))


def test_hash_leaves_returns_bytes(kernel):
    assert type(kernel.hash_leaves([bytearray(b"x")])) is bytes


@pytest.mark.parametrize("size", range(1, len(CT_LEAVES) + 1))
def test_extend_tree_reproduces_ct_tree_heads(kernel, size):
    _, frontier = kernel.extend_tree([], 0, kernel.hash_leaves(CT_LEAVES[:size]))
    assert fold(frontier).hex() == CT_ROOTS[size - 1]


def test_extend_tree_with_nothing_changes_nothing(kernel):
    assert kernel.extend_tree([], 0, b"") == (b"", [])
    frontier = perfect_roots(split(kernel.hash_leaves(entries(5))))
    assert kernel.extend_tree(frontier, 5, b"") == (b"", frontier)


def test_extend_tree_one_leaf(kernel):
    leaf = merkle.leaf_hash(b"one")
    assert kernel.extend_tree([], 0, leaf) == (leaf, [leaf])


def test_extend_tree_second_leaf_completes_a_pair(kernel):
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    nodes, frontier = kernel.extend_tree([a], 1, b)
    assert nodes == b + merkle.node_hash(a, b)
    assert frontier == [merkle.node_hash(a, b)]


@pytest.mark.parametrize("start", SIZES)
@pytest.mark.parametrize("count", [0, 1, 2, 3, 8, 33])
def test_extend_tree_across_powers_of_two(kernel, start, count):
    hashes = split(kernel.hash_leaves(entries(start + count)))
    nodes, frontier = kernel.extend_tree(perfect_roots(hashes[:start]), start, b"".join(hashes[start:]))
    assert nodes == post_order_nodes(hashes, start)
    assert len(nodes) == 32 * (leaf_pos(start + count) - leaf_pos(start))
    assert frontier == perfect_roots(hashes)
    assert all(type(h) is bytes for h in frontier)


@pytest.mark.parametrize("size", [*SIZES[1:], 1000])
def test_whole_tree_folds_to_root_hash_and_leaves_sit_at_leaf_pos(kernel, size):
    hashes = split(kernel.hash_leaves(entries(size)))
    nodes, frontier = kernel.extend_tree([], 0, b"".join(hashes))
    assert fold(frontier) == merkle.root_hash(hashes)
    assert len(nodes) == 32 * leaf_pos(size)
    for i, h in enumerate(hashes):
        assert nodes[32 * leaf_pos(i) : 32 * leaf_pos(i) + 32] == h


def test_extend_tree_accepts_bytes_like_leaf_hashes(kernel):
    blob = kernel.hash_leaves(entries(20))
    expected = kernel.extend_tree([], 0, blob)
    assert kernel.extend_tree([], 0, bytearray(blob)) == expected
    assert kernel.extend_tree([], 0, memoryview(blob)) == expected


def test_extend_tree_keeps_untouched_frontier_entries(kernel):
    frontier = perfect_roots(split(kernel.hash_leaves(entries(6))))  # sizes 4 and 2
    _, new = kernel.extend_tree(frontier, 6, merkle.leaf_hash(b"7"))
    assert new[0] is frontier[0] and new[1] is frontier[1]


def test_extend_tree_hashes_frontier_entries_as_given(kernel):
    # Neither kernel checks the length of a frontier entry; both hash what they were given.
    leaf = merkle.leaf_hash(b"x")
    nodes, frontier = kernel.extend_tree([b"short"], 1, leaf)
    assert nodes == leaf + hashlib.sha256(b"\x01short" + leaf).digest()
    assert frontier == [nodes[32:]]


@pytest.mark.parametrize(
    ("frontier", "size", "leaf_hashes", "error", "message"),
    [
        ([], 0, b"x" * 31, ValueError, "leaf_hashes must be a whole number of 32-byte hashes"),
        ([], 0, b"x" * 33, ValueError, "leaf_hashes must be a whole number of 32-byte hashes"),
        ([b"x" * 32], 0, b"", ValueError, "frontier of 1 hashes does not fit a tree of size 0"),
        ([], 1, b"", ValueError, "frontier of 0 hashes does not fit a tree of size 1"),
        ([b"x" * 32], 3, b"", ValueError, "frontier of 1 hashes does not fit a tree of size 3"),
        ([b"x" * 32] * 2, 4, b"x" * 32, ValueError, "frontier of 2 hashes does not fit a tree of size 4"),
        ([], 0.0, b"", TypeError, "'float' object cannot be interpreted as an integer"),
        ([], 0, None, TypeError, "object of type 'NoneType' has no len()"),
        (None, 0, b"", TypeError, "object of type 'NoneType' has no len()"),
        (["x" * 32], 1, b"y" * 32, TypeError, "can't concat str to bytes"),
    ],
    ids=[
        "short-hash",
        "long-hash",
        "frontier-too-long",
        "frontier-too-short",
        "frontier-missing-subtree",
        "frontier-extra-subtree",
        "size-not-int",
        "hashes-none",
        "frontier-none",
        "frontier-not-bytes",
    ],
)
def test_extend_tree_errors(kernel, frontier, size, leaf_hashes, error, message):
    with pytest.raises(error) as caught:
        kernel.extend_tree(frontier, size, leaf_hashes)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([b"ok", "text"], "can't concat str to bytes"),
        ([b"ok", None], "can't concat NoneType to bytes"),
        (b"ab", "can't concat int to bytes"),
        (7, "'int' object is not iterable"),
        ([memoryview(b"abcd")[::2]], "can't concat memoryview to bytes"),
    ],
    ids=["str-item", "none-item", "bytes-not-a-list", "not-iterable", "non-contiguous-view"],
)
def test_hash_leaves_errors(kernel, items, message):
    with pytest.raises(TypeError) as caught:
        kernel.hash_leaves(items)
    assert str(caught.value) == message
