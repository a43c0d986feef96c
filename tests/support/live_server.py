"""`appliance serve` as the tests run it: the real gunicorn on 127.0.0.1, in its own process group.

Every suite that talks to a served node needs the same four steps (pick a free port, start the
command with its output in a file nobody has to drain, wait until every path answers /healthz, stop
the whole group on SIGTERM and insist that it stops), so they live here once and each suite keeps
only what differs: its settings, its arguments and what it checks in the log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port nothing listens on now; the server binds it a moment later (races are rare on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path  # stderr, and stdout too unless the suite asked for it apart
    stop_timeout: float

    def stop(self) -> None:
        """SIGTERM to the group (gunicorn, workers, scheduler); a server that ignores it fails the test.

        Idempotent, so a test may stop the server to read its final log and the fixture still tidies up.
        """
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"the server did not stop on SIGTERM within {self.stop_timeout:g} s")


@contextmanager
def serve(
    env: Mapping[str, str],
    *,
    log: Path,
    stdout: Path | None = None,
    args: Sequence[str] = ("--workers", "2"),
    scheme: str = "http",
    probe: Mapping[str, Any] | None = None,
    start_timeout: float = 60,
    stop_timeout: float = 20,
    no_traceback: bool = True,
) -> Iterator[Served]:
    """Run `appliance serve` with `env` until the block ends; `probe` is passed to the /healthz request
    (TLS suites give `verify` and `cert`). With `no_traceback`, a traceback in the log fails the test:
    every error the node meets must be answered or logged as a structured line, never as a crash."""
    port = free_port()
    with open(log, "wb") as err, open(stdout or os.devnull, "wb") as out:
        proc = subprocess.Popen(
            [BIN / "appliance", "serve", "--port", str(port), *args],
            env=dict(env),
            stdout=out if stdout is not None else err,
            stderr=err if stdout is not None else subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(f"{scheme}://127.0.0.1:{port}", port, proc, log, stop_timeout)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if requests.get(served.base + "/healthz", timeout=2, **(probe or {})).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a worker booting
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"server did not start: {log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
        yield served
    finally:
        served.stop()
    if no_traceback:
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-4000:]
