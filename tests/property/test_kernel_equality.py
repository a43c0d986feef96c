"""The compiled Merkle kernels and their Python twin agree byte for byte, however the work is split."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import _merkle_py, merkle

try:
    from ext import _merkle as _compiled
except ImportError:  # no compiler at install time: only the twin is tested
    _compiled = None

REPO = Path(__file__).resolve().parents[2]
NOT_BUILT = "ext._merkle is not built; run `python setup.py build_ext --inplace`"


@pytest.fixture(params=[_merkle_py, _compiled], ids=["py", "c"], scope="module")
def kernel(request):
    if request.param is None:
        pytest.skip(NOT_BUILT)
    return request.param


@st.composite
def item_lists(draw) -> list[bytes | bytearray | memoryview]:
    """0..2000 entries of 0..300 bytes, some of them bytearrays or memoryviews.

    The bytes come from a seeded generator rather than from hypothesis directly, which keeps large
    lists cheap to draw while still shrinking (to fewer items and other seeds).
    """
    count = draw(st.integers(0, 2000))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    kinds = (bytes, bytearray, memoryview)
    return [rng.choice(kinds)(rng.randbytes(rng.randrange(301))) for _ in range(count)]


@st.composite
def chunked(draw) -> tuple[list[bytes | bytearray | memoryview], list[int]]:
    """Items plus sorted cut points that split them into random-sized consecutive chunks."""
    items = draw(item_lists())
    cuts = draw(st.lists(st.integers(0, len(items)), max_size=12))
    return items, sorted(cuts)


@settings(max_examples=100, deadline=None)
@given(items=item_lists())
def test_hash_leaves_matches_twin_and_leaf_hash(kernel, items):
    expected = b"".join(merkle.leaf_hash(x) for x in items)
    assert kernel.hash_leaves(items) == _merkle_py.hash_leaves(items) == expected


@settings(max_examples=100, deadline=None)
@given(case=chunked())
def test_extend_tree_in_chunks_matches_one_call(kernel, case):
    items, cuts = case
    blob = kernel.hash_leaves(items)
    whole = _merkle_py.extend_tree([], 0, blob)
    assert kernel.extend_tree([], 0, blob) == whole

    nodes, frontier, size = b"", [], 0
    for start, end in zip([0, *cuts], [*cuts, len(items)], strict=True):
        more, frontier = kernel.extend_tree(frontier, size, blob[32 * start : 32 * end])
        nodes += more
        size = end
    assert (nodes, frontier) == whole


@pytest.mark.parametrize(
    ("switch", "expected"),
    [("1", "py"), ("true", "py"), (None, "c"), ("0", "c")],
    ids=["no-extensions=1", "no-extensions=true", "unset", "no-extensions=0"],
)
def test_kernel_choice_follows_environment(switch, expected):
    if expected == "c" and _compiled is None:
        pytest.skip(NOT_BUILT)
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_NO_EXTENSIONS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if switch is not None:
        env["APPLIANCE_NO_EXTENSIONS"] = switch
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import ledger._kernel as k; print(k.IMPLEMENTATION)"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == expected
