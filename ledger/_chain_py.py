"""Pure-Python twin of ``ext/_chain.pyx``: encode a batch of entries into segment frames.

Returns ``(frames, offsets, leaves, prev, end_offset)``: the frame bytes to
append to the segment, each entry's big-endian u64 offset, the concatenated
leaf hashes, the last leaf hash in hex (the next entry's ``prev``) and the
offset after the last frame. An entry longer than ``max_bytes`` raises
``ValueError(index, size)`` before anything is returned.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable
from typing import Any

__all__ = ["encode_chain"]

_FRAME = struct.Struct(">II")
_U64 = struct.Struct(">Q")


def encode_chain(
    fields: list[tuple[str, str, list[str], dict[str, Any], str | None]],
    prev: str,
    first_seq: int,
    stamp: str,
    offset: int,
    max_bytes: int,
    dumps: Callable[[Any], bytes],
) -> tuple[bytes, bytes, bytes, str, int]:
    # Built in place: holding each encoded entry as its own object costs more than encoding it.
    frames, offsets, leaves = bytearray(), bytearray(), bytearray()
    sha, crc, pack_head, pack_off = hashlib.sha256, zlib.crc32, _FRAME.pack, _U64.pack
    for i, (actor, action, subject, details, request_id) in enumerate(fields):
        raw = dumps(
            {
                "action": action,
                "actor": actor,
                "details": details,
                "prev": prev,
                "request_id": request_id,
                "seq": first_seq + i,
                "subject": subject,
                "time": stamp,
            }
        )
        n = len(raw)
        if n > max_bytes:
            raise ValueError(i, n)
        leaf = sha(b"\x00" + raw).digest()
        frames += pack_head(n, crc(raw))
        frames += raw
        offsets += pack_off(offset)
        leaves += leaf
        offset += 8 + n
        prev = leaf.hex()
    return bytes(frames), bytes(offsets), bytes(leaves), prev, offset
