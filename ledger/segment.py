"""Append-only segment files: the ledger's source of truth on disk.

A segment starts with a 16-byte header (magic, first sequence number) and
holds frames ``u32 length | u32 crc32(payload) | payload``, big-endian, each
payload one entry's canonical JSON. The CRC lets recovery tell a torn tail
(a write cut short by a crash) from intact data; the Merkle tree and the
``prev`` chain, not the CRC, are what protect against tampering.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from ledger.entry import MAX_ENTRY_BYTES
from ledger.errors import LedgerCorrupt

__all__ = [
    "CHECKPOINT_MAGIC",
    "FRAME_HEADER",
    "HEADER_SIZE",
    "MAGIC",
    "Defect",
    "Frame",
    "encode_frames",
    "parse_segment_name",
    "read_header",
    "scan",
    "segment_name",
    "write_header",
]

MAGIC = b"APLSEG1\n"
#: Header of checkpoints.log, whose frames are signed checkpoint notes.
CHECKPOINT_MAGIC = b"APLCKP1\n"
HEADER_SIZE = 16
FRAME_HEADER = 8
_HEAD = struct.Struct(">II")
_SEQ = struct.Struct(">Q")


class Frame(NamedTuple):
    offset: int
    payload: bytes

    @property
    def end(self) -> int:
        return self.offset + FRAME_HEADER + len(self.payload)


@dataclass(frozen=True)
class Defect:
    """Where and why scanning stopped before the end of the data."""

    offset: int
    reason: str


def encode_frames(payloads: Iterable[bytes]) -> bytes:
    pack, crc = _HEAD.pack, zlib.crc32
    parts: list[bytes] = []
    for p in payloads:
        parts.append(pack(len(p), crc(p)))
        parts.append(p)
    return b"".join(parts)


def segment_name(first_seq: int) -> str:
    return f"seg-{first_seq:016d}.log"


def parse_segment_name(name: str) -> int | None:
    if name.startswith("seg-") and name.endswith(".log") and len(name) == 24 and name[4:20].isdigit():
        return int(name[4:20])
    return None


def write_header(fd: int, first_seq: int) -> None:
    os.pwrite(fd, MAGIC + _SEQ.pack(first_seq), 0)


def read_header(data: bytes, path: str) -> int:
    if len(data) < HEADER_SIZE or data[:8] != MAGIC:
        raise LedgerCorrupt(f"{path}: not a ledger segment (bad header); restore it from a backup")
    return _SEQ.unpack_from(data, 8)[0]


def scan(data: bytes | memoryview, start: int = HEADER_SIZE) -> tuple[list[Frame], Defect | None]:
    """Frames from ``start`` to the first defect (or the end) of a segment's bytes."""
    frames: list[Frame] = []
    view = data if isinstance(data, bytes) else bytes(data)  # bytes slices copy once
    end = len(view)
    off = start
    unpack, crc = _HEAD.unpack_from, zlib.crc32
    while off < end:
        if end - off < FRAME_HEADER:
            return frames, Defect(off, "frame header cut short")
        length, checksum = unpack(view, off)
        if length == 0 or length > MAX_ENTRY_BYTES:
            return frames, Defect(off, f"frame length {length} is impossible")
        if off + FRAME_HEADER + length > end:
            return frames, Defect(off, "frame cut short")
        payload = view[off + FRAME_HEADER : off + FRAME_HEADER + length]
        if crc(payload) != checksum:
            return frames, Defect(off, "frame checksum mismatch")
        frames.append(Frame(off, payload))
        off += FRAME_HEADER + length
    return frames, None
