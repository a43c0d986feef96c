"""The ledger's append, group commit, reads and proofs from stored nodes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from ledger import EntryInvalid, Ledger, LedgerError, ProofUnavailable, Record, merkle
from ledger.checkpoint import NoteSigner, NoteVerifier, verify_checkpoint
from ledger.entry import canonical_json_stdlib, parse_entry
from ledger.verify import verify_ledger

ORIGIN = "test.example/ledger"
SUBJECT = "cust:0123456789abcdef"


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture
def led(tmp_path, signer):
    path = str(tmp_path / "ledger")
    Ledger.create(path, ORIGIN)
    with Ledger.open(path, signer=signer, max_segment_bytes=4096) as ledger:
        yield ledger


def _records(n: int, start: int = 0) -> list[Record]:
    return [Record("agent:k1", "record.read", [SUBJECT], {"i": start + i}) for i in range(n)]


def test_entries_chain_and_encode_canonically(led):
    led.append("admin:k1", "test.note", [SUBJECT], {"b": [1, "二"], "a": None}, "req-1")
    led.append_many(_records(5))
    prev = "0" * 64
    for seq in range(led.size):
        raw = led.raw_entry(seq)
        e = parse_entry(raw)
        assert e.seq == seq and e.prev == prev
        assert canonical_json_stdlib(e.as_dict()) == raw  # orjson and stdlib agree byte for byte
        prev = merkle.leaf_hash(raw).hex()
        assert led.leaf_hash(seq).hex() == prev
    first = led.entry(0)
    assert first.request_id == "req-1" and first.details == {"a": None, "b": [1, "二"]}


def test_proofs_from_stored_nodes_match_the_reference(led):
    led.append_many(_records(137))
    leaves = [merkle.leaf_hash(led.raw_entry(i)) for i in range(led.size)]
    for size in (1, 2, 3, 64, 100, 137):
        assert led.root(size) == merkle.root_hash(leaves[:size])
        for i in {0, size // 2, size - 1}:
            assert led.inclusion_proof(i, size) == merkle.inclusion_proof(leaves[:size], i)
        for m in (0, 1, size // 3, size):
            assert led.consistency_proof(m, size) == merkle.consistency_proof(leaves[:size], m)


def test_segments_roll_and_reopen_gives_same_state(tmp_path, led, signer):
    for k in range(10):
        led.append_many(_records(20, 20 * k))
    assert len(os.listdir(os.path.join(led.path, "segments"))) > 3
    size, root = led.size, led.root()
    led.close()
    with Ledger.open(led.path, signer=signer, max_segment_bytes=4096) as again:
        assert again.size == size and again.root() == root
        assert [s for s, _ in again.iter_raw()] == list(range(size))
        again.append("admin:k1", "test.note")
        assert again.entry(size).prev == merkle.leaf_hash(again.raw_entry(size - 1)).hex()


def test_group_commit_acknowledges_every_concurrent_append(led):
    receipts = []
    lock = threading.Lock()

    def writer(t: int) -> None:
        for i in range(40):
            r = led.append("agent:k1", "reply.checked", [], {"t": t, "i": i})
            with lock:
                receipts.append(r)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(r.seq for r in receipts) == list(range(640))
    for r in receipts:
        assert led.leaf_hash(r.seq) == r.leaf_hash


def test_appends_waiting_on_another_process_join_one_commit(led, tmp_path):
    """While another process holds the ledger lock (its commit, its fsyncs), appends queue; the commit
    that follows takes all of them once it has the lock, not only those queued before it waited."""
    import fcntl
    import time

    led.append("agent:k1", "reply.checked", [], {"warm": True})  # the committer thread is running
    other = os.open(str(tmp_path / "ledger" / "ledger.lock"), os.O_RDWR)
    receipts = []
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        threads = [
            threading.Thread(
                target=lambda i=i: receipts.append(led.append("agent:k1", "reply.checked", [], {"i": i}))
            )
            for i in range(6)
        ]
        for th in threads:
            th.start()
            time.sleep(0.05)  # one by one: the first is queued well before the last
        deadline = time.monotonic() + 10
        while len(led._pending) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receipts == []  # nothing is acknowledged while the other process holds the lock
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    for th in threads:
        th.join()
    assert sorted(r.seq for r in receipts) == list(range(1, 7))
    assert len({r.time for r in receipts}) == 1  # one commit: one time stamp for the batch


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"action": "Read"}, "dotted lower-case verb"),
        ({"actor": ""}, "actor"),
        ({"subject": ["13800138000"]}, "not a pseudonym"),
        ({"subject": "cust:0123456789abcdef"}, "list of pseudonyms"),
        ({"details": {"score": 0.5}}, "floats are not allowed"),
        ({"details": {"n": 2**60}}, "outside"),
        ({"details": {"k\n": 1}}, "printable ASCII"),
        ({"details": {"x": "\ud800"}}, "surrogate"),
        ({"details": {"blob": "x" * 70_000}}, "at most"),
        ({"request_id": "bad id\n"}, "request_id"),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_written(led, kwargs, fragment):
    led.append_many(_records(2))
    args = {"actor": "agent:k1", "action": "record.read", "subject": [SUBJECT], "details": {}} | kwargs
    with pytest.raises(EntryInvalid, match=fragment):
        led.append(**args)
    with pytest.raises(EntryInvalid, match=fragment):
        led.append_many([*_records(3), Record(**args)])
    assert led.size == 2
    assert verify_ledger(led.path).ok


def test_reads_out_of_range_raise_proof_unavailable(led):
    led.append_many(_records(4))
    for call in (
        lambda: led.entry(4),
        lambda: led.entry(-1),
        lambda: led.inclusion_proof(4),
        lambda: led.inclusion_proof(0, 5),
        lambda: led.consistency_proof(3, 2),
        lambda: led.root(9),
    ):
        with pytest.raises(ProofUnavailable):
            call()


def test_checkpoints_are_signed_monotonic_and_verifiable(led, signer):
    led.append_many(_records(3))
    first = led.sign_checkpoint()
    assert led.sign_checkpoint(only_if_grown=True) == first
    led.append_many(_records(4))
    second = led.sign_checkpoint(only_if_grown=True)
    verifier = NoteVerifier.from_vkey(signer.vkey())
    for signed in (first, second):
        verify_checkpoint(signed.text, verifier)
    assert (
        second.checkpoint.tree_size == 7 and second.checkpoint.timestamp_ms >= first.checkpoint.timestamp_ms
    )
    assert merkle.verify_consistency(
        3, 7, led.consistency_proof(3, 7), first.checkpoint.root_hash, second.checkpoint.root_hash
    )
    assert [c.checkpoint.tree_size for c in led.checkpoints()] == [3, 7]
    assert led.checkpoint_covering(2) == first and led.checkpoint_covering(5) == second


def test_evidence_bundle_signs_on_demand_and_carries_consistency(led):
    from ledger.bundle import verify_bundle

    led.append_many(_records(5))
    led.sign_checkpoint()
    led.append_many(_records(5))
    bundle = led.evidence_bundle([1, 2, 8])
    report = verify_bundle(bundle, NoteVerifier.from_vkey(led._signer.vkey()))
    assert report.ok, report.reason
    assert report.entries_checked == 3 and report.consistency_checked == 1


def test_readonly_and_signerless_ledgers_refuse_writes(led):
    led.append_many(_records(1))
    with Ledger.open(led.path, readonly=True) as ro:
        assert ro.size == 1
        with pytest.raises(LedgerError, match="read-only"):
            ro.append("admin:k1", "test.note")
    with Ledger.open(led.path) as unsigned, pytest.raises(LedgerError, match="without a signing key"):
        unsigned.sign_checkpoint()


_WRITER = """
import sys
from ledger import Ledger, Record
led = Ledger.open(sys.argv[1])
for i in range(int(sys.argv[2])):
    led.append("agent:p" + sys.argv[3], "test.note", [], {"i": i})
    if i % 50 == 0:
        led.append_many([Record("agent:p" + sys.argv[3], "test.batch", [], {"j": j}) for j in range(5)])
led.close()
"""


def test_several_processes_append_to_one_ledger(led):
    led.append("admin:k1", "test.note")
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, led.path, "300", str(p)]) for p in range(3)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert led.refresh() == 1 + 3 * (300 + 6 * 5)
    report = verify_ledger(led.path)
    assert report.ok, report.problems
    led.append("admin:k1", "test.note")  # this process's writer state catches up
    assert verify_ledger(led.path).ok
