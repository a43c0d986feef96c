"""The ledger's speed targets, each measured side by side with named peers in one run.

    python bench/bench_ledger.py [--entries 1000000] [--proof-size 10000000] [--quick]

Targets (issue: foundation and ledger):
  batch      >= 200,000 entries/s appended durably through append_many
  concurrent >= 10,000 acknowledged entries/s from 64 single-entry writers, p99 <= 20 ms
  proofs     inclusion and consistency proofs from a 10,000,000-entry ledger in <= 1 ms each
  verify     full `ledger verify` of a 1,000,000-entry ledger in <= 10 s

Peers, on the same entries:
  pymerkle   pymerkle.SqliteTree (its durable store) for appends; InmemoryTree for proofs
  hashlib    a plain implementation: frames to a file + fsync, leaf hashes kept in a list,
             proofs from the RFC 6962 recursion over that list, verification by rehashing

Prints medians and ratios (ours / peer, "x faster") to stdout; nothing is written but
scratch data under --workdir (deleted afterwards).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import Ledger, Record, _kernel, merkle
from ledger.entry import canonical_json
from ledger.verify import verify_ledger

ORIGIN = "bench.example/ledger"
SUBJECT = "cust:0123456789abcdef0123456789abcdef"


def records(n: int, start: int = 0) -> list[Record]:
    # A typical entry: an agent read of one customer's two fields, with a digest.
    return [
        Record(
            "agent:3f2a9c1b7d4e",
            "record.read",
            [SUBJECT],
            {
                "fields": ["name", "phone"],
                "profile": "agent",
                "n": start + i,
                "digest": hashlib.sha256(str(start + i).encode()).hexdigest(),
            },
        )
        for i in range(n)
    ]


def raw_entries(n: int) -> list[bytes]:
    """The peers store the very bytes our ledger stores for the same records."""
    return [
        canonical_json(
            {
                "action": r.action,
                "actor": r.actor,
                "details": r.details,
                "prev": "0" * 64,
                "request_id": None,
                "seq": i,
                "subject": list(r.subject),
                "time": "2026-11-24T00:00:00.000000Z",
            }
        )
        for i, r in enumerate(records(n))
    ]


def row(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"  {name:<34} {value:>14,.1f} {unit:<12} {note}")


def ratio(label: str, ours: float, peer: float, higher_is_better: bool = True) -> None:
    r = ours / peer if higher_is_better else peer / ours
    print(f"  ratio {label:<28} {r:>10.1f}x")


# -- batch appends --------------------------------------------------------------------------
def bench_batch(work: Path, n: int, batch: int) -> tuple[float, Path]:
    path = work / "batch"
    Ledger.create(str(path), ORIGIN)
    rates = []
    with Ledger.open(str(path)) as led:
        for k in range(0, n, batch):
            recs = records(min(batch, n - k), k)
            t = time.perf_counter()
            led.append_many(recs)
            rates.append(len(recs) / (time.perf_counter() - t))
    return statistics.median(rates), path


def bench_batch_hashlib(work: Path, n: int, batch: int) -> float:
    entries = raw_entries(n)
    leaves: list[bytes] = []
    rates = []
    with open(work / "plain.log", "wb") as fh:
        for k in range(0, n, batch):
            chunk = entries[k : k + batch]
            t = time.perf_counter()
            buf = bytearray()
            for e in chunk:
                buf += struct.pack(">II", len(e), zlib.crc32(e)) + e
                leaves.append(hashlib.sha256(b"\x00" + e).digest())
            fh.write(buf)
            fh.flush()
            os.fdatasync(fh.fileno())
            rates.append(len(chunk) / (time.perf_counter() - t))
    return statistics.median(rates)  # no chain, no stored tree, no index: the floor


def bench_batch_pymerkle(work: Path, n: int, batch: int) -> float:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(work / "pymerkle.db"))
    entries = raw_entries(n)
    rates = []
    for k in range(0, n, batch):
        chunk = entries[k : k + batch]
        t = time.perf_counter()
        tree.append_entries(chunk)
        tree.get_root()
        rates.append(len(chunk) / (time.perf_counter() - t))
    tree.close()
    return statistics.median(rates)


# -- concurrent single appends ------------------------------------------------------------------
def run_writers(append, writers: int, per_writer: int) -> tuple[float, float, float]:
    lat: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(writers + 1)

    def worker(w: int) -> None:
        mine = []
        start.wait()
        for i in range(per_writer):
            t = time.perf_counter()
            append(w, i)
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(writers)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    lat.sort()
    return len(lat) / elapsed, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def bench_concurrent(work: Path, writers: int, per_writer: int) -> tuple[float, float, float]:
    path = work / "concurrent"
    Ledger.create(str(path), ORIGIN)
    with Ledger.open(str(path)) as led:
        return run_writers(
            lambda w, i: led.append("agent:k1", "reply.checked", [SUBJECT], {"w": w, "i": i}),
            writers,
            per_writer,
        )


def bench_concurrent_hashlib(work: Path, writers: int, per_writer: int) -> tuple[float, float, float]:
    lock = threading.Lock()
    leaves: list[bytes] = []
    fh = open(work / "plain-concurrent.log", "wb")

    entry = raw_entries(1)[0]

    def append(w: int, i: int) -> None:
        e = entry
        with lock:  # no group commit: one fsync per acknowledged entry
            fh.write(struct.pack(">II", len(e), zlib.crc32(e)) + e)
            fh.flush()
            os.fdatasync(fh.fileno())
            leaves.append(hashlib.sha256(b"\x00" + e).digest())

    try:
        return run_writers(append, writers, per_writer)
    finally:
        fh.close()


def bench_concurrent_pymerkle(work: Path, writers: int, per_writer: int) -> tuple[float, float, float]:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(work / "pymerkle-concurrent.db"))
    tree.con.close()
    import sqlite3

    tree.con = sqlite3.connect(str(work / "pymerkle-concurrent.db"), check_same_thread=False)
    tree.cur = tree.con.cursor()
    lock = threading.Lock()

    entry = raw_entries(1)[0]

    def append(w: int, i: int) -> None:
        with lock:
            tree.append_entry(entry)

    try:
        return run_writers(append, writers, per_writer)
    finally:
        tree.con.close()


# -- proofs -----------------------------------------------------------------------------------
def bench_proofs(led: Ledger, samples: int) -> tuple[float, float, float, float]:
    size = led.size
    rng = random.Random(9162)
    inc, con = [], []
    for _ in range(samples):
        i = rng.randrange(size)
        t = time.perf_counter()
        led.inclusion_proof(i, size)
        inc.append(time.perf_counter() - t)
        m = rng.randrange(1, size)
        t = time.perf_counter()
        led.consistency_proof(m, size)
        con.append(time.perf_counter() - t)
    inc.sort()
    con.sort()
    us = 1e6
    return (
        statistics.median(inc) * us,
        inc[int(samples * 0.99)] * us,
        statistics.median(con) * us,
        con[int(samples * 0.99)] * us,
    )


def bench_proofs_pymerkle(n: int, samples: int) -> tuple[float, float]:
    from pymerkle import InmemoryTree

    tree = InmemoryTree()
    for e in raw_entries(n):
        tree.append_entry(e)
    rng = random.Random(9162)
    inc, con = [], []
    for _ in range(samples):
        t = time.perf_counter()
        tree.prove_inclusion(rng.randrange(1, n + 1), n)
        inc.append(time.perf_counter() - t)
        t = time.perf_counter()
        tree.prove_consistency(rng.randrange(1, n), n)
        con.append(time.perf_counter() - t)
    return statistics.median(inc) * 1e6, statistics.median(con) * 1e6


def bench_proofs_hashlib(n: int, samples: int) -> tuple[float, float]:
    leaves = [hashlib.sha256(b"\x00" + e).digest() for e in raw_entries(n)]
    rng = random.Random(9162)
    inc, con = [], []
    for _ in range(samples):
        t = time.perf_counter()
        merkle.inclusion_proof(leaves, rng.randrange(n))  # the RFC recursion over the leaf list
        inc.append(time.perf_counter() - t)
        t = time.perf_counter()
        merkle.consistency_proof(leaves, rng.randrange(1, n))
        con.append(time.perf_counter() - t)
    return statistics.median(inc) * 1e6, statistics.median(con) * 1e6


# -- verify -----------------------------------------------------------------------------------
def bench_verify(path: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        report = verify_ledger(str(path))
        times.append(time.perf_counter() - t)
        assert report.ok, report.problems
    return statistics.median(times)


def stored_entries(path: Path) -> Iterator[bytes]:
    """The entries of a ledger's segments, in order: how the peers read our files.

    Deliberately not ``ledger.segment.scan``: the peers' timings include reading,
    and checking frame CRCs is work the plain peer does not claim to do.
    """
    for seg in sorted((path / "segments").iterdir()):
        data = seg.read_bytes()
        off = 16
        while off < len(data):
            (length,) = struct.unpack_from(">I", data, off)
            yield data[off + 8 : off + 8 + length]
            off += 8 + length


def bench_verify_hashlib(path: Path) -> float:
    """Rehash every stored entry and the tree (no chain, index or tree-file checks)."""
    t = time.perf_counter()
    leaves = [hashlib.sha256(b"\x00" + e).digest() for e in stored_entries(path)]
    merkle.root_hash(leaves)
    return time.perf_counter() - t


def bench_verify_pymerkle(path: Path, limit: int) -> tuple[float, int]:
    from pymerkle import InmemoryTree

    t = time.perf_counter()
    tree = InmemoryTree()
    count = 0
    for entry in itertools.islice(stored_entries(path), limit):
        tree.append_entry(entry)
        count += 1
    tree.get_root()
    return time.perf_counter() - t, count


@click.command()
@click.option("--entries", default=1_000_000, show_default=True, help="Ledger size for batch and verify.")
@click.option("--proof-size", default=10_000_000, show_default=True, help="Ledger size for proofs.")
@click.option("--peer-size", default=100_000, show_default=True, help="Cap for the slow peers.")
@click.option("--quick", is_flag=True, help="Small sizes, to check the script runs.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="Scratch directory.")
def main(entries: int, proof_size: int, peer_size: int, quick: bool, workdir: str | None) -> None:
    if quick:
        entries, proof_size, peer_size = 50_000, 200_000, 10_000
    work = Path(tempfile.mkdtemp(prefix="appliance-bench-", dir=workdir))
    print(f"ledger benchmarks ({os.cpu_count()} cores, kernels: {_kernel.IMPLEMENTATION}, scratch {work})")
    try:
        batch = 10_000
        print(f"\n[batch] append_many in batches of {batch:,}, durable (fdatasync) before returning")
        ours, batch_path = bench_batch(work, entries, batch)
        row(f"ours ({entries:,} entries)", ours, "entries/s", "target >= 200,000")
        plain = bench_batch_hashlib(work, entries, batch)
        row(f"hashlib ({entries:,})", plain, "entries/s")
        pm = bench_batch_pymerkle(work, peer_size, batch)
        row(f"pymerkle SqliteTree ({peer_size:,})", pm, "entries/s")
        ratio("ours/hashlib", ours, plain)
        ratio("ours/pymerkle", ours, pm)

        writers, per = 64, 150 if quick else 400
        print(f"\n[concurrent] {writers} writers x {per} single appends, each acknowledged when durable")
        tput, p50, p99 = bench_concurrent(work, writers, per)
        row(
            "ours (group commit)",
            tput,
            "acks/s",
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (target >= 10,000/s, p99 <= 20 ms)",
        )
        ht, h50, h99 = bench_concurrent_hashlib(work, writers, per // 4)
        row("hashlib (fsync per append)", ht, "acks/s", f"p50 {h50:.2f} ms, p99 {h99:.2f} ms")
        mt, m50, m99 = bench_concurrent_pymerkle(work, writers, per // 4)
        row("pymerkle SqliteTree (locked)", mt, "acks/s", f"p50 {m50:.2f} ms, p99 {m99:.2f} ms")
        ratio("ours/hashlib", tput, ht)
        ratio("ours/pymerkle", tput, mt)

        print(f"\n[proofs] from a {proof_size:,}-entry ledger (built with append_many)")
        proof_path = work / "proofs"
        Ledger.create(str(proof_path), ORIGIN)
        t = time.perf_counter()
        with Ledger.open(str(proof_path)) as led:
            chunk = 100_000
            for k in range(0, proof_size, chunk):
                led.append_many(records(min(chunk, proof_size - k), k))
            build = time.perf_counter() - t
            row("build (append_many, 100k batches)", proof_size / build, "entries/s")
            i50, i99, c50, c99 = bench_proofs(led, 2000)
        row("ours inclusion", i50, "us median", f"p99 {i99:.1f} us (target <= 1,000 us)")
        row("ours consistency", c50, "us median", f"p99 {c99:.1f} us (target <= 1,000 us)")
        shutil.rmtree(proof_path)
        pi, pc = bench_proofs_pymerkle(peer_size, 200)
        row(f"pymerkle inclusion ({peer_size:,})", pi, "us median")
        row(f"pymerkle consistency ({peer_size:,})", pc, "us median")
        hi, hc = bench_proofs_hashlib(peer_size, 20)
        row(f"hashlib inclusion ({peer_size:,})", hi, "us median")
        row(f"hashlib consistency ({peer_size:,})", hc, "us median")
        ratio("inclusion ours/pymerkle", i50, pi, higher_is_better=False)
        ratio("inclusion ours/hashlib", i50, hi, higher_is_better=False)
        ratio("consistency ours/pymerkle", c50, pc, higher_is_better=False)
        ratio("consistency ours/hashlib", c50, hc, higher_is_better=False)
        print("  (peers measured on the smaller ledger; ours on the large one)")

        print(f"\n[verify] full check of the {entries:,}-entry ledger from [batch]")
        v = bench_verify(batch_path, 3)
        row("ours (chain, tree, index, checkpoints)", v, "s median", "target <= 10 s")
        hv = bench_verify_hashlib(batch_path)
        row("hashlib (rehash leaves + root only)", hv, "s")
        pv, pn = bench_verify_pymerkle(batch_path, peer_size)
        row(f"pymerkle (rebuild tree, {pn:,} entries)", pv * entries / pn, "s scaled", f"{pv:.2f} s measured")
        ratio("ours/hashlib", v, hv, higher_is_better=False)
        ratio("ours/pymerkle", v, pv * entries / pn, higher_is_better=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
