"""SIGKILL a writer mid-stream, again and again: every acknowledged entry survives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from ledger import Ledger
from ledger.verify import verify_ledger

ORIGIN = "test.example/crash"

# Appends from several threads (group commit) and batches; prints "seq leafhex" only
# after the append returned, i.e. after it was acknowledged as durable.
_WRITER = r"""
import sys, threading
from ledger import Ledger, Record
led = Ledger.open(sys.argv[1], max_segment_bytes=int(sys.argv[2]))
out = sys.stdout
lock = threading.Lock()
def report(receipts):
    with lock:
        for r in receipts:
            out.write(f"{r.seq} {r.leaf_hash.hex()}\n")
        out.flush()
def single(t):
    i = 0
    while True:
        report([led.append("agent:w", "test.note", [], {"t": t, "i": i, "pad": "x" * (i % 97)})])
        i += 1
def batch():
    i = 0
    while True:
        records = [Record("agent:w", "test.batch", [], {"i": i, "j": j}) for j in range(50)]
        report(list(led.append_many(records)))
        i += 1
threads = [threading.Thread(target=single, args=(t,), daemon=True) for t in range(8)]
threads.append(threading.Thread(target=batch, daemon=True))
for th in threads:
    th.start()
threading.Event().wait()
"""


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_entry(tmp_path):
    path = str(tmp_path / "ledger")
    Ledger.create(path, ORIGIN)
    rng = random.Random(6962)
    acked: dict[int, str] = {}
    rounds = 25
    env = dict(os.environ)
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, path, str(rng.choice([8192, 65536, 1 << 20]))],
            stdout=subprocess.PIPE,
            env=env,
        )
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        for line in out.decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and len(parts[1]) == 64:  # a line cut by the kill is not counted
                acked[int(parts[0])] = parts[1]
        with Ledger.open(path) as led:  # recovery runs here
            assert led.size >= (max(acked) + 1 if acked else 0)
            for seq, leaf in acked.items():
                assert led.leaf_hash(seq).hex() == leaf, f"acknowledged entry {seq} changed"
    assert len(acked) > 1000
    report = verify_ledger(path)
    assert report.ok, report.problems
    assert report.entries >= max(acked) + 1
