"""A real ops webhook receiver on 127.0.0.1, for the delivery tests and the webhook benchmark.

It follows the receiver contract of ``docs/webhooks.md``: verifies ``Appliance-Signature`` with
:func:`predictors.delivery.verify` (401 when it fails), dedupes by ``Idempotency-Key`` (a key's effect
is applied once; later calls for it get 200 and are counted in ``duplicates``). It can misbehave on
purpose, deterministically: which calls fail depends only on ``(seed, key, n-th call for that key)``,
not on thread scheduling, so a failing run can be replayed.

* ``fail_rate`` with ``fail_mode="before"``: 500 before the effect (the common crash).
* ``fail_mode="after"``: the effect is applied, then 500 (the nasty one: the sender must retry and the
  dedupe must hold, or the effect happens twice).
* ``hang_rate``: sleep ``hang_seconds`` before answering, longer than the sender's timeout.
* ``throttle_rate``: 429 with ``Retry-After: <retry_after>``.
* ``fixed_status``: answer every call with that status and no effect.
* ``dedupe=False``: a broken receiver that applies every call's effect (so tests can show the dedupe
  is what they measure).

Usage::

    with WebhookReceiver(secrets=(SECRET,), fail_rate=0.2) as rx:
        ...  # POST to rx.url
    rx.effects, rx.calls, rx.duplicates
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal

from predictors.delivery import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, SignatureInvalid, verify

__all__ = ["WebhookReceiver"]


def _draw(seed: int, key: str, nth: int, what: str) -> float:
    """A uniform [0, 1) number fixed by its arguments: the same call misbehaves on every run."""
    digest = hashlib.blake2b(f"{seed}:{what}:{key}:{nth}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    receiver: WebhookReceiver

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (timeout) leaves a broken pipe behind: expected, not worth a traceback.
        # Anything else is a bug in this receiver; keep it where a test can assert on it.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            self.receiver.errors.append(repr(exc))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection is dropped eventually
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _answer(self, status: int, text: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.receiver.last_headers = dict(self.headers.items())
        status, text, headers = self.server.receiver._handle(
            self.headers.get(IDEMPOTENCY_HEADER), self.headers.get(SIGNATURE_HEADER), body
        )
        self._answer(status, text, headers)


class WebhookReceiver:
    """A context manager serving on a free port; ``url`` is where to send."""

    def __init__(
        self,
        secrets: Sequence[bytes] = (),
        *,
        require_signature: bool = True,
        fail_rate: float = 0.0,
        fail_mode: Literal["before", "after"] = "before",
        hang_rate: float = 0.0,
        hang_seconds: float = 2.0,
        throttle_rate: float = 0.0,
        retry_after: str = "1",
        fixed_status: int | None = None,
        dedupe: bool = True,
        seed: int = 0,
        tolerance: int = 300,
    ) -> None:
        if require_signature and not secrets:
            raise ValueError("give the receiver the endpoint's secrets, or require_signature=False")
        self.secrets = tuple(secrets)
        self.require_signature = require_signature
        self.fail_rate = fail_rate
        self.fail_mode = fail_mode
        self.hang_rate = hang_rate
        self.hang_seconds = hang_seconds
        self.throttle_rate = throttle_rate
        self.retry_after = retry_after
        self.fixed_status = fixed_status
        self.dedupe = dedupe
        self.seed = seed
        self.tolerance = tolerance
        self.effects: dict[str, bytes] = {}
        self.applied: Counter[str] = Counter()  # key -> times its effect was applied (1 when deduped)
        self.calls = 0
        self.duplicates = 0
        self.statuses: Counter[int] = Counter()
        self.bad_signatures: list[str] = []
        self.last_headers: dict[str, str] = {}
        self.errors: list[str] = []  # unexpected exceptions inside the receiver
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/ops"

    def __enter__(self) -> WebhookReceiver:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()  # wakes hanging handlers
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(
        self, key: str | None, signature: str | None, body: bytes
    ) -> tuple[int, bytes, dict[str, str] | None]:
        with self._lock:
            self.calls += 1
        if self.require_signature:
            try:
                verify(self.secrets, signature or "", body, now=time.time(), tolerance=self.tolerance)
            except SignatureInvalid as exc:
                with self._lock:
                    self.bad_signatures.append(exc.reason)
                    self.statuses[401] += 1
                return 401, str(exc).encode(), None
        if not key:
            return self._count(400, b"missing Idempotency-Key", None)
        with self._lock:
            nth = self._seen[key]
            self._seen[key] += 1
        if self.fixed_status is not None:
            return self._count(self.fixed_status, b"fixed status", None)
        if self.hang_rate and _draw(self.seed, key, nth, "hang") < self.hang_rate:
            self._stop.wait(self.hang_seconds)
        if self.throttle_rate and _draw(self.seed, key, nth, "throttle") < self.throttle_rate:
            return self._count(429, b"slow down", {"Retry-After": self.retry_after})
        fail = bool(self.fail_rate) and _draw(self.seed, key, nth, "fail") < self.fail_rate
        if fail and self.fail_mode == "before":
            return self._count(500, b"internal error (before effect)", None)
        with self._lock:
            if key in self.effects and self.dedupe:
                self.duplicates += 1
            else:
                if key in self.effects:
                    self.duplicates += 1
                self.effects[key] = body
                self.applied[key] += 1
        if fail:
            return self._count(500, b"internal error (after effect)", None)
        return self._count(200, b"ok", None)

    def _count(
        self, status: int, text: bytes, headers: dict[str, str] | None
    ) -> tuple[int, bytes, dict[str, str] | None]:
        with self._lock:
            self.statuses[status] += 1
        return status, text, headers
