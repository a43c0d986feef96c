"""The stored tree file: bulk leaf reads (what opening a ledger checks its tail against) agree with
single ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import _kernel
from ledger.tree import TreeFile


def _tree(path: Path, n: int) -> tuple[TreeFile, list[bytes]]:
    leaves = [hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(n)]
    tree = TreeFile.open(str(path))
    nodes, _ = _kernel.extend_tree([], 0, b"".join(leaves))
    tree.append(nodes, 0)
    return tree, leaves


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_leaves_reads_the_same_hashes_as_leaf(tmp_path_factory, n: int, data: st.DataObject) -> None:
    tree, leaves = _tree(tmp_path_factory.mktemp("tree") / "tree.bin", n)
    try:
        start = data.draw(st.integers(0, n))
        end = data.draw(st.integers(start, n))
        assert tree.leaves(start, end) == leaves[start:end] == [tree.leaf(i) for i in range(start, end)]
    finally:
        tree.close()
