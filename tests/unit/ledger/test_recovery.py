"""Start-up recovery: a torn tail is truncated, damage to acknowledged data refuses to open."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest

from ledger import Ledger, LedgerCorrupt, Record
from ledger.tree import slots_for
from ledger.verify import verify_ledger

ORIGIN = "test.example/ledger"


def _make(tmp_path, n: int = 10) -> str:
    path = str(tmp_path / "ledger")
    Ledger.create(path, ORIGIN)
    with Ledger.open(path) as led:
        led.append_many([Record("agent:k1", "test.note", [], {"i": i}) for i in range(n)])
    return path


def _segment(path: str) -> str:
    segdir = os.path.join(path, "segments")
    return os.path.join(segdir, sorted(os.listdir(segdir))[-1])


def _digest_all(path: str) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[p] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00\x00",  # frame header cut short
        struct.pack(">II", 200, 0) + b"x" * 10,  # frame cut short
        struct.pack(">II", 5, 0) + b"hello",  # checksum mismatch
        b"\x00" * 4096,  # zero-filled blocks of a torn write
    ],
    ids=["header", "short", "crc", "zeros"],
)
def test_torn_tail_is_truncated_and_the_log_goes_on(tmp_path, tail):
    path = _make(tmp_path)
    seg = _segment(path)
    size = os.path.getsize(seg)
    with open(seg, "ab") as fh:
        fh.write(tail)
    with Ledger.open(path) as led:
        assert led.size == 10
        assert os.path.getsize(seg) == size
        led.append("agent:k1", "test.note")
    assert verify_ledger(path).ok


def test_written_but_unacknowledged_entries_are_kept_and_the_tree_rebuilt(tmp_path):
    path = _make(tmp_path, 12)
    # Crash after the segment's fsync, before the tree was written: the tree lags.
    os.truncate(os.path.join(path, "tree.bin"), slots_for(9) * 32 + 17)
    with Ledger.open(path) as led:
        assert led.size == 12
    assert verify_ledger(path).ok


def test_unchained_frame_beyond_the_tree_is_a_torn_tail(tmp_path):
    path = _make(tmp_path)
    seg = _segment(path)
    with Ledger.open(path) as led:
        raw = led.raw_entry(9)  # a valid frame, but it does not continue the chain
    import zlib

    with open(seg, "ab") as fh:
        fh.write(struct.pack(">II", len(raw), zlib.crc32(raw)) + raw)
    with Ledger.open(path) as led:
        assert led.size == 10
    assert verify_ledger(path).ok


@pytest.mark.parametrize("where", ["last", "middle"])
def test_damaged_acknowledged_entry_refuses_to_open_and_changes_nothing(tmp_path, where):
    path = _make(tmp_path)
    seg = _segment(path)
    with open(seg, "r+b") as fh:
        data = bytearray(fh.read())
        pos = len(data) - 5 if where == "last" else len(data) // 2
        data[pos] ^= 0x20
        fh.seek(0)
        fh.write(data)
    before = _digest_all(path)
    with pytest.raises(LedgerCorrupt, match="nothing was changed"):
        Ledger.open(path)
    assert _digest_all(path) == before
    report = verify_ledger(path)
    assert not report.ok and "entry" in report.first_problem


def test_missing_acknowledged_entries_refuse_to_open(tmp_path):
    path = _make(tmp_path)
    seg = _segment(path)
    os.truncate(seg, os.path.getsize(seg) - 40)  # an acknowledged entry lost its end
    with pytest.raises(LedgerCorrupt):
        Ledger.open(path)


@pytest.mark.parametrize("cut", [3, 20, -7])
def test_checkpoint_torn_by_a_crash_is_dropped_and_signing_goes_on(tmp_path, cut):
    from ledger.checkpoint import NoteSigner

    path = _make(tmp_path)
    signer = NoteSigner.generate(ORIGIN)
    with Ledger.open(path, signer=signer) as led:
        first = led.sign_checkpoint()
        led.append("agent:k1", "test.note")
        led.sign_checkpoint()
    ckp = os.path.join(path, "checkpoints.log")
    size = os.path.getsize(ckp)
    os.truncate(ckp, size + cut if cut < 0 else 8 + 8 + len(first.text.encode()) + cut)
    with Ledger.open(path, readonly=True) as ro:  # a reader ignores the torn tail
        assert ro.latest_checkpoint() == first
    with Ledger.open(path, signer=signer) as led:  # a writer truncates it
        assert led.latest_checkpoint() == first
        assert led.sign_checkpoint().checkpoint.tree_size == 11
    assert verify_ledger(path).ok


def test_fresh_ledger_opens_read_only(tmp_path):
    path = str(tmp_path / "ledger")
    Ledger.create(path, ORIGIN)
    with Ledger.open(path, readonly=True) as ro:
        assert ro.size == 0 and ro.latest_checkpoint() is None
