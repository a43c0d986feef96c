"""A witness over HTTP: c2sp.org/tlog-witness ``POST /add-checkpoint``, served by gunicorn.

Any party holding a log's public key can run one (``appliance witness serve``): it needs no node,
only its own key and state directory (``appliance witness init``) and the verifier keys of the logs
it follows. The status codes are the protocol's: 200 with the cosignature line(s); 409 Conflict with
a ``text/x.tlog.size`` body holding the witness's size for the log (the log retries from it; also
for another root at a size already cosigned: a fork); 404 for a log it does not follow; 403 when
the log's signature does not verify; 422 when the consistency proof does not; 400 for a malformed
request. Other refusals are problem+json like the rest of the appliance's API.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

from appliance.server import SECURITY_HEADERS
from appliance.server.context import REQUEST_ID_HEADER, request_id
from appliance.server.errors import register_error_handlers
from ledger.errors import WitnessConflict
from ledger.witness import Witness, parse_add_checkpoint

__all__ = ["MAX_REQUEST_BYTES", "create_witness_app", "serve_witness"]

log = logging.getLogger("appliance.witness")

EXTENSION = "appliance.witness"
#: A checkpoint note with up to 100 signature lines and 63 proof lines fits well within this.
MAX_REQUEST_BYTES = 64 * 1024
SIZE_TYPE = "text/x.tlog.size"


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_witness_app(witness: Witness) -> Flask:
    """The witness's app; tests serve it in-process, ``serve_witness`` under gunicorn."""
    app = Flask("appliance.witness")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions[EXTENSION] = witness
    app.after_request(_finish)
    register_error_handlers(app)

    @app.post("/add-checkpoint")
    def add_checkpoint() -> Response:
        old, proof, note = parse_add_checkpoint(request.get_data(cache=False))
        try:
            lines = witness.add_checkpoint(old, proof, note)
        except WitnessConflict as exc:
            log.info("add-checkpoint conflict (witness size %d, fork=%s): %s", exc.size, exc.fork, exc)
            return Response(f"{exc.size}\n", 409, content_type=SIZE_TYPE)  # exactly: clients compare it
        return Response(lines, 200, mimetype="text/plain")

    @app.get("/")
    def about() -> dict[str, Any]:
        """Who this is and which logs it follows (public facts; its key is given out of band)."""
        heads = witness.heads()
        return {
            "witness": witness.name,
            "vkey": witness.vkey(),
            "logs": [
                {"origin": o, "tree_size": heads[o].tree_size if o in heads else 0} for o in witness.origins
            ],
        }

    return app


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app


def serve_witness(witness: Witness, *, host: str, port: int, workers: int = 1, threads: int = 4) -> None:
    """Serve until SIGTERM/SIGINT. Workers share the state file safely (it is locked per request)."""
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "proc_name": "appliance-witness",
        "control_socket_disable": True,  # its default path is one per user (appliance.serve.control_options)
    }
    _Gunicorn(create_witness_app(witness), options).run()


def state_path(state_dir: Path) -> Path:
    return state_dir / "state.json"
