"""The node's secrets on disk: signing key, pseudonym key, API keys (hashed).

Every file here is created 0600 in a 0700 directory and is never copied into
the store, the ledger, logs or responses. API keys are shown once, at creation
or rotation; the node keeps only their argon2id hashes (keys made before argon2
were kept as SHA-256 and are re-hashed the first time they are used), so a
copy of the key file does not let anyone call the API.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import argon2
from argon2 import PasswordHasher

from appliance.errors import ApiKeyStateError, KeyFileError, UnknownApiKey
from ledger.checkpoint import NoteSigner

__all__ = [
    "ARGON2_DEFAULTS",
    "ROLES",
    "ApiKey",
    "ApiKeyStore",
    "AuthResult",
    "KeyFileError",
    "Pseudonymizer",
    "SubjectKeySource",
    "read_secret",
    "write_secret",
]

#: Roles of DESIGN.md; an API key maps to exactly one.
ROLES = ("admin", "agent", "supervisor", "analyst", "custodian", "auditor", "ops")
_PREFIX = "apl"
T = TypeVar("T")
log = logging.getLogger("appliance.keys")


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
    """One API key as the node knows it: everything but the secret."""

    key_id: str
    role: str
    label: str
    created: str
    revoked: bool = False
    expires: str | None = None  # RFC 3339 UTC; None: never
    rotated: str | None = None  # when the secret last changed
    grace_until: str | None = None  # the secret before the last rotation works until then
    hash: str = "argon2id"  # how the secret is stored: argon2id, or sha256 (older nodes, upgraded on use)

    @property
    def actor(self) -> str:
        """How this key appears in ledger entries: role and key id, never the secret."""
        return f"{self.role}:{self.key_id}"

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and _epoch(self.expires) <= (time.time() if now is None else now)

    @property
    def state(self) -> str:
        """``active``, ``revoked`` or ``expired``."""
        return "revoked" if self.revoked else "expired" if self.expired() else "active"


@dataclass(frozen=True)
class AuthResult:
    """What a presented token turned out to be; ``reason`` is for logs and counters, never for the client.

    ``key_id`` names the key the token claimed when that key exists (so failures can be attributed);
    ``reason`` is ``ok``, ``malformed``, ``unknown``, ``mismatch``, ``revoked``, ``expired`` or
    ``unverified`` (``check(verify=False)`` when the answer needs the slow hash).
    """

    key: ApiKey | None
    reason: str
    key_id: str | None = None


#: Argon2id cost of new key hashes (OWASP's 19 MiB / 2 passes / 1 lane): ~30 ms per hash on one core.
#: The secrets are 256-bit random, out of reach of guessing however they are hashed; argon2 keeps a
#: copied key file free of anything cheap to test candidates against (defence in depth, and what
#: auditors expect of stored credentials). The cost stays modest because every worker verifies each key
#: once and then caches. The file records the parameters; changing them there re-hashes keys on next use.
ARGON2_DEFAULTS: Mapping[str, int] = {
    "time_cost": 2,
    "memory_cost": 19_456,
    "parallelism": 1,
    "hash_len": 32,
    "salt_len": 16,
}
_ARGON2_BOUNDS = {
    "time_cost": (1, 20),
    "memory_cost": (8, 4_194_304),
    "parallelism": (1, 64),
    "hash_len": (16, 64),
    "salt_len": (8, 64),
}
_FORMAT = "appliance-api-keys/2"
_FORMATS = ("appliance-api-keys/1", _FORMAT)
_TOKEN = re.compile(r"apl_([0-9a-f]{8,32})_([A-Za-z0-9_-]{20,100})")
_MAX_TOKEN = 128
_CACHE_MAX = 10_000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=256)
def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Secret:
    """A stored secret: an argon2id PHC string, or the SHA-256 hex of a key made before argon2."""

    kind: str  # "argon2id" | "sha256"
    value: str

    def matches(self, token: str, hasher: PasswordHasher) -> bool:
        if self.kind == "sha256":
            return hmac.compare_digest(_digest(token), self.value)
        try:
            return hasher.verify(self.value, token)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


@dataclass(frozen=True)
class _Record:
    key: ApiKey
    secret: _Secret
    previous: _Secret | None = None  # the secret before a rotation with a grace period
    previous_until: float = 0.0
    expires_at: float | None = None

    def accepts(self, secret: str, now: float) -> bool:
        """Whether ``secret`` (a stored value a token was verified against) still opens this key."""
        if secret == self.secret.value:
            return True
        return self.previous is not None and secret == self.previous.value and now < self.previous_until

    def state(self, now: float) -> str:
        if self.key.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "ok"


def _record_from(row: Mapping[str, Any]) -> _Record:
    if "hash" in row:
        secret = _Secret("argon2id", str(row["hash"]))
    else:
        secret = _Secret("sha256", str(row["sha256"]))
    previous, until = None, 0.0
    prev = row.get("previous")
    if prev:
        previous = _Secret(prev.get("kind", "argon2id"), str(prev["hash"]))
        until = _epoch(prev["until"])
    expires = row.get("expires")
    key = ApiKey(
        str(row["key_id"]),
        str(row["role"]),
        str(row.get("label", "")),
        str(row["created"]),
        bool(row.get("revoked", False)),
        expires,
        row.get("rotated"),
        prev["until"] if prev else None,
        secret.kind,
    )
    return _Record(key, secret, previous, until, _epoch(expires) if expires else None)


def _row_of(rec: _Record) -> dict[str, Any]:
    k = rec.key
    row: dict[str, Any] = {
        "key_id": k.key_id,
        "role": k.role,
        "label": k.label,
        "created": k.created,
        "revoked": k.revoked,
        "expires": k.expires,
        "rotated": k.rotated,
    }
    row["hash" if rec.secret.kind == "argon2id" else "sha256"] = rec.secret.value
    if rec.previous is not None and k.grace_until is not None:
        row["previous"] = {"kind": rec.previous.kind, "hash": rec.previous.value, "until": k.grace_until}
    return row


@dataclass
class _Doc:
    generation: int
    argon2: dict[str, int]
    records: dict[str, _Record]

    def dump(self) -> bytes:
        doc = {
            "format": _FORMAT,
            "generation": self.generation,
            "argon2": {"type": "argon2id", **self.argon2},
            "keys": [_row_of(r) for r in self.records.values()],
        }
        return (json.dumps(doc, indent=1) + "\n").encode()


def _parse(path: Path, raw: bytes) -> _Doc:
    try:
        data = json.loads(raw)
        if data.get("format") not in _FORMATS:
            raise ValueError(f"format {data.get('format')!r} is not one of {', '.join(_FORMATS)}")
        params = {k: int(v) for k, v in data.get("argon2", {}).items() if k != "type"}
        params = {**ARGON2_DEFAULTS, **params}
        for name, (lo, hi) in _ARGON2_BOUNDS.items():
            if not lo <= params[name] <= hi:
                raise ValueError(f"argon2.{name} = {params[name]} is outside {lo}..{hi}")
        if set(params) - set(ARGON2_DEFAULTS):
            raise ValueError(f"unknown argon2 parameters {sorted(set(params) - set(ARGON2_DEFAULTS))}")
        records = {}
        for row in data["keys"]:
            rec = _record_from(row)
            records[rec.key.key_id] = rec
        return _Doc(int(data.get("generation", 0)), params, records)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path} is not a valid API key file ({exc}); restore it from a backup") from exc


def _hasher(params: Mapping[str, int]) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params["time_cost"],
        memory_cost=params["memory_cost"],
        parallelism=params["parallelism"],
        hash_len=params["hash_len"],
        salt_len=params["salt_len"],
        type=argon2.Type.ID,
    )


class ApiKeyStore:
    """API keys → roles, kept as argon2id hashes in ``keys/api_keys.json`` (0600).

    Tokens read ``apl_<key id>_<secret>``: the id finds the record in O(1), the secret is checked against
    its hash. Verifying argon2 on every request would cap a worker at a few dozen requests a second, so a
    verified token is remembered in a per-process cache keyed by an HMAC of the token under a random
    per-process key (the token itself is never kept); an entry is used only while the key's record in the
    file still holds the same hash and the key is live, so a revocation or rotation written by any process
    (the CLI, another worker) takes effect at the next request: every check stats the file and reloads it
    when it changed. Writers (issue, rotate, revoke, hash upgrades) serialise on an ``flock`` beside the
    file, re-read it under the lock and replace it atomically with a strictly newer mtime.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._sig: tuple[int, int, int] | None = None
        self._doc = _Doc(0, dict(ARGON2_DEFAULTS), {})
        self._hasher_obj = _hasher(ARGON2_DEFAULTS)
        self._cache_key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[str, str]] = {}

    @classmethod
    def create(cls, path: Path) -> ApiKeyStore:
        write_secret(path, _Doc(0, dict(ARGON2_DEFAULTS), {}).dump())
        return cls(path)

    # -- file ------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError as exc:
            raise KeyFileError(f"{self.path} is missing; run `appliance init` or restore it") from exc
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        if sig == self._sig:
            return
        with self._lock:
            if sig == self._sig:
                return
            self._install(_parse(self.path, read_secret(self.path)), sig)

    def _install(self, doc: _Doc, sig: tuple[int, int, int] | None) -> None:
        if doc.argon2 != self._doc.argon2:
            self._hasher_obj = _hasher(doc.argon2)
        self._doc, self._sig = doc, sig

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        fd = os.open(
            self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _mutate(self, change: Callable[[_Doc], T]) -> T:
        """Run ``change`` on a fresh copy of the file under the lock, then write it back atomically.

        If ``change`` raises (a refused operation, a ledger append that failed), nothing is written.
        """
        with self._lock, self._file_lock():
            doc = _parse(self.path, read_secret(self.path))
            result = change(doc)
            doc.generation += 1
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, doc.dump())
                os.fsync(fd)
            finally:
                os.close(fd)
            # Readers notice a change by (inode, mtime, size); two writes inside one coarse clock tick
            # could look alike, so each write gets an mtime strictly after the previous one.
            mtime = max(time.time_ns(), os.stat(self.path).st_mtime_ns + 1)
            os.utime(tmp, ns=(mtime, mtime))
            os.replace(tmp, self.path)
            dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            st = os.stat(self.path)
            self._install(doc, (st.st_ino, st.st_mtime_ns, st.st_size))
            return result

    @property
    def argon2_parameters(self) -> dict[str, int]:
        self._load()
        return dict(self._doc.argon2)

    @property
    def generation(self) -> int:
        """Bumped by every write: a cheap "did the keys change" for callers that cache decisions."""
        self._load()
        return self._doc.generation

    # -- operations --------------------------------------------------------------------------

    def _hash(self, token: str) -> _Secret:
        self._load()
        return _Secret("argon2id", self._hasher_obj.hash(token))

    def issue(
        self,
        role: str,
        label: str = "",
        *,
        expires: datetime | None = None,
        before_write: Callable[[ApiKey], None] | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key for ``role``; returns it and the token, which is not stored.

        ``before_write`` runs under the file lock once the key is decided and before it is written (the
        node appends its ledger entry there): if it raises, no key is created.
        """
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if expires is not None and expires.timestamp() <= time.time():
            raise ApiKeyStateError(
                f"the expiry {expires:%Y-%m-%dT%H:%M:%SZ} is in the past; give a later one"
            )
        key_id = secrets.token_hex(6)
        token = _token(key_id)
        secret = self._hash(token)
        stamp = expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if expires is not None else None
        key = ApiKey(key_id, role, label, _now(), expires=stamp)

        def change(doc: _Doc) -> None:
            if before_write is not None:
                before_write(key)
            doc.records[key_id] = _Record(key, secret, expires_at=_epoch(stamp) if stamp else None)

        self._mutate(change)
        return key, token

    def rotate(
        self,
        key_id: str,
        *,
        grace_seconds: int = 0,
        before_write: Callable[[ApiKey], None] | None = None,
    ) -> tuple[ApiKey, str]:
        """A new secret for the same key id and role; the old one keeps working ``grace_seconds`` more.

        Only the secret before this rotation gets a grace period: rotating again ends the older one's.
        """
        if grace_seconds < 0:
            raise ValueError("the grace period cannot be negative")
        token = _token(key_id)
        secret = self._hash(token)

        def change(doc: _Doc) -> ApiKey:
            rec = self._live(doc, key_id, "rotate")
            now = time.time()
            grace = rec.secret if grace_seconds > 0 else None
            until = now + grace_seconds
            key = replace(
                rec.key,
                rotated=_stamp(now),
                grace_until=_stamp(until) if grace is not None else None,
                hash=secret.kind,
            )
            if before_write is not None:
                before_write(key)
            doc.records[key_id] = replace(
                rec, key=key, secret=secret, previous=grace, previous_until=until if grace else 0.0
            )
            return key

        return self._mutate(change), token

    def revoke(
        self,
        key_id: str,
        *,
        keep_an_admin: bool = False,
        before_write: Callable[[ApiKey], None] | None = None,
    ) -> ApiKey:
        """Revoke a key (for good). ``keep_an_admin`` refuses to revoke the last live admin key."""

        def change(doc: _Doc) -> ApiKey:
            rec = self._live(doc, key_id, "revoke", expired_ok=True)
            now = time.time()
            if keep_an_admin and rec.key.role == "admin":
                others = [
                    r
                    for r in doc.records.values()
                    if r.key.role == "admin" and r.key.key_id != key_id and r.state(now) == "ok"
                ]
                if not others:
                    raise ApiKeyStateError(
                        f"API key {key_id} is the last live admin key; create another admin key first"
                    )
            key = replace(rec.key, revoked=True)
            if before_write is not None:
                before_write(key)
            doc.records[key_id] = replace(rec, key=key, previous=None, previous_until=0.0)
            return key

        return self._mutate(change)

    @staticmethod
    def _live(doc: _Doc, key_id: str, verb: str, *, expired_ok: bool = False) -> _Record:
        rec = doc.records.get(key_id)
        if rec is None:
            raise UnknownApiKey(f"no API key {key_id!r}; see `appliance keys list`")
        state = rec.state(time.time())
        if state == "revoked":
            raise ApiKeyStateError(f"API key {key_id} is revoked already; create a new key instead")
        if state == "expired" and not expired_ok:
            raise ApiKeyStateError(
                f"API key {key_id} has expired; create a new key instead of trying to {verb} it"
            )
        return rec

    def list(self) -> list[ApiKey]:
        self._load()
        return [r.key for r in self._doc.records.values()]

    def get(self, key_id: str) -> ApiKey:
        self._load()
        rec = self._doc.records.get(key_id)
        if rec is None:
            raise UnknownApiKey(f"no API key {key_id!r}; see `appliance keys list`")
        return rec.key

    # -- authentication ----------------------------------------------------------------------
    def authenticate(self, token: str) -> ApiKey | None:
        """The live key a token belongs to, or None (unknown, malformed, revoked or expired)."""
        return self.check(token).key

    def check(self, token: str, *, verify: bool = True) -> AuthResult:
        """Authenticate ``token``; with ``verify=False`` answer only what needs no slow hash.

        Cost: a stat, an HMAC and a dict lookup when the token was verified before in this process;
        one argon2 verification (~30 ms) otherwise. Unknown key ids are refused without hashing: ids are
        not secret (they appear in the ledger), so a timing difference reveals nothing a guesser lacks.
        """
        m = _TOKEN.fullmatch(token) if isinstance(token, str) and len(token) <= _MAX_TOKEN else None
        if m is None:
            return AuthResult(None, "malformed")
        key_id = m.group(1)
        self._load()
        rec = self._doc.records.get(key_id)
        if rec is None:
            return AuthResult(None, "unknown")
        now = time.time()
        mac = hmac.digest(self._cache_key, token.encode(), "sha256")
        hit = self._cache.get(mac)
        if hit is not None and hit[0] == key_id and rec.accepts(hit[1], now):
            state = rec.state(now)
            return AuthResult(rec.key if state == "ok" else None, state, key_id)
        if not verify:
            return AuthResult(None, "unverified", key_id)
        hasher = self._hasher_obj
        if rec.secret.matches(token, hasher):
            matched = rec.secret
        elif rec.previous is not None and now < rec.previous_until and rec.previous.matches(token, hasher):
            matched = rec.previous
        else:
            return AuthResult(None, "mismatch", key_id)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[mac] = (key_id, matched.value)
        state = rec.state(now)
        if state != "ok":
            return AuthResult(None, state, key_id)
        if matched is rec.secret and (matched.kind != "argon2id" or hasher.check_needs_rehash(matched.value)):
            self._upgrade(key_id, matched, token, mac)
        return AuthResult(rec.key, "ok", key_id)

    def _upgrade(self, key_id: str, old: _Secret, token: str, mac: bytes) -> None:
        """Re-hash a key stored as SHA-256 (or with old argon2 parameters) now that its token is at hand."""
        try:
            new = self._hash(token)

            def change(doc: _Doc) -> bool:
                rec = doc.records.get(key_id)
                if rec is None or rec.secret != old:  # rotated or re-hashed meanwhile
                    return False
                doc.records[key_id] = replace(rec, key=replace(rec.key, hash=new.kind), secret=new)
                return True

            if self._mutate(change):
                self._cache[mac] = (key_id, new.value)
                log.info("API key %s: secret re-hashed with argon2id", key_id)
        except (OSError, KeyFileError) as exc:
            # A read-only data dir (or a file gone bad) must not fail the request that authenticated.
            log.warning(
                "API key %s: could not re-hash its secret (%s); retried when next verified", key_id, exc
            )


def _token(key_id: str) -> str:
    return f"{_PREFIX}_{key_id}_{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"


class SubjectKeySource(Protocol):
    """Where per-subject keys come from (the store's ``subjects``): id → key, unknown ids left out."""

    def keys(self, customer_ids: Iterable[int], *, create: bool = True) -> Mapping[int, bytes]: ...


class Pseudonymizer:
    """Keyed pseudonyms (HMAC-SHA-256) for subjects: stable per node, unlinkable without the keys.

    A customer (kind ``cust``) is pseudonymised as HMAC(node key, kind ‖ id ‖ subject key), the
    subject key being that customer's own key in the store: erasing the subject key (crypto-shredding)
    leaves their pseudonym in the ledger with nothing that can recompute it from the id. Other kinds
    (``value``, ``text``) are HMAC(node key, kind ‖ value) as before.
    """

    #: Kinds whose values are store customer ids, pseudonymised with the subject's key.
    SUBJECT_KINDS = frozenset({"cust"})

    def __init__(self, key: bytes, subjects: SubjectKeySource | None = None) -> None:
        if len(key) < 32:
            raise KeyFileError("the pseudonym key must be at least 32 bytes")
        self._key = key
        self._subjects = subjects

    def with_subjects(self, subjects: SubjectKeySource) -> Pseudonymizer:
        """The same node key, with customers' subject keys from ``subjects``."""
        return Pseudonymizer(self._key, subjects)

    def _mac(self, kind: str, value: str, subject_key: bytes = b"") -> str:
        data = f"{kind}\x00{value}".encode()
        if subject_key:
            data += b"\x00" + subject_key
        return f"{kind}:{hmac.new(self._key, data, hashlib.sha256).hexdigest()[:32]}"

    def pseudonym(self, kind: str, value: str) -> str:
        """``kind:hex`` for one identifier, e.g. ``cust:9f2c...`` for a customer id.

        A customer that does not exist (never did, or was erased) raises the store's UnknownSubject.
        """
        if kind in self.SUBJECT_KINDS:
            return self.pseudonyms(kind, [value])[0]
        return self._mac(kind, value)

    def pseudonyms(self, kind: str, values: Sequence[str]) -> list[str]:
        """The bulk form: one store read for many customers (a playbook run's thousands of triggers)."""
        if kind not in self.SUBJECT_KINDS:
            return [self._mac(kind, v) for v in values]
        if self._subjects is None:
            raise KeyFileError(f"{kind} pseudonyms need the store's subject keys; open the node first")
        from appliance.store.errors import UnknownSubject

        ids = []
        for v in values:
            text = str(v)
            if not (text.isdecimal() and text.isascii()):
                raise UnknownSubject(text)
            ids.append(int(text))
        keys = self._subjects.keys(ids)
        out = []
        for cid in ids:
            key = keys.get(cid)
            if key is None:
                raise UnknownSubject(cid)
            out.append(self._mac(kind, str(cid), key))
        return out

    def subject_pseudonym(self, kind: str, customer_id: int, subject_key: bytes) -> str:
        """The pseudonym from a subject key in hand (the erasure computes it inside its transaction)."""
        return self._mac(kind, str(int(customer_id)), subject_key)


def load_signer(path: Path, name: str) -> NoteSigner:
    """The node's Ed25519 checkpoint key (C2SP signer-key text in a 0600 file)."""
    signer = NoteSigner.from_skey(read_secret(path).decode("ascii").strip())
    if signer.name != name:
        raise KeyFileError(f"{path} is the key of {signer.name!r}, not of this node's ledger {name!r}")
    return signer
