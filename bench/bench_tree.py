"""Build a whole RFC 6962 tree (every node) and its root from raw entries, with our kernels and with peers.

    python bench/bench_tree.py [--leaves N]

Peers, all on the same seeded entries (0..300 bytes each):
  c         ledger's compiled kernels (ext._merkle): hash_leaves + extend_tree, root folded from the frontier
  py        the same with their pure-Python twin (ledger._merkle_py)
  hashlib   a plain level-by-level hashlib tree (an unpaired last node moves up a level unchanged)
  pymerkle  pymerkle.InmemoryTree: append_entry for each entry, then get_root (capped; see --pymerkle-cap)

Each timing is the median of 5 runs (3 for the slow peers), reported as entries per second; every
implementation must produce the same root or the script fails. Prints to stdout only.
"""

from __future__ import annotations

import gc
import hashlib
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

from ledger import _merkle_py, merkle

try:
    from ext import _merkle as _compiled
except ImportError:
    sys.exit("ext._merkle is not built; run `python setup.py build_ext --inplace` first")

SEED = 6962


def make_entries(n: int) -> list[bytes]:
    rng = random.Random(SEED)
    return [rng.randbytes(rng.randrange(301)) for _ in range(n)]


def fold(frontier: list[bytes]) -> bytes:
    """Tree head from the perfect-subtree roots, folded right to left."""
    if not frontier:
        return merkle.EMPTY_ROOT
    acc = frontier[-1]
    for left in reversed(frontier[:-1]):
        acc = merkle.node_hash(left, acc)
    return acc


Builder = Callable[[Sequence[bytes]], bytes]


def kernel_tree(kernel) -> Builder:
    def build(entries: Sequence[bytes]) -> bytes:
        _nodes, frontier = kernel.extend_tree([], 0, kernel.hash_leaves(entries))
        return fold(frontier)

    return build


def hashlib_tree(entries: Sequence[bytes]) -> bytes:
    """Every level of the tree as a list of hashes; returns the root."""
    sha256 = hashlib.sha256
    level = [sha256(b"\x00" + e).digest() for e in entries]
    if not level:
        return sha256(b"").digest()
    levels = [level]
    while len(level) > 1:
        up = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])
        levels.append(up)
        level = up
    return level[0]


def pymerkle_tree(entries: Sequence[bytes]) -> bytes:
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    for e in entries:
        tree.append_entry(e)
    return tree.get_root()


def median_seconds(build: Builder, entries: Sequence[bytes], runs: int, root: bytes) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        got = build(entries)
        times.append(time.perf_counter() - start)
        if got != root:
            sys.exit(f"wrong root from {build!r}: {got.hex()} != {root.hex()}")
    return statistics.median(times)


@click.command()
@click.option(
    "--leaves", type=click.IntRange(min=1), default=1_000_000, show_default=True, help="Entries in the tree."
)
@click.option(
    "--pymerkle-cap", type=click.IntRange(min=1), default=100_000, help="Most entries for pymerkle."
)
def main(leaves: int, pymerkle_cap: int) -> None:
    entries = make_entries(leaves)
    capped = entries[: min(leaves, pymerkle_cap)]
    root = merkle.root_hash([merkle.leaf_hash(e) for e in entries])  # the reference every peer must match
    root_capped = merkle.root_hash([merkle.leaf_hash(e) for e in capped])

    peers = [  # name, builder, entries, runs, reference root
        ("c", kernel_tree(_compiled), entries, 5, root),
        ("py", kernel_tree(_merkle_py), entries, 3, root),
        ("hashlib", hashlib_tree, entries, 3, root),
        ("pymerkle", pymerkle_tree, capped, 3, root_capped),
    ]
    print(f"RFC 6962 tree of {leaves:,} entries (0..300 bytes, seed {SEED}); all nodes + root; median")
    print(f"{'impl':<10} {'entries':>10} {'runs':>5} {'median s':>10} {'entries/s':>12}")
    rate = {}
    for name, build, data, runs, want in peers:
        seconds = median_seconds(build, data, runs, want)
        rate[name] = len(data) / seconds
        print(f"{name:<10} {len(data):>10,} {runs:>5} {seconds:>10.3f} {rate[name]:>12,.0f}")
    for name in ("py", "hashlib", "pymerkle"):
        print(f"ratio c/{name} = {rate['c'] / rate[name]:.1f}")


if __name__ == "__main__":
    main()
