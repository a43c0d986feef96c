"""A real local Ethereum node for tests: anvil (Foundry), installed by `make tools` into .tools/.

Started on 127.0.0.1 and a free port, never anything else; the JSON-RPC helpers here use anvil's own
test methods (``anvil_setBalance``, ``evm_mine``, ``evm_snapshot``/``evm_revert``, ``anvil_reorg``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from support.live_server import free_port

__all__ = ["ANVIL", "Anvil", "anvil_binary", "free_port"]

ANVIL = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin" / "anvil"


def anvil_binary() -> Path | None:
    return ANVIL if ANVIL.exists() and os.access(ANVIL, os.X_OK) else None


class Anvil:
    """One anvil process; ``state`` keeps the chain across a stop and a start on the same file."""

    def __init__(self, port: int, state: Path | None = None) -> None:
        self.port = port
        self.state = state
        self.url = f"http://127.0.0.1:{port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def attach(cls, url: str) -> Anvil:
        """A handle on an anvil started elsewhere (the session fixture yields only its URL), for its RPC."""
        return cls(int(url.rsplit(":", 1)[1]))

    @classmethod
    def start(cls, port: int | None = None, state: Path | None = None, timeout: float = 30.0) -> Anvil:
        node = cls(port or free_port(), state)
        node.launch(timeout)
        return node

    def launch(self, timeout: float = 30.0) -> None:
        binary = anvil_binary()
        if binary is None:
            raise RuntimeError(f"anvil is not installed at {ANVIL}; run `make tools`")
        args = [str(binary), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.state is not None:
            args += ["--state", str(self.state)]
        if self._log is None:
            self._log = tempfile.TemporaryFile()
        log = self._log
        # Its own process group: the npm launcher runs the native binary as a child, and signals
        # (stop, suspend) must reach both.
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"anvil exited with {self._proc.returncode}: {log.read().decode()[-2000:]}"
                )
            try:
                self.rpc("eth_chainId")
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"anvil did not answer on {self.url} within {timeout} s") from None
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (anvil writes its --state file then), and wait."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def suspend(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung node)."""
        assert self._proc is not None
        os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        os.killpg(self._proc.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            answer = json.loads(resp.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def fund(self, address: str, wei: int = 10**20) -> None:
        self.rpc("anvil_setBalance", address, hex(wei))

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def new_account(self) -> tuple[str, str]:
        """A random funded account: (address, private key hex)."""
        from eth_account import Account

        acct = Account.create()
        self.fund(acct.address)
        return acct.address, acct.key.to_0x_hex()
