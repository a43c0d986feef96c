"""Signed webhook delivery to marketing ops: one attempt per call, retries decided, never a lost trigger.

The outbox (owned by the node) hands this module rows as :class:`Delivery` values and gets a
:class:`DeliveryResult` for each; it stores the outcome and resends ``retry`` rows once their
``next_attempt_after`` has passed. This module keeps no state between calls, reads no store and writes
no ledger, so a crash between "sent" and "recorded" simply sends the row again, and exactly-once
*effect* rests on the receiver contract below rather than on the sender remembering anything.

Receiver contract (also in ``docs/webhooks.md``):

* Every request is ``POST <url>`` with ``Content-Type: application/json``,
  ``User-Agent: appliance-webhook/1``, ``Idempotency-Key: <trigger id>`` and
  ``Appliance-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` where each ``v1`` is
  HMAC-SHA256(secret, ``f"{t}."`` + raw body) for one active secret (several during a rotation), as in
  Stripe's scheme. Receivers verify the raw bytes before parsing, compare in constant time, and refuse
  a timestamp more than 5 minutes away from their clock (:func:`verify` does all of this).
* Receivers MUST dedupe by ``Idempotency-Key``: apply a key's effect once, and answer 2xx for a key
  they already processed. Only a 2xx counts as delivered, so a 409 for "already seen" would be retried
  until the attempts run out and then reported as failed.
* 408, 409, 425, 429 and every 5xx (and every network error or timeout) are retried with exponential
  backoff and full jitter; ``Retry-After`` on 429/503 is honoured (capped). Any other 4xx is permanent:
  the row is marked failed at once, since resending the same signed body cannot change the answer.
* Redirects are not followed (a 3xx is retried like a 5xx until the endpoint is fixed): following one
  would send signed customer data to a host nobody configured.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.client import HTTPException
from typing import Literal, Protocol
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from predictors.errors import DeliveryError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "USER_AGENT",
    "Delivery",
    "DeliveryResult",
    "Endpoint",
    "Outcome",
    "RandomSource",
    "SignatureInvalid",
    "WebhookSender",
    "backoff",
    "sign",
    "signature_header",
    "verify",
]

SIGNATURE_HEADER = "Appliance-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "appliance-webhook/1"
MIN_SECRET_BYTES = 16
MAX_KEY_CHARS = 255

Outcome = Literal["delivered", "retry", "failed"]

# Statuses a receiver uses for "not now" rather than "never": timeout, conflict (the same key is being
# processed), too early, throttled.
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# The response body is read only for the error text; a receiver that streams megabytes is cut off.
_MAX_RESPONSE_BYTES = 64 * 1024
_SNIPPET_CHARS = 200
_KEY_RE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: safe in a header, no CR/LF injection
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


class SignatureInvalid(DeliveryError):
    """A webhook request whose ``Appliance-Signature`` does not prove the body came from us, now.

    ``reason`` is ``"malformed"``, ``"timestamp"`` or ``"mismatch"`` so a receiver can count them apart;
    none of them reveals anything about the secret.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RandomSource(Protocol):
    """What backoff needs from a random generator: ``random.Random`` fits; tests pass a seeded one."""

    def random(self) -> float: ...


# --- signatures ---------------------------------------------------------------------------------------


def _digest(secret: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Appliance-Signature`` value for one secret: ``t=<timestamp>,v1=<hex HMAC-SHA256>``.

    The timestamp is inside the MAC so a captured request cannot be replayed later with a fresh ``t``.
    """
    return signature_header((secret,), body, timestamp)


def signature_header(secrets: Sequence[bytes], body: bytes, timestamp: int) -> str:
    """The header value with one ``v1`` per active secret, so receivers on either side of a rotation
    accept the same request."""
    if isinstance(secrets, bytes | bytearray):
        secrets = (bytes(secrets),)
    if not secrets:
        raise DeliveryError("cannot sign a webhook without a secret; configure at least one endpoint secret")
    if not isinstance(body, bytes | bytearray):
        raise DeliveryError(f"webhook body must be bytes (the JSON as sent), not {type(body).__name__}")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise DeliveryError(f"signature timestamp must be whole non-negative unix seconds, not {timestamp!r}")
    parts = [f"t={timestamp}"]
    for secret in secrets:
        if not isinstance(secret, bytes | bytearray) or not secret:
            raise DeliveryError("a webhook secret must be non-empty bytes; use secrets.token_bytes(32)")
        parts.append(f"v1={_digest(bytes(secret), bytes(body), timestamp)}")
    return ",".join(parts)


def _parse_header(header: str) -> tuple[int, list[str]]:
    if not isinstance(header, str) or not header.strip():
        raise SignatureInvalid(
            f"{SIGNATURE_HEADER} header is missing or empty; the sender must sign every request",
            reason="malformed",
        )
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} header is malformed: {item.strip()[:40]!r} is not name=value; "
                "expected 't=<unix seconds>,v1=<hex>'",
                reason="malformed",
            )
        if name == "t":
            if timestamp is not None or not _TIMESTAMP_RE.fullmatch(value):
                raise SignatureInvalid(
                    f"{SIGNATURE_HEADER} header is malformed: 't' must appear once as whole unix seconds; "
                    "expected 't=<unix seconds>,v1=<hex>'",
                    reason="malformed",
                )
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
        # Other schemes (v0, future v2) are ignored, as Stripe's verifiers do, so senders can add one.
    if timestamp is None or not candidates:
        missing = "t" if timestamp is None else "v1"
        raise SignatureInvalid(
            f"{SIGNATURE_HEADER} header is malformed: no '{missing}=' element; "
            "expected 't=<unix seconds>,v1=<hex>'",
            reason="malformed",
        )
    return timestamp, candidates


def verify(
    secret_or_secrets: bytes | Sequence[bytes],
    header: str,
    body: bytes,
    *,
    now: float,
    tolerance: int = 300,
) -> None:
    """Check an ``Appliance-Signature`` header against the raw body; raise :class:`SignatureInvalid`.

    Accepts when any ``v1`` matches any of the given secrets (rotation: the receiver holds old and new
    while the sender signs with both). The signature is checked before the timestamp, so a
    ``"timestamp"`` failure means an authentic but stale or future request: a replay or a wrong clock.
    """
    secrets: Sequence[bytes] = (
        (bytes(secret_or_secrets),)
        if isinstance(secret_or_secrets, bytes | bytearray)
        else tuple(secret_or_secrets)
    )
    if not secrets or not all(isinstance(s, bytes | bytearray) and s for s in secrets):
        raise DeliveryError("verify needs at least one non-empty secret (bytes); pass the endpoint's secrets")
    timestamp, candidates = _parse_header(header)
    matched = False
    for secret in secrets:
        expected = _digest(bytes(secret), bytes(body), timestamp).encode("ascii")
        for candidate in candidates:
            # Compare every pair (no early exit on a match) to keep the timing independent of which matched.
            matched |= hmac.compare_digest(expected, candidate.encode("ascii", "replace"))
    if not matched:
        raise SignatureInvalid(
            f"{SIGNATURE_HEADER}: no v1 signature matches the body; check that the receiver holds the "
            "endpoint's current secret and verifies the raw body bytes before parsing them",
            reason="mismatch",
        )
    skew = now - timestamp
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "in the future"
        raise SignatureInvalid(
            f"{SIGNATURE_HEADER}: timestamp {timestamp} is {abs(skew):.0f} s {direction} (tolerance "
            f"{tolerance} s); refuse it as a possible replay, or fix the clock of the sender or receiver",
            reason="timestamp",
        )


# --- configuration and values ------------------------------------------------------------------------


def _redacted(url: str) -> str:
    # Never echo a URL's userinfo (a password) into an error message or a log.
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else repr(url[:60])
    except ValueError:
        return "<unparseable url>"


def _finite(value: float, name: str, *, minimum: float, allow_equal: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeliveryError(f"webhook endpoint {name} must be a finite number of seconds, not {value!r}")
    if value < minimum or (not allow_equal and value == minimum):
        op = ">=" if allow_equal else ">"
        raise DeliveryError(f"webhook endpoint {name} must be {op} {minimum:g}, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Endpoint:
    """One ops receiver and how hard to try it.

    ``secrets`` holds every active signing secret (two during a rotation); it is left out of ``repr``
    so an endpoint can be logged. Backoff before attempt N+1 is uniform in
    ``[0, min(backoff_cap, backoff_base * backoff_factor**(N-1))]`` (full jitter), so receivers that
    came back up are not hit by every sender at the same instant.
    """

    url: str
    secrets: tuple[bytes, ...] = field(repr=False)
    timeout_seconds: float = 5.0
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_factor: float = 2.0
    backoff_cap: float = 3600.0

    def __post_init__(self) -> None:
        self._check_url()
        secrets = self.secrets
        if isinstance(secrets, bytes | bytearray):
            secrets = (bytes(secrets),)
        if isinstance(secrets, str) or not isinstance(secrets, Sequence):
            raise DeliveryError(
                f"webhook endpoint {_redacted(self.url)}: secrets must be a tuple of bytes, "
                f"not {type(secrets).__name__}"
            )
        secrets = tuple(secrets)
        if not secrets:
            raise DeliveryError(
                f"webhook endpoint {_redacted(self.url)} has no secret; give at least one of "
                f">= {MIN_SECRET_BYTES} random bytes (secrets.token_bytes(32))"
            )
        for i, secret in enumerate(secrets, 1):
            if not isinstance(secret, bytes | bytearray):
                raise DeliveryError(
                    f"webhook endpoint {_redacted(self.url)}: secret #{i} is {type(secret).__name__}, "
                    "not bytes; decode hex/base64 secrets before building the endpoint"
                )
            if len(secret) < MIN_SECRET_BYTES:
                raise DeliveryError(
                    f"webhook endpoint {_redacted(self.url)}: secret #{i} is {len(secret)} bytes; use at "
                    f"least {MIN_SECRET_BYTES} random bytes (secrets.token_bytes(32))"
                )
        object.__setattr__(self, "secrets", tuple(bytes(s) for s in secrets))
        timeout = _finite(self.timeout_seconds, "timeout_seconds", minimum=0.0, allow_equal=False)
        object.__setattr__(self, "timeout_seconds", timeout)
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise DeliveryError(
                f"webhook endpoint max_attempts must be a whole number >= 1, not {self.max_attempts!r}"
            )
        base = _finite(self.backoff_base, "backoff_base", minimum=0.0)
        factor = _finite(self.backoff_factor, "backoff_factor", minimum=1.0)
        cap = _finite(self.backoff_cap, "backoff_cap", minimum=base)
        object.__setattr__(self, "backoff_base", base)
        object.__setattr__(self, "backoff_factor", factor)
        object.__setattr__(self, "backoff_cap", cap)

    def _check_url(self) -> None:
        url = self.url
        if not isinstance(url, str) or not url:
            raise DeliveryError(f"webhook endpoint url must be a non-empty string, not {url!r}")
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
            raise DeliveryError(
                f"webhook endpoint url {_redacted(url)} contains whitespace or control characters; "
                "percent-encode them"
            )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise DeliveryError(f"webhook endpoint url {_redacted(url)} cannot be parsed ({exc})") from exc
        if parts.scheme not in ("http", "https"):
            raise DeliveryError(
                f"webhook endpoint url {_redacted(url)}: scheme must be http or https, "
                f"not {parts.scheme or 'missing'!r}"
            )
        if parts.username is not None or parts.password is not None:
            raise DeliveryError(
                f"webhook endpoint url {_redacted(url)} carries credentials; remove user:password@ from "
                "the URL (requests are authenticated by the signature header)"
            )
        if not parts.hostname:
            raise DeliveryError(
                f"webhook endpoint url {url!r} has no host; write e.g. https://ops.example/hook"
            )
        if port == 0:
            raise DeliveryError(f"webhook endpoint url {_redacted(url)}: port 0 cannot be connected to")


@dataclass(frozen=True)
class Delivery:
    """One outbox row to send: the trigger id as idempotency key, the JSON as built, tries so far."""

    key: str
    body: bytes
    attempt: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _KEY_RE.fullmatch(self.key) or len(self.key) > MAX_KEY_CHARS:
            raise DeliveryError(
                f"idempotency key {str(self.key)[:60]!r} must be 1-{MAX_KEY_CHARS} visible ASCII characters "
                "(no spaces or line breaks); use the trigger's outbox id"
            )
        if not isinstance(self.body, bytes | bytearray):
            raise DeliveryError(
                f"delivery {self.key}: body must be bytes (the encoded JSON), not {type(self.body).__name__}"
            )
        if isinstance(self.attempt, bool) or not isinstance(self.attempt, int) or self.attempt < 0:
            raise DeliveryError(
                f"delivery {self.key}: attempt must be the whole number of tries so far, not {self.attempt!r}"
            )


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt came to. ``attempts`` counts tries including this one (store it and pass it back
    as ``Delivery.attempt``); ``next_attempt_after`` is set only for ``retry``."""

    key: str
    outcome: Outcome
    status: int | None
    error: str | None
    duration: float
    attempts: int
    next_attempt_after: float | None = None


def backoff(attempt: int, *, base: float, cap: float, rng: RandomSource, factor: float = 2.0) -> float:
    """Seconds to wait before attempt ``attempt + 1``, after ``attempt`` tries: full jitter over an
    exponential ceiling, ``uniform(0, min(cap, base * factor**(attempt - 1)))``."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise DeliveryError(f"backoff attempt counts tries made so far and starts at 1, not {attempt!r}")
    try:
        ceiling = min(cap, base * factor ** (attempt - 1))
    except OverflowError:
        ceiling = cap
    return ceiling * rng.random()


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means the zone was missing
        return None
    return max(0.0, when.timestamp() - now)


def _snippet(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:_SNIPPET_CHARS] + ("..." if len(text) > _SNIPPET_CHARS else "")


def _network_error(exc: BaseException, timeout: float, host: str) -> str:
    """A one-line reason an operator can act on, from urllib3's exception zoo."""
    if isinstance(exc, NameResolutionError):
        return f"cannot resolve host {host}; check the endpoint URL and DNS"
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError: test it first
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {host}; is the receiver running?"
        if isinstance(cause, TimeoutError):
            return f"timed out after {timeout} s connecting to {host}"
        return f"cannot connect to {host}: {cause or exc}"
    if isinstance(exc, ConnectTimeoutError):
        return f"timed out after {timeout} s connecting to {host}"
    if isinstance(exc, ReadTimeoutError | TimeoutError):
        return f"timed out after {timeout} s waiting for {host} to answer"
    if isinstance(exc, SSLError):
        return f"TLS error with {host}: {exc}; check the receiver's certificate"
    if isinstance(exc, ProtocolError):
        cause = exc.args[1] if len(exc.args) > 1 else exc
        return f"connection to {host} dropped before an answer ({cause!r})"
    return f"request to {host} failed: {exc!r}"


# --- the sender ----------------------------------------------------------------------------------------


class WebhookSender:
    """Sends batches of deliveries to one endpoint concurrently over pooled keep-alive connections.

    One attempt per delivery per :meth:`send_batch`; the caller (the outbox) decides when to resend,
    which keeps the schedule durable in its table instead of in this process's memory. Never raises
    for a network problem or an HTTP status: they are results.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        concurrency: int = 16,
        clock: Callable[[], float] = time.time,
        rng: RandomSource | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise DeliveryError(
                f"webhook sender concurrency must be a whole number >= 1, not {concurrency!r}"
            )
        self.endpoint = endpoint
        self._clock = clock
        self._rng: RandomSource = rng if rng is not None else random.Random()
        parts = urlsplit(endpoint.url)
        self._host = parts.netloc
        # retries=False: urllib3 must not resend behind our back (that would hide attempts from the
        # outbox and could double-send); block=False so a burst never waits on the pool.
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=concurrency, block=False, retries=False)
        self._timeout = urllib3.Timeout(total=endpoint.timeout_seconds)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook")
        self._closed = False

    def send_batch(self, deliveries: Sequence[Delivery]) -> list[DeliveryResult]:
        """One attempt for each delivery, in parallel; results in the order of ``deliveries``."""
        if self._closed:
            raise DeliveryError("webhook sender is closed; build a new WebhookSender")
        if not deliveries:
            return []
        keys = {d.key for d in deliveries}
        if len(keys) != len(deliveries):
            raise DeliveryError(
                "a batch holds the same idempotency key twice; send each outbox row once per batch "
                "(two concurrent requests with one key race in the receiver's dedupe)"
            )
        return list(self._executor.map(self._send_one, deliveries))

    def close(self) -> None:
        """Wait for sends in flight, then drop pooled connections."""
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=True)
            self._pool.clear()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send_one(self, delivery: Delivery) -> DeliveryResult:
        endpoint = self.endpoint
        attempts = delivery.attempt + 1
        if delivery.attempt >= endpoint.max_attempts:
            return DeliveryResult(
                delivery.key,
                "failed",
                None,
                f"not sent: already tried {delivery.attempt} times (max_attempts {endpoint.max_attempts})",
                0.0,
                delivery.attempt,
            )
        body = bytes(delivery.body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            IDEMPOTENCY_HEADER: delivery.key,
            SIGNATURE_HEADER: signature_header(endpoint.secrets, body, int(self._clock())),
        }
        status: int | None = None
        retry_after: str | None = None
        error: str | None
        started = time.monotonic()
        try:
            response = self._pool.urlopen(
                "POST",
                endpoint.url,
                body=body,
                headers=headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
        except (HTTPError, HTTPException, OSError) as exc:
            error = _network_error(exc, endpoint.timeout_seconds, self._host)
        else:
            status = response.status
            retry_after = response.headers.get("Retry-After")
            text = self._drain(response, started + endpoint.timeout_seconds)
            error = None if 200 <= status < 300 else f"HTTP {status}" + (f": {text}" if text else "")
        duration = time.monotonic() - started

        if status is not None and 200 <= status < 300:
            return DeliveryResult(delivery.key, "delivered", status, None, duration, attempts)
        if status is not None and 400 <= status < 500 and status not in _RETRYABLE_4XX:
            return DeliveryResult(
                delivery.key,
                "failed",
                status,
                f"{error} (permanent: the receiver refused this request; fix the receiver or the payload, "
                "then re-queue the trigger)",
                duration,
                attempts,
            )
        if attempts >= endpoint.max_attempts:
            return DeliveryResult(
                delivery.key,
                "failed",
                status,
                f"{error}; gave up after {attempts} attempts (max_attempts {endpoint.max_attempts})",
                duration,
                attempts,
            )
        wait: float | None = None
        if status in _RETRY_AFTER_STATUSES:
            wait = _retry_after(retry_after, self._clock())
        if wait is None:
            wait = backoff(
                attempts,
                base=endpoint.backoff_base,
                cap=endpoint.backoff_cap,
                rng=self._rng,
                factor=endpoint.backoff_factor,
            )
        return DeliveryResult(
            delivery.key, "retry", status, error, duration, attempts, min(wait, endpoint.backoff_cap)
        )

    @staticmethod
    def _drain(response: urllib3.BaseHTTPResponse, deadline: float) -> str:
        """Read the body for the error text, within the deadline and a size cap; the status already
        decided the outcome, so a slow or huge body only costs the connection, never the result."""
        kept = bytearray()
        total = 0
        complete = False
        try:
            while time.monotonic() < deadline and total <= _MAX_RESPONSE_BYTES:
                chunk = response.read1(16 * 1024)
                if not chunk:
                    complete = True
                    break
                total += len(chunk)
                if len(kept) < _SNIPPET_CHARS * 4:
                    kept += chunk[: _SNIPPET_CHARS * 4 - len(kept)]
        except (HTTPError, HTTPException, OSError):
            complete = False
        if not complete:
            response.close()  # unread bytes would corrupt the next request on this connection
        response.release_conn()
        return _snippet(bytes(kept))
