"""Full offline check of a ledger directory (``appliance ledger verify``).

Re-derives everything from the entries alone, and compares with what is stored:
every frame's checksum, every entry's ``seq`` and ``prev`` link, every leaf and
internal node of the stored tree, every index offset, and every checkpoint's
signature and root. It opens nothing for writing and stops at nothing: it
reports the *first* bad item of each kind by name (segment, offset, entry seq,
tree slot, checkpoint number), which is what an operator needs to act.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger import _kernel
from ledger.checkpoint import NoteVerifier, parse_checkpoint
from ledger.entry import GENESIS_PREV, EntryInvalid, entry_link
from ledger.errors import CheckpointInvalid, LedgerError
from ledger.log import read_origin
from ledger.merkle import EMPTY_ROOT, HASH_SIZE
from ledger.segment import CHECKPOINT_MAGIC, HEADER_SIZE, parse_segment_name, read_header, scan, segment_name
from ledger.tree import TreeFile, root_of_frontier, slots_for

__all__ = ["VerifyReport", "verify_ledger"]


@dataclass
class VerifyReport:
    """Outcome of a full check; ``ok`` only when no problem was found."""

    origin: str = ""
    entries: int = 0
    checkpoints: int = 0
    root_hash: bytes = EMPTY_ROOT
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def _slot_name(slot: int) -> str:
    """Which leaf or internal node a post-order slot holds (for messages)."""
    # Walk leaves until the slot is reached; O(log n) per step via arithmetic.
    lo, hi = 0, slot + 1
    while lo < hi:  # smallest leaf i with leaf_position(i) >= slot
        mid = (lo + hi) // 2
        if 2 * mid - mid.bit_count() >= slot:
            hi = mid
        else:
            lo = mid + 1
    i = lo
    if 2 * i - i.bit_count() == slot:
        return f"leaf of entry {i}"
    j = i - 1  # internal node completed by leaf j
    level = slot - (2 * j - j.bit_count())
    return f"internal node (height {level}) ending at entry {j}"


def verify_ledger(
    path: str, verifier: NoteVerifier | None = None, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Check the ledger in ``path``; ``progress(done, total)`` is called per segment."""
    report = VerifyReport()
    try:
        report.origin = read_origin(path)
    except LedgerError as exc:
        report.problems.append(f"LEDGER: {exc}")
        return report
    segdir = os.path.join(path, "segments")
    try:
        firsts = sorted(f for f in (parse_segment_name(n) for n in os.listdir(segdir)) if f is not None)
    except OSError as exc:
        report.problems.append(f"segments/: unreadable ({exc})")
        return report
    try:
        tree = TreeFile.open(os.path.join(path, "tree.bin"), readonly=True)
    except OSError as exc:
        report.problems.append(f"tree.bin: unreadable ({exc})")
        return report
    try:
        with open(os.path.join(path, "index.bin"), "rb") as fh:
            index = fh.read()
        _verify(path, report, verifier, progress, segdir, firsts, tree, index)
    except OSError as exc:
        report.problems.append(f"index.bin or a segment: unreadable ({exc})")
    finally:
        tree.close()
    return report


def _verify(
    path: str,
    report: VerifyReport,
    verifier: NoteVerifier | None,
    progress: Callable[[int, int], None] | None,
    segdir: str,
    firsts: list[int],
    tree: TreeFile,
    index: bytes,
) -> None:
    acked = tree.stored_leaves()
    total_bytes = sum(os.path.getsize(os.path.join(segdir, segment_name(f))) for f in firsts) or 1
    done_bytes = 0
    seq = 0
    prev = GENESIS_PREV
    frontier: list[bytes] = []
    tree_ok = index_ok = True
    for k, first in enumerate(firsts):
        name = segment_name(first)
        with open(os.path.join(segdir, name), "rb") as fh:
            data = fh.read()
        done_bytes += len(data)
        try:
            if read_header(data, name) != first:
                report.problems.append(f"{name}: header names another first entry than the file name")
                break
        except LedgerError as exc:
            report.problems.append(str(exc))
            break
        if first != seq:
            report.problems.append(f"{name}: starts at entry {first} but the previous segments end at {seq}")
            break
        frames, defect = scan(data, HEADER_SIZE)
        payloads = [f.payload for f in frames]
        leaves = _kernel.hash_leaves(payloads)
        bad = False
        for i, frame in enumerate(frames):
            try:
                e_seq, e_prev = entry_link(frame.payload)
            except EntryInvalid as exc:
                report.problems.append(f"entry {seq} ({name} offset {frame.offset}): {exc}")
                bad = True
                break
            if e_seq != seq:
                report.problems.append(f"entry {seq} ({name} offset {frame.offset}): records seq {e_seq}")
                bad = True
                break
            if e_prev != prev:
                report.problems.append(
                    f"entry {seq} ({name} offset {frame.offset}): prev does not match the hash of entry "
                    f"{seq - 1}; the chain is broken here"
                )
                bad = True
                break
            prev = leaves[32 * i : 32 * i + 32].hex()
            seq += 1
        checked = frames[: seq - first]
        if index_ok and checked:
            expected = struct.pack(f">{len(checked)}Q", *(f.offset for f in checked))
            if index[first * 8 : seq * 8] != expected:
                at = next(
                    i
                    for i in range(len(checked))
                    if index[(first + i) * 8 : (first + i + 1) * 8] != expected[i * 8 : i * 8 + 8]
                )
                report.problems.append(f"index.bin: offset of entry {first + at} is wrong")
                index_ok = False
        if bad:
            break
        if defect is not None:
            where = f"{name} offset {defect.offset}"
            if k == len(firsts) - 1 and seq >= acked:
                report.warnings.append(
                    f"{where}: torn tail after entry {seq - 1} ({defect.reason}); never acknowledged, "
                    "it is truncated when the node next opens the ledger"
                )
            else:
                report.problems.append(f"entry {seq} ({where}): {defect.reason}")
                break
        if tree_ok:
            n_here = len(frames)
            nodes, frontier = _kernel.extend_tree(frontier, seq - n_here, leaves)
            start = slots_for(seq - n_here)
            stored = tree.slots(start, len(nodes) // HASH_SIZE)
            if stored != nodes[: len(stored)]:
                slot = start + next(
                    i
                    for i in range(len(stored) // HASH_SIZE)
                    if stored[i * HASH_SIZE : (i + 1) * HASH_SIZE]
                    != nodes[i * HASH_SIZE : (i + 1) * HASH_SIZE]
                )
                report.problems.append(
                    f"tree.bin: slot {slot} ({_slot_name(slot)}) does not match the entries"
                )
                tree_ok = False
        if progress is not None:
            progress(done_bytes, total_bytes)
    report.entries = seq
    if seq < acked and not report.problems:
        report.problems.append(f"tree.bin covers {acked} entries but the segments hold only {seq}")
    if index_ok and not report.problems and len(index) // 8 != seq:
        report.warnings.append(f"index.bin holds {len(index) // 8} offsets for {seq} entries")
    report.root_hash = root_of_frontier(frontier)
    # Checkpoint roots are read from the stored tree only once it equals the re-derived one.
    _verify_checkpoints(path, report, verifier, tree if tree_ok else None, seq)


def _verify_checkpoints(
    path: str, report: VerifyReport, verifier: NoteVerifier | None, tree: TreeFile | None, size: int
) -> None:
    ckp_path = os.path.join(path, "checkpoints.log")
    try:
        with open(ckp_path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return
    if data[: len(CHECKPOINT_MAGIC)] != CHECKPOINT_MAGIC:
        report.problems.append("checkpoints.log: bad header")
        return
    frames, defect = scan(data, len(CHECKPOINT_MAGIC))
    last_size, last_time = 0, 0
    for n, frame in enumerate(frames, 1):
        label = f"checkpoint #{n} (checkpoints.log offset {frame.offset})"
        try:
            signed = parse_checkpoint(frame.payload.decode("utf-8"))
        except (CheckpointInvalid, UnicodeDecodeError) as exc:
            report.problems.append(f"{label}: {exc}")
            return
        cp = signed.checkpoint
        if verifier is not None and not signed.verified_by(verifier):
            report.problems.append(f"{label}: signature does not verify with the node's public key")
            return
        if cp.origin != report.origin:
            report.problems.append(f"{label}: origin {cp.origin!r} is not the ledger's {report.origin!r}")
            return
        if cp.tree_size > size:
            report.problems.append(f"{label}: covers {cp.tree_size} entries; the log holds {size}")
            return
        if cp.tree_size < last_size or cp.timestamp_ms < last_time:
            report.problems.append(f"{label}: goes back in size or time from the one before it")
            return
        if tree is not None and tree.root(cp.tree_size) != cp.root_hash:
            report.problems.append(f"{label}: root hash does not match the entries at size {cp.tree_size}")
            return
        last_size, last_time = cp.tree_size, cp.timestamp_ms
        report.checkpoints = n
    if defect is not None:
        report.problems.append(
            f"checkpoint #{len(frames) + 1} (checkpoints.log offset {defect.offset}): {defect.reason}"
        )
