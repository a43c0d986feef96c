"""Signed tree heads as C2SP checkpoints (c2sp.org/tlog-checkpoint on c2sp.org/signed-note).

A checkpoint is a signed note whose text is the log's origin, tree size and
base64 root hash, plus one extension line ``timestamp <ms>`` so the signature
also covers when the head was issued. Using the C2SP format, byte for byte as
``golang.org/x/mod/sumdb/note`` writes it, means witnesses and monitors built
for Go's sumdb, Sigstore or Trillian can check our heads without our code, and
cosignatures need no new format: a witness appends one more signature line.

Parsing is strict where the reference is lax, so that no two texts verify as
the same checkpoint: base64 must be canonical (no stray trailing bits), the
tree size has no leading zeros, and a key may sign a note only once.

Only the standard library and ``cryptography`` are imported: the offline
auditor (``appliance-verify``) must install with nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import CheckpointInvalid

__all__ = [
    "Checkpoint",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "SignedCheckpoint",
    "add_cosignature",
    "load_verifier",
    "parse_checkpoint",
    "sign_checkpoint",
    "verify_checkpoint",
]

_ALG_ED25519 = b"\x01"
_SIG_PREFIX = "\u2014 "  # em dash, space
_MAX_SIGNATURES = 100  # the reference's limit; the spec requires accepting at least 16
_MAX_UINT64 = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _one_line(text: object) -> bool:
    """Non-empty text that can sit on one line of a note (no controls, encodable as UTF-8)."""
    if not isinstance(text, str) or not text or "\n" in text or _CONTROL.search(text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_name(name: object) -> str:
    if not (isinstance(name, str) and _one_line(name) and _valid_name(name)):
        raise CheckpointInvalid(
            f"key name {name!r} must be non-empty, without spaces, '+' or control characters"
        )
    return name


def _key_hash(name: str, public_key: Ed25519PublicKey, alg: bytes = _ALG_ED25519) -> bytes:
    """Signed-note key id: SHA-256(name ‖ LF ‖ type ‖ key)[:4]; type 0x01 for notes, 0x04 for cosignatures."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + alg + raw).digest()[:4]


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64: only the canonical encoding of a byte string is accepted."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _sig_line(name: str, key_hash: bytes, signature: bytes) -> str:
    return f"{_SIG_PREFIX}{name} {base64.b64encode(key_hash + signature).decode('ascii')}"


class NoteSigner:
    """An Ed25519 key that signs notes under a key name (for a log: its origin)."""

    __slots__ = ("_key", "key_hash", "name", "public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise CheckpointInvalid(f"note keys are Ed25519; got {type(private_key).__name__}")
        self.name = _check_name(name)
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_hash = _key_hash(self.name, self.public_key)

    def __repr__(self) -> str:
        return f"NoteSigner({self.name!r}, key_hash={self.key_hash.hex()})"

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, seed: bytes) -> NoteSigner:
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
            raise CheckpointInvalid("an Ed25519 private key seed is exactly 32 bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def from_skey(cls, text: str) -> NoteSigner:
        """Load a Go ``note`` signer key ``PRIVATE+KEY+<name>+<id>+<base64(0x01||seed)>``."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _KEY_ID.fullmatch(parts[3]):
            raise CheckpointInvalid(
                "signer key must look like 'PRIVATE+KEY+<name>+<8 hex key id>+<base64 key>'"
            )
        raw = _b64decode(parts[4])
        if raw is None or len(raw) != 33 or raw[:1] != _ALG_ED25519:
            raise CheckpointInvalid(
                "signer key: the key part must be base64 of 0x01 and a 32-byte Ed25519 seed"
            )
        signer = cls.from_private_bytes(parts[2], raw[1:])
        if signer.key_hash != bytes.fromhex(parts[3]):
            raise CheckpointInvalid(
                f"signer key for {signer.name!r}: key id {parts[3]} does not match the key"
            )
        return signer

    def private_bytes(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    def skey(self) -> str:
        """The Go ``note`` signer key string; secret, like :meth:`private_bytes`."""
        key = base64.b64encode(_ALG_ED25519 + self.private_bytes()).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_hash.hex()}+{key}"

    def vkey(self) -> str:
        return NoteVerifier(self.name, self.public_key).vkey()

    def sign(self, body: bytes) -> str:
        """Signature line for ``body`` (the whole note text, final newline included)."""
        if not body.endswith(b"\n"):
            raise CheckpointInvalid("note text must end with a newline before it is signed")
        return _sig_line(self.name, self.key_hash, self._key.sign(bytes(body)))


class NoteVerifier:
    """A trusted Ed25519 public key and the key name its signatures carry."""

    __slots__ = ("key_hash", "name", "public_key")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not isinstance(public_key, Ed25519PublicKey):
            raise CheckpointInvalid(f"note keys are Ed25519; got {type(public_key).__name__}")
        self.name = _check_name(name)
        self.public_key = public_key
        self.key_hash = _key_hash(self.name, public_key)

    def __repr__(self) -> str:
        return f"NoteVerifier({self.name!r}, key_hash={self.key_hash.hex()})"

    @classmethod
    def from_vkey(cls, text: str) -> NoteVerifier:
        """Load a C2SP verifier key ``<name>+<8 hex key id>+<base64(0x01||public key)>``."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not _KEY_ID.fullmatch(parts[1]):
            raise CheckpointInvalid("verifier key must look like '<name>+<8 hex key id>+<base64 key>'")
        name, key_id, key64 = parts
        raw = _b64decode(key64)
        if raw is None or not raw:
            raise CheckpointInvalid(f"verifier key for {name!r}: the key part is not canonical base64")
        if raw[:1] != _ALG_ED25519:
            raise CheckpointInvalid(
                f"verifier key for {name!r} has signature type 0x{raw[0]:02x}; only Ed25519 (0x01) is known"
            )
        if len(raw) != 33:
            raise CheckpointInvalid(
                f"verifier key for {name!r}: an Ed25519 public key is 32 bytes, not {len(raw) - 1}"
            )
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if verifier.key_hash != bytes.fromhex(key_id):
            raise CheckpointInvalid(
                f"verifier key for {name!r}: key id {key_id} does not match the key (altered or mistyped)"
            )
        return verifier

    def vkey(self) -> str:
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"{self.name}+{self.key_hash.hex()}+{base64.b64encode(_ALG_ED25519 + raw).decode('ascii')}"

    def verify(self, body: bytes, sig: bytes) -> bool:
        """True iff ``sig`` (64 bytes, without the key id) is this key's signature of ``body``."""
        try:
            self.public_key.verify(bytes(sig), bytes(body))
        except InvalidSignature:
            return False
        return True


def load_verifier(data: str | bytes, name: str | None = None) -> NoteVerifier:
    """Load the log's public key as an auditor is likely to have it.

    A C2SP verifier key names itself and ``name`` is not used; a PEM
    SubjectPublicKeyInfo or 64 hex characters of raw key carry no name, so
    ``name`` (the log's origin) is required for them. Either way
    :func:`verify_checkpoint` then checks the key's name against the origin,
    so a key for another log is reported there, as a failed verification.
    """
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointInvalid("public key is not text; expected a verifier key, PEM or hex") from exc
    text = data.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("utf-8"))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise CheckpointInvalid(
                "PEM data is not a public key; expected '-----BEGIN PUBLIC KEY-----' (SubjectPublicKeyInfo)"
            ) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CheckpointInvalid(f"PEM public key is {type(key).__name__}; the log signs with Ed25519")
    elif _HEX_KEY.fullmatch(text):
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    else:
        return NoteVerifier.from_vkey(text)
    if name is None:
        raise CheckpointInvalid(
            "a PEM or hex public key does not name its log; give the log's origin as the name"
        )
    return NoteVerifier(name, key)


def _check_uint64(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_UINT64:
        raise CheckpointInvalid(f"{what} {value!r} must be an integer from 0 to 2**64-1")
    return value


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: what the log commits to at one size and time."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp_ms: int

    def __post_init__(self) -> None:
        if not _one_line(self.origin):
            raise CheckpointInvalid(f"checkpoint origin {self.origin!r} must be non-empty, on one line")
        _check_uint64(self.tree_size, "tree size")
        _check_uint64(self.timestamp_ms, "timestamp")
        if not isinstance(self.root_hash, (bytes, bytearray)) or len(self.root_hash) != 32:
            raise CheckpointInvalid("checkpoint root hash must be 32 bytes (SHA-256)")
        object.__setattr__(self, "root_hash", bytes(self.root_hash))

    def body(self) -> bytes:
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root}\ntimestamp {self.timestamp_ms}\n".encode()


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key id, and the signature without the id."""

    name: str
    key_hash: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedCheckpoint:
    """A parsed checkpoint note; only :func:`verify_checkpoint` says it is genuine."""

    checkpoint: Checkpoint
    text: str
    signatures: tuple[NoteSignature, ...]

    @property
    def body(self) -> bytes:
        """The signed text: everything before the last blank line, extension lines included."""
        return self.text[: self.text.rindex("\n\n") + 1].encode("utf-8")

    def as_dict(self) -> dict[str, Any]:
        """The tree head as the CLI and the HTTP API show it: fields in hex, and the note itself."""
        cp = self.checkpoint
        return {
            "origin": cp.origin,
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash.hex(),
            "timestamp_ms": cp.timestamp_ms,
            "note": self.text,
        }

    def verified_by(self, verifier: NoteVerifier) -> bool:
        """True iff ``verifier``'s key (name and id) signed this note; origin is not checked."""
        for sig in self.signatures:
            if sig.name == verifier.name and sig.key_hash == verifier.key_hash:
                return verifier.verify(self.body, sig.signature)
        return False


def _parse_note(note: str | bytes) -> tuple[str, str, tuple[NoteSignature, ...]]:
    """Split a signed note into (whole text, signed text, signatures), checking the note grammar."""
    if isinstance(note, (bytes, bytearray)):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointInvalid(f"note is not valid UTF-8 (byte {exc.start})") from exc
    elif not isinstance(note, str):
        raise CheckpointInvalid(f"note must be text, not {type(note).__name__}")
    bad = _CONTROL.search(note)
    if bad:
        raise CheckpointInvalid(
            f"note contains control character U+{ord(bad.group()):04X} at offset {bad.start()}; "
            "only '\\n' line ends are allowed"
        )
    try:
        note.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CheckpointInvalid(f"note is not valid Unicode (lone surrogate at offset {exc.start})") from exc
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointInvalid("note has no blank line between its text and its signature lines")
    body, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise CheckpointInvalid("note has no signature lines after the blank line")
    if not block.endswith("\n"):
        raise CheckpointInvalid("note must end with a newline after its last signature line")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointInvalid(
            f"note has {len(lines)} signature lines; at most {_MAX_SIGNATURES} are accepted"
        )
    sigs: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for n, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointInvalid(f"signature line {n} must start with an em dash (U+2014) and a space")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not _valid_name(name):
            raise CheckpointInvalid(
                f"signature line {n}: key name {name!r} is empty or contains '+' or a space"
            )
        raw = _b64decode(b64)
        if raw is None or len(raw) < 5:
            raise CheckpointInvalid(f"signature line {n}: the signature is not canonical base64 of 5+ bytes")
        if (name, raw[:4]) in seen:
            raise CheckpointInvalid(f"signature line {n} repeats a signature by key {name}+{raw[:4].hex()}")
        seen.add((name, raw[:4]))
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    return note, body, tuple(sigs)


def _parse_decimal(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text) or int(text) > _MAX_UINT64:
        raise CheckpointInvalid(f"checkpoint {what} {text!r} must be a decimal number without leading zeros")
    return int(text)


def parse_checkpoint(text: str | bytes) -> SignedCheckpoint:
    """Parse a checkpoint note without trusting it (no signature is checked)."""
    note, body, sigs = _parse_note(text)
    lines = body[:-1].split("\n")
    if len(lines) < 4:
        raise CheckpointInvalid(
            f"checkpoint text has {len(lines)} lines; it needs origin, tree size, root hash and timestamp"
        )
    origin, size, root64, *extensions = lines
    if not origin:
        raise CheckpointInvalid("checkpoint origin (line 1) is empty")
    root = _b64decode(root64)
    if root is None or len(root) != 32:
        raise CheckpointInvalid("checkpoint root hash (line 3) must be canonical base64 of 32 bytes")
    if "" in extensions:
        raise CheckpointInvalid("checkpoint has an empty extension line; extension lines must be non-empty")
    stamps = [line for line in extensions if line.split(" ", 1)[0] == "timestamp"]
    if len(stamps) != 1:
        raise CheckpointInvalid(
            f"checkpoint must have exactly one 'timestamp <ms>' line, found {len(stamps)}"
        )
    timestamp = _parse_decimal(stamps[0][len("timestamp ") :], "timestamp")
    checkpoint = Checkpoint(origin, _parse_decimal(size, "tree size"), root, timestamp)
    return SignedCheckpoint(checkpoint, note, sigs)


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner) -> SignedCheckpoint:
    """Sign a tree head as its log; the key name must be the origin, as C2SP logs do."""
    if signer.name != cp.origin:
        raise CheckpointInvalid(
            f"signer key name {signer.name!r} differs from checkpoint origin {cp.origin!r}; "
            "a log signs with a key named after its origin"
        )
    body = cp.body()
    return parse_checkpoint(f"{body.decode('utf-8')}\n{signer.sign(body)}\n")


def verify_checkpoint(text: str | bytes, verifier: NoteVerifier) -> SignedCheckpoint:
    """Parse a checkpoint and require the log's own signature; cosignatures by other keys are ignored."""
    signed = parse_checkpoint(text)
    origin = signed.checkpoint.origin
    if verifier.name != origin:
        raise CheckpointInvalid(
            f"checkpoint origin {origin!r} is not {verifier.name!r}, the log this key belongs to"
        )
    key = f"{verifier.name}+{verifier.key_hash.hex()}"
    if not any(s.name == verifier.name and s.key_hash == verifier.key_hash for s in signed.signatures):
        present = ", ".join(f"{s.name}+{s.key_hash.hex()}" for s in signed.signatures)
        raise CheckpointInvalid(f"checkpoint is not signed by key {key} (signed by: {present})")
    if not signed.verified_by(verifier):
        raise CheckpointInvalid(f"signature by key {key} does not verify: the checkpoint was altered")
    return signed


def add_cosignature(text: str | bytes, signer: NoteSigner) -> str:
    """Add ``signer``'s signature to a checkpoint note, replacing an earlier one by the same key.

    Replacing (as Go's ``note.Sign`` does) keeps cosigning idempotent. Existing
    signatures are kept verbatim and not checked: verifying is the reader's job.
    """
    signed = parse_checkpoint(text)
    kept = [
        _sig_line(s.name, s.key_hash, s.signature) + "\n"
        for s in signed.signatures
        if (s.name, s.key_hash) != (signer.name, signer.key_hash)
    ]
    body = signed.body
    return f"{body.decode('utf-8')}\n{''.join(kept)}{signer.sign(body)}\n"
