"""The ledger: durable, hash-chained, Merkle-provable log of everything the node does.

On disk (one directory)::

    LEDGER            format and origin, written once
    ledger.lock       flock: one writer at a time across processes (gunicorn workers)
    segments/         seg-<first seq>.log: the entries themselves (source of truth)
    tree.bin          every Merkle node in post-order (see ledger.tree)
    index.bin         u64 offset of each entry in its segment
    checkpoints.log   signed tree heads (C2SP signed notes), framed like segments

Durability and acknowledgement: a commit writes the entries' frames and
fdatasyncs the segment, then writes and fdatasyncs the tree. Only then are
the appends acknowledged. So the tree's length is a lower bound of what was
acknowledged, and recovery uses it to tell a torn tail (beyond the tree:
truncated) from damage to acknowledged data (within the tree: refuse to open,
change nothing).

Group commit: concurrent :meth:`Ledger.append` calls queue their records;
whichever caller gets the write mutex commits everything queued so far in one
write and one fsync, and wakes the others. :meth:`Ledger.append_many` commits
a caller's batch directly.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import json
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from ledger import _kernel
from ledger.bundle import build_bundle
from ledger.checkpoint import Checkpoint, NoteSigner, SignedCheckpoint, parse_checkpoint, sign_checkpoint
from ledger.entry import (
    GENESIS_PREV,
    MAX_ENTRY_BYTES,
    Entry,
    canonical_json,
    check_record,
    parse_entry,
    utc_timestamp,
)
from ledger.errors import (
    CheckpointInvalid,
    EntryInvalid,
    LedgerClosed,
    LedgerCorrupt,
    LedgerError,
    ProofUnavailable,
)
from ledger.segment import (
    CHECKPOINT_MAGIC,
    FRAME_HEADER,
    HEADER_SIZE,
    MAGIC,
    Defect,
    Frame,
    encode_frames,
    parse_segment_name,
    read_header,
    scan,
    segment_name,
)
from ledger.tree import TreeFile

__all__ = ["GENESIS_PREV", "BatchReceipt", "Ledger", "Receipt", "Record", "read_origin"]

_FORMAT = "appliance-ledger/1"
_U64 = struct.Struct(">Q")
_FRAME = struct.Struct(">II")
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
_NO_DETAILS: Mapping[str, Any] = MappingProxyType({})


def read_origin(path: str) -> str:
    """The origin recorded in a ledger directory's ``LEDGER`` file."""
    meta_path = os.path.join(path, "LEDGER")
    try:
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError as exc:
        raise LedgerError(f"{path} holds no ledger (no LEDGER file); run `appliance init` first") from exc
    except (OSError, ValueError) as exc:
        raise LedgerCorrupt(f"{meta_path} is unreadable: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT or not isinstance(meta.get("origin"), str):
        raise LedgerCorrupt(f"{meta_path}: not an {_FORMAT} ledger")
    return str(meta["origin"])


class Record(NamedTuple):
    """What a caller asks the ledger to record; seq, time and prev are the ledger's."""

    actor: str
    action: str
    subject: Sequence[str] = ()
    details: Mapping[str, Any] = _NO_DETAILS
    request_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """Proof of acknowledgement: the entry is durable at ``seq`` with this leaf hash."""

    seq: int
    leaf_hash: bytes
    time: str


@dataclass(frozen=True)
class BatchReceipt:
    """Acknowledgement of a batch: entries ``first_seq .. first_seq + count - 1`` are durable."""

    first_seq: int
    count: int
    leaf_hashes: bytes = field(repr=False)
    time: str

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Receipt:
        if not 0 <= i < self.count:
            raise IndexError(i)
        return Receipt(self.first_seq + i, self.leaf_hashes[32 * i : 32 * i + 32], self.time)

    def __iter__(self) -> Iterator[Receipt]:
        return (self[i] for i in range(self.count))


class _Pending:
    __slots__ = ("done", "error", "fields", "receipt")

    def __init__(self, fields: tuple[str, str, list[str], dict[str, Any], str | None]) -> None:
        self.fields = fields
        self.done = threading.Event()
        self.receipt: Receipt | None = None
        self.error: BaseException | None = None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


class Ledger:
    """An open ledger directory. Thread-safe; several processes may open one directory."""

    def __init__(
        self, path: str, origin: str, signer: NoteSigner | None, readonly: bool, max_segment_bytes: int
    ) -> None:
        self.path = path
        self.origin = origin
        self._signer = signer
        self._readonly = readonly
        self._max_segment_bytes = max_segment_bytes
        self._segdir = os.path.join(path, "segments")
        self._mutex = threading.Lock()  # one committer in this process
        self._cv = threading.Condition(threading.Lock())
        self._pending: list[_Pending] = []
        self._committer: threading.Thread | None = None
        self._closed = False
        self._stopping = False
        self._broken: str | None = None
        flags = (os.O_RDONLY if readonly else os.O_RDWR | os.O_CREAT) | os.O_CLOEXEC
        self._lock_path = os.path.join(path, "ledger.lock")
        self._lock_fd = os.open(self._lock_path, flags, 0o600)
        self._tree = TreeFile.open(os.path.join(path, "tree.bin"), readonly=readonly)
        self._index_fd = os.open(os.path.join(path, "index.bin"), flags, 0o600)
        self._ckp_path = os.path.join(path, "checkpoints.log")
        # Writer state, valid while holding the write lock after _recover().
        self._size = 0  # visible (acknowledged) size
        self._w_size = 0  # writer state: size, prev, frontier and segment offset move together
        self._prev = GENESIS_PREV
        self._frontier: list[bytes] = []
        self._seg_first: list[int] = []
        self._seg_fd = -1
        self._seg_start = 0
        self._seg_offset = HEADER_SIZE
        self._read_fds: dict[int, int] = {}
        self._read_lock = threading.Lock()
        # Checkpoints seen so far: (size, timestamp_ms, file offset of the frame).
        self._ckps: list[tuple[int, int, int]] = []
        self._ckp_end = len(CHECKPOINT_MAGIC)
        self._latest_ckp: SignedCheckpoint | None = None
        self._last_time: tuple[int, str] | None = None  # (seq, time) of the last entry written

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str, origin: str) -> None:
        """Lay out an empty ledger directory (refuses to touch an existing one)."""
        if not origin or "\n" in origin or origin != origin.strip():
            raise LedgerError(
                f"origin {origin!r} must be a non-empty single line, e.g. 'appliance.example/ledger'"
            )
        meta = os.path.join(path, "LEDGER")
        if os.path.exists(meta):
            raise LedgerError(f"{path} already holds a ledger; open it instead")
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(path, "segments"), mode=0o700, exist_ok=True)
        tmp = meta + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"format": _FORMAT, "origin": origin}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        for name in ("ledger.lock", "tree.bin", "index.bin"):
            os.close(os.open(os.path.join(path, name), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        os.replace(tmp, meta)
        _fsync_dir(path)

    @classmethod
    def open(
        cls,
        path: str,
        *,
        signer: NoteSigner | None = None,
        readonly: bool = False,
        max_segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> Ledger:
        """Open a ledger, recovering a torn tail left by a crash (not when ``readonly``)."""
        origin = read_origin(path)
        if signer is not None and signer.name != origin:
            raise LedgerError(f"signing key is named {signer.name!r} but the ledger's origin is {origin!r}")
        led = cls(path, origin, signer, readonly, max_segment_bytes)
        try:
            with led._locked(exclusive=not readonly):
                led._recover(full=True)
                led._load_checkpoints(repair=not readonly)
        except BaseException:
            led._close_fds()
            raise
        return led

    # -- public reads ------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of acknowledged entries this process knows of (see :meth:`refresh`)."""
        return self._size

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def closed(self) -> bool:
        return self._closed or self._stopping

    def _open(self) -> None:
        if self._closed:
            raise LedgerClosed("the ledger is closed")

    def refresh(self) -> int:
        """Pick up entries and checkpoints that other processes appended; returns the size."""
        self._open()
        if self._tree.stored_leaves() != self._size or self._ckp_changed():
            with self._mutex, self._locked(exclusive=False):
                self._recover(full=False, repair=False)
                self._load_checkpoints()
        return self._size

    def entry(self, seq: int) -> Entry:
        raw = self.raw_entry(seq)
        return parse_entry(raw)

    def raw_entry(self, seq: int) -> bytes:
        """The exact stored bytes of entry ``seq`` (what its leaf hash covers)."""
        self._open()
        size = self._size
        if not isinstance(seq, int) or not 0 <= seq < size:
            raise ProofUnavailable(f"entry {seq} does not exist; the ledger holds entries 0..{size - 1}")
        (offset,) = _U64.unpack(os.pread(self._index_fd, 8, seq * 8))
        first = self._seg_first[bisect.bisect_right(self._seg_first, seq) - 1]
        fd = self._reader(first)
        head = os.pread(fd, FRAME_HEADER, offset)
        length, checksum = struct.unpack(">II", head)
        if length > MAX_ENTRY_BYTES:
            raise LedgerCorrupt(f"entry {seq}: frame header in {segment_name(first)} is damaged")
        payload = os.pread(fd, length, offset + FRAME_HEADER)
        if len(payload) != length or zlib.crc32(payload) != checksum:
            raise LedgerCorrupt(f"entry {seq}: frame in {segment_name(first)} at offset {offset} is damaged")
        return payload

    def leaf_hash(self, seq: int) -> bytes:
        self._open()
        if not 0 <= seq < self._size:
            raise ProofUnavailable(
                f"entry {seq} does not exist; the ledger holds entries 0..{self._size - 1}"
            )
        return self._tree.leaf(seq)

    def root(self, size: int | None = None) -> bytes:
        size = self._size if size is None else size
        self._check_size(size)
        return self._tree.root(size)

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        size = self._size if size is None else size
        self._check_size(size)
        if not 0 <= seq < size:
            raise ProofUnavailable(f"entry {seq} is not in the tree of size {size}")
        return self._tree.inclusion_proof(seq, size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        second = self._size if second is None else second
        self._check_size(second)
        if not 0 <= first <= second:
            raise ProofUnavailable(
                f"no consistency proof from size {first} to size {second}: first must be <= second"
            )
        return self._tree.consistency_proof(first, second)

    def inclusion_evidence(self, seq: int, size: int | None = None) -> dict[str, Any]:
        """An inclusion proof as auditors receive it, hex-encoded (CLI and HTTP alike)."""
        size = self._size if size is None else size
        path = self.inclusion_proof(seq, size)
        return {
            "seq": seq,
            "tree_size": size,
            "leaf_hash": self.leaf_hash(seq).hex(),
            "root_hash": self.root(size).hex(),
            "path": [p.hex() for p in path],
        }

    def consistency_evidence(self, first: int, second: int | None = None) -> dict[str, Any]:
        """A consistency proof as auditors receive it, hex-encoded (CLI and HTTP alike)."""
        second = self._size if second is None else second
        path = self.consistency_proof(first, second)
        return {
            "first": first,
            "second": second,
            "first_root": self.root(first).hex(),
            "second_root": self.root(second).hex(),
            "path": [p.hex() for p in path],
        }

    def iter_raw(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Stored entries ``[start, end)`` in order, read segment by segment."""
        end = self._size if end is None else min(end, self._size)
        seq = start
        while seq < end:
            i = bisect.bisect_right(self._seg_first, seq) - 1
            first = self._seg_first[i]
            with open(os.path.join(self._segdir, segment_name(first)), "rb") as fh:
                data = fh.read()
            frames, _ = scan(data)
            for j in range(seq - first, len(frames)):
                if first + j >= end:
                    return
                yield first + j, frames[j].payload
            seq = first + len(frames)
            if i + 1 < len(self._seg_first):
                seq = max(seq, self._seg_first[i + 1])
            elif seq < end:
                raise LedgerCorrupt(f"entries {seq}..{end - 1} are missing from the segments")

    # -- checkpoints ------------------------------------------------------------------------
    def latest_checkpoint(self) -> SignedCheckpoint | None:
        return self._latest_ckp

    def checkpoints(self) -> list[SignedCheckpoint]:
        """Every stored checkpoint, oldest first."""
        return [c for _, c in self._read_checkpoints(0)]

    def checkpoint_covering(self, seq: int) -> SignedCheckpoint | None:
        """The earliest checkpoint whose tree includes entry ``seq``."""
        sizes = [s for s, _, _ in self._ckps]
        i = bisect.bisect_right(sizes, seq)
        if i >= len(self._ckps):
            return None
        return self._checkpoint_at(self._ckps[i][2])

    def sign_checkpoint(self, *, only_if_grown: bool = False) -> SignedCheckpoint:
        """Sign and store a tree head for the current size (the scheduler passes only_if_grown)."""
        if self._signer is None:
            raise LedgerError("this ledger was opened without a signing key; it cannot sign checkpoints")
        self._writable()
        with self._mutex, self._locked(exclusive=True):
            self._recover(full=False)
            self._load_checkpoints(repair=True)
            latest = self._latest_ckp
            if only_if_grown and latest is not None and latest.checkpoint.tree_size == self._w_size:
                return latest
            now = int(time.time() * 1000)
            if latest is not None:
                now = max(now, latest.checkpoint.timestamp_ms)
            cp = Checkpoint(self.origin, self._w_size, self._tree.root(self._w_size), now)
            signed = sign_checkpoint(cp, self._signer)
            payload = signed.text.encode("utf-8")
            fd = os.open(self._ckp_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                end = os.fstat(fd).st_size
                if end == 0:
                    os.write(fd, CHECKPOINT_MAGIC)
                    end = len(CHECKPOINT_MAGIC)
                _write_all(fd, encode_frames([payload]), end)
                os.fdatasync(fd)
            finally:
                os.close(fd)
            self._ckps.append((cp.tree_size, cp.timestamp_ms, end))
            self._ckp_end = end + FRAME_HEADER + len(payload)
            self._latest_ckp = signed
            return signed

    def evidence_bundle(self, seqs: Sequence[int]) -> dict[str, Any]:
        """Entries with inclusion proofs in a signed checkpoint, for auditors to verify offline.

        Uses the latest checkpoint (signing a new one when it does not cover every
        entry asked for), and adds the consistency proof from the checkpoint that
        first covered the earliest entry, which shows the log only grew since.
        """
        self.refresh()
        wanted = sorted(set(seqs))
        if not wanted:
            raise ProofUnavailable("name at least one entry for the bundle")
        for seq in wanted:
            if not isinstance(seq, int) or not 0 <= seq < self._size:
                raise ProofUnavailable(
                    f"entry {seq} does not exist; the ledger holds entries 0..{self._size - 1}"
                )
        latest = self._latest_ckp
        if latest is None or latest.checkpoint.tree_size <= wanted[-1]:
            if self._signer is None or self._readonly:
                raise ProofUnavailable(f"no signed checkpoint covers entry {wanted[-1]} yet; try again later")
            latest = self.sign_checkpoint()
        size = latest.checkpoint.tree_size
        entries = [(seq, self.raw_entry(seq), self.inclusion_proof(seq, size)) for seq in wanted]
        consistency = []
        earliest = self.checkpoint_covering(wanted[0])
        if earliest is not None and earliest.checkpoint.tree_size < size:
            consistency.append((earliest.text, self.consistency_proof(earliest.checkpoint.tree_size, size)))
        return build_bundle(self.origin, latest.text, entries, consistency)

    # -- appends -------------------------------------------------------------------------------
    def append(
        self,
        actor: str,
        action: str,
        subject: Sequence[str] = (),
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Receipt:
        """Record one entry; returns once it is durable.

        Concurrent callers are group-committed: a committer thread takes every
        record queued while the previous fsync ran and makes them durable together.
        """
        self._writable()
        pending = _Pending(check_record(actor, action, subject, details, request_id))
        with self._cv:
            if self._stopping:
                raise LedgerClosed("the ledger is closed")
            if self._committer is None:
                self._committer = threading.Thread(
                    target=self._commit_loop, name="ledger-commit", daemon=True
                )
                self._committer.start()
            self._pending.append(pending)
            self._cv.notify()
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.receipt is not None
        return pending.receipt

    def _commit_loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stopping:
                    self._cv.wait()
                if not self._pending:  # stopping, and nothing left to write
                    return
            with self._mutex:
                self._commit_pending()

    def _take_pending(self) -> list[_Pending]:
        with self._cv:
            batch, self._pending = self._pending, []
        return batch

    def _commit_pending(self) -> None:
        """Commit what is queued; caller holds ``self._mutex``.

        The batch is taken once the cross-process lock is held, not before: appends that arrive while
        another process commits (its fsyncs) join this commit instead of waiting for the next one.
        Under load that makes batches larger and fsyncs per entry fewer, at no cost in latency.
        """
        batch: list[_Pending] = []
        try:
            with self._locked(exclusive=True):
                batch = self._take_pending()
                if not batch:
                    return
                receipts = self._commit_locked([p.fields for p in batch])
        except Exception as exc:  # noqa: BLE001 - every waiter learns of the failure
            for p in batch or self._take_pending():
                p.error = exc
                p.done.set()
            return
        for p, r in zip(batch, receipts, strict=True):
            p.receipt = r
            p.done.set()

    def append_many(self, records: Iterable[Record]) -> BatchReceipt:
        """Record a batch atomically: all entries are durable, or none is written."""
        self._writable()
        fields = [check_record(*r) for r in records]
        with self._mutex:
            if not fields:
                return BatchReceipt(self._size, 0, b"", utc_timestamp())
            return self._commit(fields)

    def _commit(self, fields: list[tuple[str, str, list[str], dict[str, Any], str | None]]) -> BatchReceipt:
        """Encode, write, fsync; caller holds ``self._mutex``."""
        with self._locked(exclusive=True):
            return self._commit_locked(fields)

    def _commit_locked(
        self, fields: list[tuple[str, str, list[str], dict[str, Any], str | None]]
    ) -> BatchReceipt:
        """:meth:`_commit` for a caller that holds the cross-process lock too."""
        if self._closed:
            raise LedgerClosed("the ledger is closed")
        if self._broken:
            raise LedgerError(f"the ledger stopped accepting appends: {self._broken}; reopen it")
        self._recover(full=False)
        if self._seg_offset >= self._max_segment_bytes:
            self._roll_segment()
        # Never earlier than the entry before (the wall clock may step back): searches by time
        # bisect on seq (appliance.ledger_query), which needs times that never decrease.
        stamp = max(utc_timestamp(), self._tail_time())
        first = self._w_size
        prev = self._prev
        old_offset = self._seg_offset
        try:
            frames, offsets, leaves, prev, off = _kernel.encode_chain(
                fields, prev, first, stamp, old_offset, MAX_ENTRY_BYTES, canonical_json
            )
        except ValueError as exc:
            i, n = exc.args
            raise EntryInvalid(
                f"entry for {fields[i][1]!r} is {n} bytes; at most {MAX_ENTRY_BYTES} "
                "(record digests of large data, not the data)"
            ) from None
        seq = first + len(fields)
        nodes, frontier = _kernel.extend_tree(self._frontier, first, leaves)
        try:
            _write_all(self._seg_fd, frames, old_offset)
            os.fdatasync(self._seg_fd)
            _write_all(self._index_fd, offsets, first * 8)
            self._tree.append(nodes, first)
            self._tree.sync()
        except OSError as exc:
            self._undo(first, old_offset)
            raise LedgerError(f"could not make entries durable ({exc}); nothing was recorded") from exc
        self._size = self._w_size = seq
        self._prev, self._frontier = prev, frontier
        self._seg_offset = off
        self._last_time = (seq - 1, stamp)
        return BatchReceipt(first, seq - first, leaves, stamp)

    def _tail_time(self) -> str:
        """Time of the last entry (writer state; "" for an empty log), read once after a recovery."""
        last = self._w_size - 1
        if last < 0:
            return ""
        if self._last_time is None or self._last_time[0] != last:
            self._last_time = (last, parse_entry(self.raw_entry(last)).time)
        return self._last_time[1]

    def _undo(self, size: int, offset: int) -> None:
        try:
            os.ftruncate(self._seg_fd, offset)
            self._tree.truncate(size)
            os.ftruncate(self._index_fd, size * 8)
        except OSError as exc:
            self._broken = f"could not roll back a failed write ({exc})"

    def _roll_segment(self) -> None:
        """Seal the active segment and start a new one at the current size."""
        os.fsync(self._index_fd)  # the sealed segment's offsets must survive without a rescan
        self._new_segment(self._w_size)

    def _new_segment(self, first: int) -> None:
        path = os.path.join(self._segdir, segment_name(first))
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, MAGIC + _U64.pack(first))
            os.fsync(fd)
            os.replace(tmp, path)
            _fsync_dir(self._segdir)
        except BaseException:
            os.close(fd)
            raise
        if self._seg_fd >= 0:
            os.close(self._seg_fd)
        self._seg_fd = fd
        self._seg_start = first
        self._seg_offset = HEADER_SIZE
        if first not in self._seg_first:
            self._seg_first.append(first)

    # -- recovery --------------------------------------------------------------------------
    def _recover(self, *, full: bool, repair: bool | None = None) -> None:
        """Bring this process's view in line with the disk; caller holds the file lock.

        ``full`` rescans the whole tail segment (at open); otherwise only what was
        appended since this process last looked. ``repair`` (default: writable)
        truncates a torn, unacknowledged tail, writes missing tree nodes and
        takes over the writer state; without it only the visible size moves.
        """
        repair = (not self._readonly) if repair is None else repair
        tree_n = self._tree.stored_leaves()
        if not full and repair and self._seg_fd >= 0 and tree_n == self._w_size:
            unchanged = os.fstat(self._seg_fd).st_size == self._seg_offset
            rolled = self._seg_start != self._w_size and os.path.exists(
                os.path.join(self._segdir, segment_name(self._w_size))
            )
            if unchanged and not rolled:
                return
        firsts = sorted(f for f in (parse_segment_name(n) for n in os.listdir(self._segdir)) if f is not None)
        if not repair:
            # A reader trusts what the tree acknowledges (complete under the shared
            # lock); checking segments against it is the writer's and verify's job.
            self._seg_first = firsts
            self._size = tree_n
            return
        if not firsts:
            if tree_n:
                raise LedgerCorrupt(f"{self._segdir} holds no segments but tree.bin covers {tree_n} entries")
            self._size = 0
            self._new_segment(0)
            return
        if firsts[0] != 0:
            raise LedgerCorrupt(f"{self._segdir}: the first segment starts at entry {firsts[0]}, not 0")
        tail_first = firsts[-1]
        tail_path = os.path.join(self._segdir, segment_name(tail_first))
        incremental = not full and repair and self._seg_start == tail_first and self._seg_fd >= 0
        start_seq, start_off = (self._w_size, self._seg_offset) if incremental else (tail_first, HEADER_SIZE)
        with open(tail_path, "rb") as fh:
            if read_header(fh.read(HEADER_SIZE), tail_path) != tail_first:
                raise LedgerCorrupt(
                    f"{tail_path}: its header names a different first entry than its file name"
                )
            # Only what follows the known end: another process's appends. Reading the whole segment
            # (up to max_segment_bytes) on every commit made each append cost more as the segment grew.
            fh.seek(start_off)
            rest = fh.read()
        data_end = start_off + len(rest)
        if tree_n < tail_first:
            raise LedgerCorrupt(
                f"tree.bin covers {tree_n} entries but segment {segment_name(tail_first)} starts at entry "
                f"{tail_first}; run `appliance ledger verify` and restore from a backup"
            )
        frames, defect = scan(rest, 0)
        if start_off:
            frames = [Frame(f.offset + start_off, f.payload) for f in frames]
            defect = Defect(defect.offset + start_off, defect.reason) if defect is not None else None
        # Entries the tree already covers were acknowledged: they must match it exactly.
        n_acked = max(0, min(len(frames), tree_n - start_seq))
        sha = hashlib.sha256
        stored = self._tree.leaves(start_seq, start_seq + n_acked)
        for i in range(n_acked):
            if sha(b"\x00" + frames[i].payload).digest() != stored[i]:
                raise LedgerCorrupt(
                    f"acknowledged entry {start_seq + i} in {segment_name(tail_first)} at offset "
                    f"{frames[i].offset} does not match the tree: it was altered; nothing was changed"
                )
        # Entries beyond the tree were written but maybe not acknowledged: keep the
        # longest prefix that continues the chain, drop the rest as a torn tail.
        valid = n_acked
        prev = self._tree.leaf(start_seq + valid - 1).hex() if start_seq + valid else GENESIS_PREV
        new_leaves = bytearray()
        for frame in frames[n_acked:]:
            try:
                e = parse_entry(frame.payload)
            except EntryInvalid:
                break
            if e.seq != start_seq + valid or e.prev != prev:
                break
            leaf = sha(b"\x00" + frame.payload).digest()
            new_leaves += leaf
            prev = leaf.hex()
            valid += 1
        total = start_seq + valid
        if total < tree_n:
            where = frames[valid].offset if valid < len(frames) else (defect.offset if defect else data_end)
            reason = defect.reason if defect and valid == len(frames) else "it does not continue the chain"
            raise LedgerCorrupt(
                f"acknowledged entry {total} in {segment_name(tail_first)} at offset {where} is damaged "
                f"({reason}); the tree covers {tree_n} entries; nothing was changed: run "
                "`appliance ledger verify` and restore from a backup"
            )
        self._seg_first = firsts
        end_off = frames[valid - 1].end if valid else start_off
        if end_off < data_end:
            os.truncate(tail_path, end_off)  # torn, unacknowledged tail
        if self._seg_start != tail_first or self._seg_fd < 0:
            if self._seg_fd >= 0:
                os.close(self._seg_fd)
            self._seg_fd = os.open(tail_path, os.O_RDWR | os.O_CLOEXEC)
            self._seg_start = tail_first
        offsets = b"".join(_U64.pack(f.offset) for f in frames[:valid])
        _write_all(self._index_fd, offsets, start_seq * 8)
        os.ftruncate(self._index_fd, total * 8)
        self._tree.truncate(tree_n)
        if total > tree_n:
            nodes, _ = _kernel.extend_tree(self._tree.frontier(tree_n), tree_n, bytes(new_leaves))
            self._tree.append(nodes, tree_n)
            self._tree.sync()
        self._size = self._w_size = total
        self._prev = prev
        self._frontier = self._tree.frontier(total)
        self._seg_offset = end_off

    # -- helpers ------------------------------------------------------------------------------
    def _check_size(self, size: int) -> None:
        self._open()
        if not isinstance(size, int) or not 0 <= size <= self._size:
            raise ProofUnavailable(
                f"tree size {size} is not available; the ledger holds {self._size} entries"
            )

    def _writable(self) -> None:
        if self._readonly:
            raise LedgerError("this ledger is open read-only")
        if self._stopping or self._closed:
            raise LedgerClosed("the ledger is closed")

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        """The cross-process lock: exclusive for writers, shared for readers.

        A reader takes it on a descriptor of its own: flock on the writer's
        descriptor would convert the writer's exclusive lock.
        """
        fd = self._lock_fd if exclusive else os.open(self._lock_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            if exclusive:
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                os.close(fd)  # releases the shared lock

    def _reader(self, first: int) -> int:
        with self._read_lock:
            fd = self._read_fds.get(first)
            if fd is None:
                fd = os.open(os.path.join(self._segdir, segment_name(first)), os.O_RDONLY | os.O_CLOEXEC)
                self._read_fds[first] = fd
            return fd

    def _ckp_changed(self) -> bool:
        try:
            return os.stat(self._ckp_path).st_size != self._ckp_end
        except FileNotFoundError:
            return False

    def _read_checkpoints(self, start: int, *, repair: bool = False) -> list[tuple[int, SignedCheckpoint]]:
        """Checkpoints stored from file offset ``start`` on, with their offsets.

        A damaged last frame is a checkpoint torn by a crash: it was never handed
        out, so a writer (``repair``) truncates it and a reader ignores it. Nothing
        is lost either way: entries are protected by the tree, and the next
        checkpoint signs the same state again. ``ledger verify`` still reports it.
        """
        try:
            fh = open(self._ckp_path, "r+b" if repair else "rb")
        except FileNotFoundError:
            return []
        with fh:
            head = fh.read(len(CHECKPOINT_MAGIC))
            if head != CHECKPOINT_MAGIC:
                if repair and CHECKPOINT_MAGIC.startswith(head):  # torn while the file was being created
                    fh.truncate(0)
                    return []
                raise LedgerCorrupt(f"{self._ckp_path}: not a checkpoint file (bad header)")
            start = max(start, len(CHECKPOINT_MAGIC))
            fh.seek(start)
            data = fh.read()
            frames, defect = scan(data, 0)
            if defect is not None and repair:
                fh.truncate(start + defect.offset)
                fh.flush()
                os.fdatasync(fh.fileno())
        out = []
        for f in frames:
            try:
                signed = parse_checkpoint(f.payload.decode("utf-8"))
            except (CheckpointInvalid, UnicodeDecodeError) as exc:
                raise LedgerCorrupt(
                    f"{self._ckp_path}: checkpoint at offset {start + f.offset}: {exc}"
                ) from exc
            out.append((start + f.offset, signed))
        return out

    def _load_checkpoints(self, *, repair: bool = False) -> None:
        if not self._ckp_changed():
            return
        for offset, signed in self._read_checkpoints(self._ckp_end, repair=repair):
            cp = signed.checkpoint
            self._ckps.append((cp.tree_size, cp.timestamp_ms, offset))
            self._latest_ckp = signed
            self._ckp_end = offset + FRAME_HEADER + len(signed.text.encode("utf-8"))

    def _checkpoint_at(self, offset: int) -> SignedCheckpoint:
        with open(self._ckp_path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(FRAME_HEADER + MAX_ENTRY_BYTES)
        frames, _ = scan(data, 0)
        if not frames:
            raise LedgerCorrupt(f"{self._ckp_path}: checkpoint at offset {offset} is damaged")
        return parse_checkpoint(frames[0].payload.decode("utf-8"))

    # -- closing ------------------------------------------------------------------------------
    def close(self) -> None:
        """Commit what is queued, stop the committer, release files."""
        with self._cv:
            if self._stopping:
                return
            self._stopping = True
            self._cv.notify_all()
        if self._committer is not None:
            self._committer.join()
        with self._mutex:
            self._closed = True
            if not self._readonly:
                try:
                    os.fsync(self._index_fd)
                except OSError:
                    pass
            self._close_fds()

    def _close_fds(self) -> None:
        for fd in [self._seg_fd, self._index_fd, self._lock_fd, *self._read_fds.values()]:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._seg_fd = self._index_fd = self._lock_fd = -1
        self._read_fds.clear()
        self._tree.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
