"""`ledger verify` detects and names any flipped byte in any file of a ledger."""

from __future__ import annotations

import json
import os
import zlib

import pytest

from ledger import Ledger, Record
from ledger.checkpoint import NoteSigner, NoteVerifier
from ledger.verify import verify_ledger

ORIGIN = "test.example/ledger"


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("v") / "ledger")
    signer = NoteSigner.generate(ORIGIN)
    Ledger.create(path, ORIGIN)
    with Ledger.open(path, signer=signer, max_segment_bytes=1200) as led:
        for k in range(3):
            led.append_many(
                [
                    Record("agent:k1", "test.note", ["cust:00112233445566778899"], {"k": k, "i": i})
                    for i in range(4)
                ]
            )
            led.sign_checkpoint()
    return path, NoteVerifier.from_vkey(signer.vkey())


def _files(path: str) -> list[str]:
    segs = sorted(os.listdir(os.path.join(path, "segments")))
    return [os.path.join("segments", s) for s in segs] + ["checkpoints.log", "tree.bin", "index.bin"]


def test_clean_ledger_verifies(small_ledger):
    path, verifier = small_ledger
    report = verify_ledger(path, verifier)
    assert report.ok, report.problems
    assert report.entries == 12 and report.checkpoints == 3
    assert len(_files(path)) > 4  # several segments


def test_every_flipped_byte_of_every_file_is_detected_and_named(small_ledger):
    path, verifier = small_ledger
    missed = []
    for rel in _files(path):
        full = os.path.join(path, rel)
        with open(full, "rb") as fh:
            original = fh.read()
        name = os.path.basename(rel)
        try:
            for pos in range(len(original)):
                damaged = bytearray(original)
                damaged[pos] ^= 0xFF
                with open(full, "wb") as fh:
                    fh.write(damaged)
                report = verify_ledger(path, verifier)
                named = report.first_problem and (
                    name in report.first_problem
                    or "entry" in report.first_problem
                    or "checkpoint" in report.first_problem
                )
                if report.ok or not named:
                    missed.append((rel, pos, report.problems))
        finally:
            with open(full, "wb") as fh:
                fh.write(original)
    assert not missed, missed[:5]
    assert verify_ledger(path, verifier).ok


def test_rewritten_entry_with_valid_checksum_names_the_entry(small_ledger, tmp_path):
    path, verifier = small_ledger
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(path, copy)
    seg = os.path.join(copy, "segments", sorted(os.listdir(os.path.join(copy, "segments")))[0])
    with open(seg, "rb") as fh:
        data = fh.read()
    needle = b'"i":1'
    pos = data.index(needle)
    forged = data[:pos] + b'"i":7' + data[pos + len(needle) :]
    # Fix the frame checksum so only the chain and tree can tell.
    off = 16
    while True:
        length = int.from_bytes(forged[off : off + 4], "big")
        if off + 8 + length > pos:
            payload = forged[off + 8 : off + 8 + length]
            forged = forged[: off + 4] + zlib.crc32(payload).to_bytes(4, "big") + forged[off + 8 :]
            break
        off += 8 + length
    with open(seg, "wb") as fh:
        fh.write(forged)
    report = verify_ledger(copy, verifier)
    assert not report.ok
    assert "entry 2" in report.first_problem  # the next entry's prev no longer matches


def test_fully_rebuilt_forgery_is_caught_by_the_signed_checkpoints(small_ledger, tmp_path):
    """Rewrite history consistently (frames, chain, tree, index): only signatures can tell."""
    path, verifier = small_ledger
    forged = str(tmp_path / "forged")
    Ledger.create(forged, ORIGIN)
    with Ledger.open(path) as led:
        entries = [json.loads(raw) for _, raw in led.iter_raw()]
    entries[0]["details"]["k"] = 99
    with Ledger.open(forged) as out:
        out.append_many([Record(e["actor"], e["action"], e["subject"], e["details"]) for e in entries])
    import shutil

    shutil.copy(os.path.join(path, "checkpoints.log"), os.path.join(forged, "checkpoints.log"))
    report = verify_ledger(forged, verifier)
    assert not report.ok
    assert "checkpoint #1" in report.first_problem and "root hash" in report.first_problem
