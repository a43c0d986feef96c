"""A real witness (appliance.server.witness) served over HTTP on 127.0.0.1 and a free port, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from appliance.server.witness import create_witness_app
from ledger.checkpoint import NoteVerifier
from ledger.witness import Witness, WitnessSigner

__all__ = ["RunningWitness", "start_witness"]


@dataclass
class RunningWitness:
    witness: Witness
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def vkey(self) -> str:
        return self.witness.vkey()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def start_witness(state_dir: Path, name: str, logs: Iterable[NoteVerifier]) -> RunningWitness:
    state_dir.mkdir(parents=True, exist_ok=True)
    witness = Witness(WitnessSigner.generate(name), state_dir / "state.json", list(logs))
    server = make_server("127.0.0.1", 0, create_witness_app(witness), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"witness-{name}", daemon=True)
    thread.start()
    return RunningWitness(witness, server, thread)
