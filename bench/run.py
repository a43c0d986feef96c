"""`make bench`: every benchmark, one after the other, with the machine they ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Arguments go to the ledger bench, as before; the masking and policy benches share only --quick with it.
QUICK = ["--quick"] if "--quick" in sys.argv[1:] else []
BENCHES = [
    ["bench_tree.py"],
    ["bench_ledger.py", *sys.argv[1:]],
    ["bench_masking.py", *QUICK],
    ["bench_policy_scan.py", *QUICK],
    ["bench_policy_decision.py", *QUICK],
    ["bench_caravan.py", *QUICK],
    ["bench_scoring.py", *QUICK],
    ["bench_webhook.py", *QUICK],
    ["bench_proactive.py", *QUICK],
    ["bench_privacy.py", *QUICK],
    # HTTP load through gunicorn with wrk (15 s per case; the 10-minute soak: bench_load.py --soak 600).
    ["bench_load.py", *QUICK],
]

print(
    f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
    f"{platform.platform()}",
    flush=True,
)
status = 0
for bench in BENCHES:
    print(f"\n=== {bench[0]} ===", flush=True)
    status |= subprocess.call([sys.executable, str(HERE / bench[0]), *bench[1:]])
sys.exit(status)
