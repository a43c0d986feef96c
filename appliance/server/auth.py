"""API-key authentication, role checks, per-key rate limits and the record of failed attempts.

A key is sent as ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``;
the node's key store maps it to one role. Unknown, mistyped, revoked and
expired keys all get the same 401 (telling them apart would help someone
guessing keys); a valid key whose role is not allowed gets 403. The
authenticated key is kept in ``flask.g.api_key``: its ``actor`` is what ledger
entries record, never the token, which is not logged either.

Around that sit the guards of :class:`Guard` (one per app, in
``app.extensions``): a token bucket per key (429 with ``Retry-After``), a
bucket of failed attempts per source address (past it, tokens this worker has
not verified before are refused with 429 without being checked, which slows
guessing and bounds the argon2 work a stranger can cause), and the failed
attempts themselves: counted, logged and aggregated into ``auth.failed``
ledger entries (see :mod:`appliance.server.auth_failures`).
"""

from __future__ import annotations

import atexit
import functools
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from appliance.keys import ROLES, ApiKey, AuthResult
from appliance.server.auth_failures import FailedAuthRecorder
from appliance.server.context import current_node
from appliance.server.errors import HTTPProblem
from appliance.server.ratelimit import Limit, RateLimiter, retry_after_header
from appliance.settings import ServerSettings, Settings

__all__ = [
    "Guard",
    "authorize",
    "check_roles",
    "current_key",
    "guard",
    "init_auth",
    "require",
    "verify_token",
]

F = TypeVar("F", bound=Callable[..., Any])

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="appliance"'}
_EXTENSION = "appliance.auth"
#: The one answer for every key that does not open the door, whatever the reason.
_INVALID_KEY = (
    "the API key is not valid (unknown, mistyped, revoked or expired); ask an admin for a valid key"
)
SYSTEM_ACTOR = "system:auth"

log = logging.getLogger("appliance.server")


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Refuse unknown role names when a route is declared, not when it is first called."""
    roles = tuple(roles)
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(
            f"roles {unknown or '(none)'} are not roles of the node; use some of {', '.join(ROLES)}"
        )
    return roles


def _metrics() -> Any:
    """The ``appliance.metrics`` module when this install has it (its counters are made on first use)."""
    try:
        from appliance import metrics
    except ImportError:
        return None
    return metrics


@dataclass
class Guard:
    """The per-app state of authentication: rate limiters and the failed-attempt record."""

    keys: RateLimiter | None
    role_limits: Mapping[str, Limit]
    failures: RateLimiter | None
    recorder: FailedAuthRecorder
    metrics: Any = None  # appliance.metrics: auth_failures{reason} counts every failure

    @classmethod
    def from_settings(
        cls, server: ServerSettings, append: Callable[[str, Mapping[str, Any]], object]
    ) -> Guard:
        default = None
        if server.rate_limit_per_second > 0:
            default = Limit(server.rate_limit_per_second, server.rate_limit_burst)
        overrides = {r: Limit(v.per_second, v.burst) for r, v in server.rate_limit_roles.items()}
        limits = {r: lim for r in ROLES if (lim := overrides.get(r, default)) is not None}
        keys = RateLimiter(next(iter(limits.values()))) if limits else None
        failures = None
        if server.failed_auth_per_minute > 0:
            failures = RateLimiter(Limit(server.failed_auth_per_minute / 60.0, server.failed_auth_burst))
        return cls(keys, limits, failures, FailedAuthRecorder(append), _metrics())

    def key_wait(self, key: ApiKey) -> tuple[float, Limit | None]:
        limit = self.role_limits.get(key.role)
        if self.keys is None or limit is None:
            return 0.0, None
        return self.keys.hit(key.key_id, limit), limit

    def source_wait(self, source: str, *, take: bool) -> float:
        """Seconds ``source`` must wait before another attempt (0: go on); ``take`` reserves the attempt.

        The attempt is taken *before* a key is checked, so that concurrent requests cannot all slip past
        the limit while their (slow) checks run; :meth:`give_back` returns it when the key was good.
        """
        if self.failures is None:
            return 0.0
        return self.failures.hit(source) if take else self.failures.wait(source)

    def give_back(self, source: str) -> None:
        if self.failures is not None:
            self.failures.refund(source)

    def failed(self, source: str, result: AuthResult) -> None:
        """Count, log and (aggregated) record one failed authentication; never the token."""
        if self.metrics is not None:
            self.metrics.auth_failures.labels(reason=result.reason).inc()
        log.warning(
            "authentication failed: reason=%s source=%s key=%s path=%s",
            result.reason,
            source,
            result.key_id or "-",
            request.path,
        )
        self.recorder.add(source, result.key_id, result.reason)


def _make_guard(app: Flask, settings: Settings | None = None) -> Guard:
    node = app.extensions["appliance"]

    def append(action: str, details: Mapping[str, Any]) -> object:
        return node.record(SYSTEM_ACTOR, action, details=details)

    state = Guard.from_settings((settings or node.settings).server, append)
    app.extensions[_EXTENSION] = state
    return state


def init_auth(app: Flask, settings: Settings | None = None) -> Guard:
    """Give ``app`` its guard (limits from ``settings``, default the node's); pending failure counts are
    flushed on any request, and at exit when the app owns its node."""
    state = _make_guard(app, settings)
    app.before_request(state.recorder.flush_due)
    if app.extensions.get("appliance.owns_node"):
        # Registered after the node's own close, so it runs before it (atexit is last in, first out).
        ref = weakref.ref(state)

        def flush_at_exit() -> None:
            live = ref()
            if live is not None:
                live.recorder.flush()

        atexit.register(flush_at_exit)
    return state


def guard() -> Guard:
    """The current app's guard (made on first use for apps built without :func:`init_auth`)."""
    state: Guard | None = current_app.extensions.get(_EXTENSION)
    if state is None:
        state = _make_guard(current_app)
    return state


def _unauthorized(detail: str) -> HTTPProblem:
    return HTTPProblem(401, "unauthorized", "Unauthorized", detail, headers=_CHALLENGE)


def _token() -> tuple[str | None, AuthResult | None, str]:
    """The presented token, or why there is none usable (a failed result and the detail to send)."""
    header = request.headers.get("Authorization")
    api_key = request.headers.get("X-API-Key")
    bearer = None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, AuthResult(None, "malformed"), "the Authorization header must be 'Bearer <API key>'"
        bearer = value.strip()
    if bearer is not None and api_key is not None and bearer != api_key.strip():
        return (
            None,
            AuthResult(None, "malformed"),
            "Authorization and X-API-Key name different keys; send one key",
        )
    token = bearer if bearer is not None else (api_key or "").strip()
    if not token:
        detail = "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        return None, AuthResult(None, "missing"), detail
    return token, None, _INVALID_KEY


def verify_token(
    token: str, failure: AuthResult | None = None, *, attempts: str = "authentications"
) -> AuthResult:
    """Check a presented token under the per-source failure throttle (the API and the console sign-in).

    A key sent costs the source one attempt, taken before the slow argon2 check and given back when
    the key was good; a source over its limit gets 429 for every token this worker has not verified
    before. ``failure`` is a refusal already known from the request's shape (no key, two keys).
    """
    state = guard()
    source = request.remote_addr or "-"
    store = current_node().keys
    result = failure if failure is not None else store.check(token, verify=False)
    if result.key is None:
        wait = state.source_wait(source, take=result.reason != "missing")
        if wait > 0:
            # Known-good tokens (verified earlier by this worker) got through above; everything else waits.
            raise HTTPProblem(
                429,
                "too-many-failed-authentications",
                "Too many failed authentications",
                f"too many failed {attempts} from {source}; retry after {retry_after_header(wait)} s",
                headers={"Retry-After": retry_after_header(wait)},
            )
        if result.reason == "unverified":
            result = store.check(token)
        if result.key is not None:
            state.give_back(source)
    if result.key is None:
        state.failed(source, result)
    return result


def authenticate() -> ApiKey:
    """The key of this request; raises 401 (or 429 for a source with too many failures) otherwise."""
    guard().recorder.flush_due()
    token, failure, detail = _token()
    result = verify_token(token or "", failure)
    if result.key is None:
        raise _unauthorized(detail)
    return result.key


def authorize(roles: Iterable[str]) -> ApiKey:
    """Authenticate the request, apply the key's rate limit and require one of ``roles``."""
    key = authenticate()
    g.api_key = key
    wait, limit = guard().key_wait(key)
    if wait > 0 and limit is not None:
        raise HTTPProblem(
            429,
            "rate-limited",
            "Too many requests",
            f"API key {key.key_id} is over its limit of {limit.per_second:g} requests/s "
            f"(burst {limit.burst}); retry after {retry_after_header(wait)} s",
            headers={"Retry-After": retry_after_header(wait)},
        )
    allowed = tuple(roles)
    if key.role not in allowed:
        raise HTTPProblem(
            403,
            "forbidden",
            "Forbidden",
            f"role {key.role!r} may not use this endpoint; it needs one of: {', '.join(allowed)}",
        )
    return key


def current_key() -> ApiKey:
    """The key that authenticated this request (only inside a route that required one)."""
    key: ApiKey | None = g.get("api_key")
    if key is None:
        raise RuntimeError("current_key() called in a route that does not require a key")
    return key


def require(*roles: str) -> Callable[[F], F]:
    """Decorator for a view that only ``roles`` may call (``openapi.operation`` applies it for you)."""
    allowed = check_roles(roles)

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def view(*args: Any, **kwargs: Any) -> Any:
            authorize(allowed)
            return fn(*args, **kwargs)

        return view  # type: ignore[return-value]

    return decorate
