"""Console sessions, kept on the server: the browser holds only a signed, random session id.

A session names the API key that signed in (its id and role), never the token, so a stolen cookie
is worth one session and a stolen session file is worth nothing without the cookie (files are named
by the SHA-256 of the id). Keeping sessions in files under the data directory lets every gunicorn
worker see a sign-in and a sign-out at once, and lets sign-out really end a session rather than
trusting the browser to forget a cookie. Sessions end after ``idle`` seconds without a request and
``lifetime`` seconds after sign-in, whichever comes first.

The cookie is ``<id>.<hmac>``: the MAC (HMAC-SHA-256 under the console key) lets a forged or
truncated cookie be refused without touching the disk. Every session carries its own CSRF token
(a synchronizer token, compared in constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from appliance.keys import read_secret, write_secret
from appliance.server.console.errors import SessionExpired

__all__ = ["ConsoleSession", "SessionStore", "console_key"]

_COOKIE = re.compile(r"([A-Za-z0-9_-]{43})\.([0-9a-f]{64})")
_NAME = re.compile(r"[0-9a-f]{64}\.json")
#: A request refreshes ``last_seen`` on disk at most this often (one write per page view is plenty).
_TOUCH_SECONDS = 10.0


def console_key(path: Path) -> bytes:
    """The console's MAC key (32 random bytes, 0600), made by the first worker that needs it."""
    if not path.exists():
        try:
            write_secret(path, secrets.token_bytes(32))
        except FileExistsError:  # another worker made it first
            pass
    return read_secret(path)


@dataclass(frozen=True)
class ConsoleSession:
    """One signed-in browser. ``notice`` is a one-shot message for the next page (post/redirect/get)."""

    name: str  # file name: SHA-256 of the session id
    key_id: str
    role: str
    created: float
    last_seen: float
    csrf: str
    lang: str
    notice: str | None = None
    notice_kind: str = "ok"

    def _record(self) -> dict[str, Any]:
        record = asdict(self)
        del record["name"]
        return record


class SessionStore:
    """Sessions as small JSON files (0600) in one directory (0700)."""

    def __init__(self, directory: Path, secret: bytes, *, idle: float, lifetime: float) -> None:
        if len(secret) < 32:
            raise ValueError("the console key must be at least 32 bytes")
        self.directory = directory
        self._secret = secret
        self.idle = idle
        self.lifetime = lifetime
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- cookies and tokens ------------------------------------------------------------------
    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def signin_token(self, nonce: str) -> str:
        """The CSRF token of the sign-in form, bound to the browser's pre-session nonce cookie."""
        return self._mac("signin", nonce)

    def check_signin_token(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.signin_token(nonce).encode(), token.encode("utf-8", "replace"))

    @staticmethod
    def check_csrf(session: ConsoleSession, token: str | None) -> bool:
        """The synchronizer token check: constant time, and a missing token never matches."""
        if not token:
            return False
        return hmac.compare_digest(session.csrf.encode(), token.encode("utf-8", "replace"))

    def _path(self, name: str) -> Path:
        return self.directory / name

    # -- lifecycle -----------------------------------------------------------------------------
    def create(
        self, key_id: str, role: str, lang: str, *, now: float | None = None
    ) -> tuple[str, ConsoleSession]:
        """A new session for a key that just signed in; returns the cookie value and the session."""
        now = time.time() if now is None else now
        sid = secrets.token_urlsafe(32)
        name = hashlib.sha256(sid.encode()).hexdigest() + ".json"
        session = ConsoleSession(name, key_id, role, now, now, secrets.token_urlsafe(32), lang)
        self._write(session, exclusive=True)
        return f"{sid}.{self._mac('session', sid)}", session

    def load(self, cookie: str | None, *, now: float | None = None) -> ConsoleSession | None:
        """The live session a cookie names; None for no cookie or a forged one.

        Raises :class:`SessionExpired` for a genuine cookie whose session timed out or ended
        (signed out, key revoked), so the sign-in page can say why it is shown.
        """
        if not cookie:
            return None
        m = _COOKIE.fullmatch(cookie)
        if m is None or not hmac.compare_digest(self._mac("session", m[1]), m[2]):
            return None
        name = hashlib.sha256(m[1].encode()).hexdigest() + ".json"
        try:
            record = json.loads(self._path(name).read_text(encoding="utf-8"))
            session = ConsoleSession(name=name, **record)
        except FileNotFoundError:
            raise SessionExpired("ended") from None
        except (OSError, ValueError, TypeError):
            self._path(name).unlink(missing_ok=True)
            raise SessionExpired("ended") from None
        now = time.time() if now is None else now
        if now - session.last_seen > self.idle or now - session.created > self.lifetime:
            self.delete(session)
            raise SessionExpired("expired")
        if now - session.last_seen >= _TOUCH_SECONDS:
            session = replace(session, last_seen=now)
            self._write(session)
        return session

    def update(self, session: ConsoleSession, **changes: Any) -> ConsoleSession:
        session = replace(session, **changes)
        self._write(session)
        return session

    def delete(self, session: ConsoleSession) -> None:
        self._path(session.name).unlink(missing_ok=True)

    def end_sessions_of(self, key_id: str, *, keep: ConsoleSession | None = None) -> int:
        """End every session of one key (revoked or rotated) but ``keep``; returns how many ended."""
        ended = 0
        for path in self.directory.iterdir():
            if not _NAME.fullmatch(path.name) or (keep is not None and path.name == keep.name):
                continue
            try:
                if json.loads(path.read_text(encoding="utf-8")).get("key_id") == key_id:
                    path.unlink(missing_ok=True)
                    ended += 1
            except (OSError, ValueError):
                continue
        return ended

    def sweep(self, *, now: float | None = None) -> int:
        """Delete the files of timed-out sessions (browsers that never came back); returns how many."""
        now = time.time() if now is None else now
        removed = 0
        for path in self.directory.iterdir():
            if not _NAME.fullmatch(path.name):
                continue
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                stale = now - record["last_seen"] > self.idle or now - record["created"] > self.lifetime
            except (OSError, ValueError, KeyError, TypeError):
                stale = True
            if stale:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _write(self, session: ConsoleSession, *, exclusive: bool = False) -> None:
        path = self._path(session.name)
        data = json.dumps(session._record(), sort_keys=True).encode()
        if exclusive:
            write_secret(path, data)
            return
        if not path.exists():  # ended meanwhile (signed out in another tab): do not bring it back
            return
        tmp = path.with_name(f".{session.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
