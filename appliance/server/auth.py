"""API-key authentication and role checks.

A key is sent as ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``;
the node's key store maps it to one role. Missing, unknown and revoked keys
get the same 401 (telling them apart would help someone guessing keys); a
valid key whose role is not allowed gets 403. The authenticated key is kept
in ``flask.g.api_key``: its ``actor`` is what ledger entries record, never the
token, which is not logged either.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import g, request

from appliance.keys import ROLES, ApiKey
from appliance.server.context import current_node
from appliance.server.errors import HTTPProblem

__all__ = ["authorize", "check_roles", "current_key", "require"]

F = TypeVar("F", bound=Callable[..., Any])

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="appliance"'}


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Refuse unknown role names when a route is declared, not when it is first called."""
    roles = tuple(roles)
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(
            f"roles {unknown or '(none)'} are not roles of the node; use some of {', '.join(ROLES)}"
        )
    return roles


def _unauthorized(detail: str) -> HTTPProblem:
    return HTTPProblem(401, "unauthorized", "Unauthorized", detail, headers=_CHALLENGE)


def _token() -> str:
    header = request.headers.get("Authorization")
    api_key = request.headers.get("X-API-Key")
    bearer = None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <API key>'")
        bearer = value.strip()
    if bearer is not None and api_key is not None and bearer != api_key.strip():
        raise _unauthorized("Authorization and X-API-Key name different keys; send one key")
    token = bearer if bearer is not None else (api_key or "").strip()
    if not token:
        raise _unauthorized(
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    return token


def authorize(roles: Iterable[str]) -> ApiKey:
    """Authenticate the request and require one of ``roles``; raises a 401/403 problem otherwise."""
    key = current_node().keys.authenticate(_token())
    if key is None:
        raise _unauthorized("the API key is unknown or revoked; ask an admin for a valid key")
    g.api_key = key
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
