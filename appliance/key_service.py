"""API key administration with its audit trail: create, rotate, revoke, list.

The CLI (``appliance keys ...``) and the admin HTTP routes both come here, so both record the same
ledger entries: ``apikey.created``, ``apikey.rotated`` and ``apikey.revoked``, with the key id and role
and never the secret. Each entry is appended under the key file's lock *before* the file is rewritten:
if the append fails nothing changes, so there is no key change the ledger does not know about.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from appliance.keys import ApiKey

if TYPE_CHECKING:
    from appliance.node import Node

__all__ = ["ApiKeyService", "KeyChange", "parse_duration"]

_DURATION = re.compile(r"\s*(\d{1,9})\s*([smhdw]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
#: Longest expiry or grace period accepted: ten years.
MAX_SECONDS = 10 * 365 * 86_400


def parse_duration(text: str) -> timedelta:
    """``90`` (seconds), ``15m``, ``12h``, ``30d``, ``2w`` → a timedelta; ValueError says what is accepted."""
    m = _DURATION.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. 3600, 90s, 15m, 12h, 30d or 2w")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than ten years")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class KeyChange:
    """A key after a change, the ledger entry that records it, and (create, rotate) the new token:
    the only moment the token exists outside the client."""

    key: ApiKey
    ledger_seq: int
    token: str | None = None


class ApiKeyService:
    """Key administration on one node; every change is a ledger entry."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._store = node.keys

    def keys(self) -> list[ApiKey]:
        return self._store.list()

    def get(self, key_id: str) -> ApiKey:
        return self._store.get(key_id)

    def _recorder(
        self, seqs: list[int], action: str, actor: str, request_id: str | None, **extra: Any
    ) -> Callable[[ApiKey], None]:
        def record(key: ApiKey) -> None:
            details = {"key_id": key.key_id, "role": key.role, **extra}
            seqs.append(self._node.record(actor, action, details=details, request_id=request_id).seq)

        return record

    def create(
        self,
        role: str,
        *,
        actor: str,
        label: str = "",
        expires_in: timedelta | None = None,
        request_id: str | None = None,
    ) -> KeyChange:
        expires = datetime.now(UTC) + expires_in if expires_in is not None else None
        stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires is not None else None
        seqs: list[int] = []
        key, token = self._store.issue(
            role,
            label,
            expires=expires,
            before_write=self._recorder(seqs, "apikey.created", actor, request_id, expires=stamp),
        )
        return KeyChange(key, seqs[-1], token)

    def rotate(
        self, key_id: str, *, actor: str, grace: timedelta = timedelta(0), request_id: str | None = None
    ) -> KeyChange:
        seconds = int(grace.total_seconds())
        seqs: list[int] = []
        key, token = self._store.rotate(
            key_id,
            grace_seconds=seconds,
            before_write=self._recorder(seqs, "apikey.rotated", actor, request_id, grace_seconds=seconds),
        )
        return KeyChange(key, seqs[-1], token)

    def revoke(
        self, key_id: str, *, actor: str, keep_an_admin: bool = True, request_id: str | None = None
    ) -> KeyChange:
        """Revoke; by default refuses the last live admin key (over HTTP that would lock admins out)."""
        seqs: list[int] = []
        key = self._store.revoke(
            key_id,
            keep_an_admin=keep_an_admin,
            before_write=self._recorder(seqs, "apikey.revoked", actor, request_id),
        )
        return KeyChange(key, seqs[-1])
