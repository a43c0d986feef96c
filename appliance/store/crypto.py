"""Field encryption: AES-256-GCM with keys from a 0600 keyring file, bound to where a value lives.

A sealed value is ``nonce (12 random bytes) ‖ ciphertext ‖ tag``; the id of the key
that sealed it is stored beside it (``key_id`` column), so keys can rotate while
old rows still open. The associated data names the table, the column and the row,
so a ciphertext copied to another customer, another field or another message fails
authentication instead of showing one customer's secret on another's record.

Random 96-bit nonces are safe for about 2**32 encryptions per key (NIST SP 800-38D);
rotation (``appliance store rotate-keys``) starts a fresh key long before that.

Every failure to open a value raises the same opaque :class:`FieldKeyError`: whether
the key was missing, the tag wrong or the row moved is not for a caller to learn.

A customer's values are sealed under a data key that needs BOTH the field key and the customer's
own subject key: HKDF-SHA-256 with the field key as salt and the subject key as input. The subject
key (32 random bytes) is stored wrapped by a field key (:meth:`FieldCipher.wrap`); deleting it
(erasure) leaves every copy of the customer's ciphertexts, backups included, unopenable, while a
rotation of the field keys still renews every data key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.errors import KeyFileError
from appliance.keys import read_secret, write_secret
from appliance.store.errors import FieldKeyError

__all__ = [
    "SUBJECT_KEY_BYTES",
    "CipherMemo",
    "FieldCipher",
    "FieldKey",
    "Keyring",
    "Sealed",
    "associated_data",
]

#: Length of a subject key (random, one per customer).
SUBJECT_KEY_BYTES = 32
#: HKDF label of the per-subject data keys; a new label is a new derivation, never reuse one.
_SUBJECT_INFO = b"appliance/store/v1/subject-data-key"

_FORMAT = "appliance-field-keys/1"
_NONCE = 12
_OPAQUE = (
    "a protected value could not be decrypted: its field key is missing or the stored ciphertext was "
    "altered or moved; restore keys/field.keys or the row from a backup"
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def associated_data(table: str, column: str, row: str | int) -> bytes:
    """What a ciphertext is bound to: the table, the column and the row it was written for."""
    return f"appliance-field/1\x00{table}\x00{column}\x00{row}".encode()


@dataclass(frozen=True)
class FieldKey:
    """A field key's metadata and (unless retired) its material; ``repr`` never shows the material."""

    key_id: str
    status: str  # active | previous | retired
    created: str
    retired: str | None = None
    material: bytes | None = None

    def __repr__(self) -> str:
        return f"FieldKey({self.key_id!r}, {self.status!r})"


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes


class Keyring:
    """The field keys of one store, kept in one 0600 JSON file; updates replace the file atomically.

    Exactly one key is ``active`` (new values are sealed with it). ``previous``
    keys still open values during a rotation; ``retired`` keys have had their
    material destroyed once no row used them any more.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self._keys: dict[str, FieldKey] = {}
        self._active = ""
        self._load()

    # -- file ---------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path) -> Keyring:
        """A new keyring with one active key; refuses to replace an existing one."""
        path = Path(path)
        key = FieldKey(_new_id(), "active", _now(), None, AESGCM.generate_key(bit_length=256))
        try:
            write_secret(path, _dump(key.key_id, [key]))
        except FileExistsError as exc:
            raise FieldKeyError(
                f"{path} already holds a keyring; open the store instead, or move the file away first"
            ) from exc
        return cls(path)

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError as exc:
            raise FieldKeyError(
                f"field keyring {self.path} is missing; restore it from backup (without it the store's "
                "sensitive fields cannot be read)"
            ) from exc
        if mtime == self._mtime:
            return
        try:
            data = json.loads(read_secret(self.path))
            if data.get("format") != _FORMAT:
                raise ValueError(f"format is not {_FORMAT}")
            keys = {}
            for k in data["keys"]:
                material = base64.b64decode(k["key"], validate=True) if k.get("key") else None
                if material is not None and len(material) != 32:
                    raise ValueError(f"key {k['id']} is not 256 bits")
                keys[k["id"]] = FieldKey(k["id"], k["status"], k["created"], k.get("retired"), material)
            active = data["active"]
            if active not in keys or keys[active].material is None:
                raise ValueError("the active key is absent")
        except KeyFileError as exc:
            raise FieldKeyError(str(exc)) from exc
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise FieldKeyError(
                f"field keyring {self.path} is damaged ({exc}); restore it from backup"
            ) from None
        self._keys, self._active, self._mtime = keys, active, mtime

    def _save(self, active: str, keys: list[FieldKey]) -> None:
        """Write-temp-then-rename so a crash leaves either the old or the new keyring, never half."""
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        write_secret(tmp, _dump(active, keys))
        try:
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self._mtime = None
        self._load()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One writer at a time across processes (two admins rotating at once)."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._lock:
                self._mtime = None
                self._load()
                yield
        finally:
            os.close(fd)

    # -- queries --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Pick up a keyring another process rotated (cheap: one stat when nothing changed)."""
        with self._lock:
            self._load()

    @property
    def active_id(self) -> str:
        return self._active

    def keys(self) -> list[FieldKey]:
        return list(self._keys.values())

    def material(self, key_id: str) -> bytes | None:
        k = self._keys.get(key_id)
        return k.material if k else None

    # -- changes ------------------------------------------------------------------------------------
    def add_active(self) -> FieldKey:
        """Start a rotation: a new active key; the old active one becomes ``previous`` (still opens)."""
        with self._exclusive():
            new = FieldKey(_new_id(), "active", _now(), None, AESGCM.generate_key(bit_length=256))
            keys = [
                FieldKey(k.key_id, "previous", k.created, None, k.material) if k.status == "active" else k
                for k in self._keys.values()
            ]
            self._save(new.key_id, [*keys, new])
            return new

    def retire(self, key_ids: list[str]) -> None:
        """Destroy the material of keys no row uses any more (the caller has checked that)."""
        with self._exclusive():
            if self._active in key_ids:
                raise FieldKeyError(f"refusing to retire the active key {self._active}; rotate first")
            now = _now()
            keys = [
                FieldKey(k.key_id, "retired", k.created, now, None) if k.key_id in key_ids else k
                for k in self._keys.values()
            ]
            self._save(self._active, keys)


def _new_id() -> str:
    return "fk_" + secrets.token_hex(6)


def _dump(active: str, keys: list[FieldKey]) -> bytes:
    rows = []
    for k in keys:
        row: dict[str, object] = {"id": k.key_id, "status": k.status, "created": k.created}
        if k.retired:
            row["retired"] = k.retired
        if k.material is not None:
            row["key"] = base64.b64encode(k.material).decode("ascii")
        rows.append(row)
    return (json.dumps({"format": _FORMAT, "active": active, "keys": rows}, indent=1) + "\n").encode()


#: Ciphers derived during one read, by (field key id, subject key); see :meth:`FieldCipher.decrypt`.
CipherMemo = dict[tuple[str, bytes | None], "AESGCM | None"]


class FieldCipher:
    """Seal and open field values with the keyring's keys; the only code that touches key material."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._aead: dict[str, AESGCM] = {}

    def _material(self, key_id: str) -> bytes | None:
        material = self.keyring.material(key_id)
        if material is None:
            self.keyring.refresh()  # another process may have rotated
            material = self.keyring.material(key_id)
        return material

    def _cipher(self, key_id: str, subject_key: bytes | None = None) -> AESGCM | None:
        if subject_key is not None:
            material = self._material(key_id)
            if material is None or len(subject_key) != SUBJECT_KEY_BYTES:
                return None
            data_key = HKDF(hashes.SHA256(), 32, salt=material, info=_SUBJECT_INFO).derive(subject_key)
            return AESGCM(data_key)
        aead = self._aead.get(key_id)
        if aead is None:
            material = self._material(key_id)
            if material is None:
                return None
            aead = self._aead[key_id] = AESGCM(material)
        return aead

    @property
    def active_id(self) -> str:
        return self.keyring.active_id

    def _seal(self, data: bytes, aad: bytes, subject_key: bytes | None) -> Sealed:
        key_id = self.keyring.active_id
        aead = self._cipher(key_id, subject_key)
        if aead is None:  # the keyring refuses to load without active material: a bad subject key
            raise FieldKeyError(f"a subject key is {SUBJECT_KEY_BYTES} bytes; nothing was sealed")
        nonce = os.urandom(_NONCE)
        return Sealed(key_id, nonce + aead.encrypt(nonce, data, aad))

    def _open(
        self, key_id: str, blob: bytes, aad: bytes, subject_key: bytes | None, memo: CipherMemo | None = None
    ) -> bytes:
        if not isinstance(key_id, str):
            aead = None
        elif memo is None:
            aead = self._cipher(key_id, subject_key)
        else:
            try:
                aead = memo[key_id, subject_key]
            except KeyError:
                aead = memo[key_id, subject_key] = self._cipher(key_id, subject_key)
        if aead is None or not isinstance(blob, bytes | bytearray | memoryview) or len(blob) < _NONCE + 16:
            raise FieldKeyError(_OPAQUE)
        blob = bytes(blob)
        try:
            return aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag:
            raise FieldKeyError(_OPAQUE) from None

    def encrypt(self, plaintext: str, aad: bytes, subject_key: bytes | None = None) -> Sealed:
        """Seal under the active field key, and under the subject's key too when one is given."""
        return self._seal(plaintext.encode("utf-8"), aad, subject_key)

    def decrypt(
        self,
        key_id: str,
        blob: bytes,
        aad: bytes,
        subject_key: bytes | None = None,
        memo: CipherMemo | None = None,
    ) -> str:
        """Open a value sealed by :meth:`encrypt` (with the same subject key, or none).

        ``memo``: a dict the caller keeps for the values of one read, so that a customer's data key
        is derived (HKDF) once for all their fields rather than once per value. It holds derived keys:
        keep it no longer than the read (an erasure must leave nothing behind in memory).
        """
        try:
            return self._open(key_id, blob, aad, subject_key, memo).decode("utf-8")
        except UnicodeDecodeError:
            raise FieldKeyError(_OPAQUE) from None

    def wrap(self, subject_key: bytes, customer_id: int) -> Sealed:
        """A subject key sealed under the active field key, bound to its customer's row."""
        if len(subject_key) != SUBJECT_KEY_BYTES:
            raise FieldKeyError(f"a subject key is {SUBJECT_KEY_BYTES} bytes; nothing was sealed")
        return self._seal(subject_key, associated_data("subject_keys", "key", customer_id), None)

    def unwrap(self, key_id: str, blob: bytes, customer_id: int) -> bytes:
        key = self._open(key_id, blob, associated_data("subject_keys", "key", customer_id), None)
        if len(key) != SUBJECT_KEY_BYTES:
            raise FieldKeyError(_OPAQUE)
        return key

    def forget_retired(self) -> None:
        """Drop cached ciphers whose keys were retired, so their material leaves memory too."""
        for key_id in list(self._aead):
            if self.keyring.material(key_id) is None:
                del self._aead[key_id]
