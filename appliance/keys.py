"""The node's secrets on disk: signing key, pseudonym key, API keys (hashed).

Every file here is created 0600 in a 0700 directory and is never copied into
the store, the ledger, logs or responses. API keys are shown once, at creation;
the node keeps only their SHA-256 (they are 256-bit random tokens, so a slow
password hash buys nothing) and compares in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.errors import KeyFileError
from ledger.checkpoint import NoteSigner

__all__ = [
    "ROLES",
    "ApiKey",
    "ApiKeyStore",
    "KeyFileError",
    "Pseudonymizer",
    "read_secret",
    "write_secret",
]

#: Roles of DESIGN.md; an API key maps to exactly one.
ROLES = ("admin", "agent", "supervisor", "analyst", "custodian", "auditor", "ops")
_PREFIX = "apl"


def write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 atomically; refuses to overwrite an existing secret."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret(path: Path) -> bytes:
    """Read a secret, refusing one that others can read (as ssh does)."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"{path} is missing; run `appliance init` (or restore the key from backup)"
        ) from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); run chmod 600 {path}"
        )
    return path.read_bytes()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    label: str
    created: str
    revoked: bool = False

    @property
    def actor(self) -> str:
        """How this key appears in ledger entries: role and key id, never the secret."""
        return f"{self.role}:{self.key_id}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiKeyStore:
    """API keys → roles, kept hashed in ``keys/api_keys.json`` (0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._keys: dict[str, tuple[ApiKey, str]] = {}

    @classmethod
    def create(cls, path: Path) -> ApiKeyStore:
        write_secret(path, b'{"format": "appliance-api-keys/1", "keys": []}\n')
        return cls(path)

    def _load(self) -> None:
        mtime = self.path.stat().st_mtime_ns
        if mtime == self._mtime:
            return
        data = json.loads(read_secret(self.path))
        keys = {}
        for k in data["keys"]:
            key = ApiKey(k["key_id"], k["role"], k.get("label", ""), k["created"], k.get("revoked", False))
            keys[key.key_id] = (key, k["sha256"])
        self._keys, self._mtime = keys, mtime

    def _save(self) -> None:
        rows = [
            {
                "key_id": k.key_id,
                "role": k.role,
                "label": k.label,
                "created": k.created,
                "revoked": k.revoked,
                "sha256": digest,
            }
            for k, digest in self._keys.values()
        ]
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, json.dumps({"format": "appliance-api-keys/1", "keys": rows}, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._mtime = None

    def issue(self, role: str, label: str = "") -> tuple[ApiKey, str]:
        """Create a key for ``role``; returns it and the token, which is not stored."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        key_id = secrets.token_hex(6)
        token = f"{_PREFIX}_{key_id}_{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"
        key = ApiKey(key_id, role, label, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        with self._lock:
            self._load()
            self._keys[key_id] = (key, _digest(token))
            self._save()
        return key, token

    def revoke(self, key_id: str) -> ApiKey:
        with self._lock:
            self._load()
            if key_id not in self._keys:
                raise KeyError(f"no API key {key_id!r}")
            key, digest = self._keys[key_id]
            key = ApiKey(key.key_id, key.role, key.label, key.created, True)
            self._keys[key_id] = (key, digest)
            self._save()
            return key

    def list(self) -> list[ApiKey]:
        with self._lock:
            self._load()
            return [k for k, _ in self._keys.values()]

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key a token belongs to, or None (unknown, malformed or revoked)."""
        parts = token.split("_", 2) if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != _PREFIX or len(token) > 128:
            return None
        with self._lock:
            self._load()
            found = self._keys.get(parts[1])
        if found is None:
            hmac.compare_digest(_digest(token), _digest(""))  # same work either way
            return None
        key, digest = found
        if not hmac.compare_digest(_digest(token), digest) or key.revoked:
            return None
        return key


class Pseudonymizer:
    """Keyed pseudonyms (HMAC-SHA-256) for subjects: stable per node, unlinkable without the key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise KeyFileError("the pseudonym key must be at least 32 bytes")
        self._key = key

    def pseudonym(self, kind: str, value: str) -> str:
        """``kind:hex`` for one identifier, e.g. ``cust:9f2c...`` for a customer id."""
        mac = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{mac[:32]}"


def load_signer(path: Path, name: str) -> NoteSigner:
    """The node's Ed25519 checkpoint key (C2SP signer-key text in a 0600 file)."""
    signer = NoteSigner.from_skey(read_secret(path).decode("ascii").strip())
    if signer.name != name:
        raise KeyFileError(f"{path} is the key of {signer.name!r}, not of this node's ledger {name!r}")
    return signer
