"""Witness cosigning: c2sp.org/tlog-witness and c2sp.org/tlog-cosignature (Ed25519, ``cosignature/v1``).

A witness is a third party holding the log's public key. The log sends it each new checkpoint with
a consistency proof from the last checkpoint the witness cosigned; the witness checks the log's
signature and the proof, remembers the new (size, root), and returns its cosignature. Because a
witness only ever signs checkpoints consistent with the one before, a log that showed two
different histories to two parties would need every witness to sign both: an auditor who requires
cosignatures from witnesses it trusts is protected against such a split view.

Byte layouts, as the C2SP specs define them:

* key id: ``SHA-256(<name> || "\\n" || 0x04 || 32-byte public key)[:4]``; verifier key (vkey)
  ``<name>+<key id hex>+base64(0x04 || public key)``; signer key (skey)
  ``PRIVATE+KEY+<name>+<key id hex>+base64(0x04 || seed)`` (a 0x01 Ed25519 note key is read too,
  as Go's ``NewSignerForCosignatureV1`` does, and becomes a cosigning key with a 0x04 key id);
* the signature line's bytes: ``key id || u64 big-endian timestamp || Ed25519 signature``;
* the signed message: ``"cosignature/v1\\n" "time <timestamp>\\n"`` and the checkpoint's whole
  note text (extension lines included, signature lines not);
* add-checkpoint requests: ``old <size>\\n``, up to 63 base64 proof lines, an empty line, the note.

The cosignature time is POSIX seconds (the log's own checkpoint time is milliseconds: the two
formats say so). Only the standard library and ``cryptography``: the offline auditor
(``appliance-verify``) checks cosignatures with this module.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger import merkle
from ledger.checkpoint import _KEY_ID, NoteVerifier, SignedCheckpoint, _b64decode, _key_hash, parse_checkpoint
from ledger.errors import (
    CheckpointInvalid,
    ConsistencyUnproven,
    CosignatureInvalid,
    CosignatureMissing,
    LedgerCorrupt,
    LogSignatureInvalid,
    UnknownLog,
    WitnessConflict,
    WitnessRequestInvalid,
)

__all__ = [
    "MAX_PROOF_LINES",
    "Cosignature",
    "Witness",
    "WitnessSigner",
    "WitnessVerifier",
    "WitnessedHead",
    "cosignatures",
    "format_add_checkpoint",
    "merge_signatures",
    "parse_add_checkpoint",
    "verify_cosignature",
]

_ALG_COSIGNATURE_V1 = b"\x04"
_ALG_ED25519 = b"\x01"
_SIG_PREFIX = "\u2014 "
_STAMP = struct.Struct(">Q")
_MAX_TIMESTAMP = 2**63 - 1
#: The spec's limit on proof lines; a tree of 2**63 leaves needs fewer.
MAX_PROOF_LINES = 63
_OLD = re.compile(r"old (0|[1-9][0-9]{0,19})")
_STATE_FORMAT = "appliance-witness-state/1"


def _valid_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and bool(name)
        and "+" not in name
        and not any(c.isspace() or ord(c) < 0x20 for c in name)
    )


def _key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    return _key_hash(name, public_key, _ALG_COSIGNATURE_V1)


def _message(body: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime %d\n" % timestamp + body


class WitnessSigner:
    """A witness's Ed25519 key and name; signs ``cosignature/v1`` lines. Secret: keep it 0600."""

    __slots__ = ("_key", "key_hash", "name", "public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not _valid_name(name):
            raise CheckpointInvalid(f"witness name {name!r} must be non-empty, without spaces or '+'")
        self.name = name
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_hash = _key_id(name, self.public_key)

    def __repr__(self) -> str:
        return f"WitnessSigner({self.name!r}, key_hash={self.key_hash.hex()})"

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, text: str) -> WitnessSigner:
        """Read ``PRIVATE+KEY+<name>+<key id>+base64(0x04 || seed)`` (or a 0x01 note signer key)."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _KEY_ID.fullmatch(parts[3]):
            raise CheckpointInvalid(
                "witness key must look like 'PRIVATE+KEY+<name>+<8 hex key id>+<base64 key>'"
            )
        raw = _b64decode(parts[4])
        if raw is None or len(raw) != 33 or raw[:1] not in (_ALG_COSIGNATURE_V1, _ALG_ED25519):
            raise CheckpointInvalid(
                "witness key: the key part must be base64 of 0x04 (or 0x01) and a 32-byte Ed25519 seed"
            )
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if raw[:1] == _ALG_COSIGNATURE_V1 and signer.key_hash != bytes.fromhex(parts[3]):
            raise CheckpointInvalid(f"witness key for {signer.name!r}: key id {parts[3]} does not match")
        return signer

    def skey(self) -> str:
        seed = self._key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        key = base64.b64encode(_ALG_COSIGNATURE_V1 + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_hash.hex()}+{key}"

    def vkey(self) -> str:
        return WitnessVerifier(self.name, self.public_key).vkey()

    def cosign(self, body: bytes, timestamp: int) -> str:
        """The signature line cosigning a note's text ``body`` (final newline included) at ``timestamp``."""
        if not body.endswith(b"\n"):
            raise CheckpointInvalid("note text must end with a newline before it is cosigned")
        if type(timestamp) is not int or not 0 <= timestamp <= _MAX_TIMESTAMP:
            raise CheckpointInvalid(f"cosignature time {timestamp!r} must be from 0 to 2**63-1 seconds")
        sig = self._key.sign(_message(body, timestamp))
        blob = self.key_hash + _STAMP.pack(timestamp) + sig
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}"


class WitnessVerifier:
    """A witness's public key and name, as an auditor or a log configures it."""

    __slots__ = ("key_hash", "name", "public_key")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _valid_name(name):
            raise CheckpointInvalid(f"witness name {name!r} must be non-empty, without spaces or '+'")
        self.name = name
        self.public_key = public_key
        self.key_hash = _key_id(name, public_key)

    def __repr__(self) -> str:
        return f"WitnessVerifier({self.name!r}, key_hash={self.key_hash.hex()})"

    @classmethod
    def from_vkey(cls, text: str) -> WitnessVerifier:
        """Read a cosigner vkey ``<name>+<key id>+base64(0x04 || public key)``."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not _KEY_ID.fullmatch(parts[1]):
            raise CheckpointInvalid("witness key must look like '<name>+<8 hex key id>+<base64 key>'")
        name, key_id, key64 = parts
        raw = _b64decode(key64)
        if raw is None or not raw:
            raise CheckpointInvalid(f"witness key {name!r}: the key part is not canonical base64")
        if raw[:1] == _ALG_ED25519:
            raise CheckpointInvalid(
                f"key {name!r} is a log (note) key, type 0x01; a witness key has type 0x04 "
                "(cosignature/v1): use the witness's own vkey (`appliance witness init` prints it)"
            )
        if raw[:1] != _ALG_COSIGNATURE_V1 or len(raw) != 33:
            raise CheckpointInvalid(
                f"witness key {name!r} must be 0x04 and a 32-byte Ed25519 key (c2sp.org/tlog-cosignature)"
            )
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if verifier.key_hash != bytes.fromhex(key_id):
            raise CheckpointInvalid(
                f"witness key {name!r}: key id {key_id} does not match the key (altered or mistyped)"
            )
        return verifier

    @property
    def key_name(self) -> str:
        """``<name>+<key id>``: how reports name the key."""
        return f"{self.name}+{self.key_hash.hex()}"

    def vkey(self) -> str:
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"{self.key_name}+{base64.b64encode(_ALG_COSIGNATURE_V1 + raw).decode('ascii')}"

    def verify(self, body: bytes, sig: bytes) -> int | None:
        """The cosignature's time if ``sig`` (without the key id) cosigns ``body``, else None."""
        if len(sig) != 8 + 64:
            return None
        (stamp,) = _STAMP.unpack_from(sig)
        if stamp > _MAX_TIMESTAMP:
            return None
        try:
            self.public_key.verify(sig[8:], _message(body, stamp))
        except InvalidSignature:
            return None
        return int(stamp)


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: who, and when (POSIX seconds, as the witness stated it)."""

    name: str
    key_hash: bytes
    timestamp: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key_id": self.key_hash.hex(), "time": self.timestamp}


def _verifier(key: str | WitnessVerifier) -> WitnessVerifier:
    return key if isinstance(key, WitnessVerifier) else WitnessVerifier.from_vkey(key)


def _cosignature(signed: SignedCheckpoint, verifier: WitnessVerifier) -> Cosignature:
    for sig in signed.signatures:
        if sig.name == verifier.name and sig.key_hash == verifier.key_hash:
            stamp = verifier.verify(signed.body, sig.signature)
            if stamp is None:
                raise CosignatureInvalid(
                    f"cosignature by witness {verifier.key_name} does not verify: the checkpoint or the "
                    "cosignature was altered"
                )
            return Cosignature(verifier.name, verifier.key_hash, stamp)
    raise CosignatureMissing(f"checkpoint is not cosigned by witness {verifier.key_name}")


def verify_cosignature(checkpoint_text: str | bytes, witness_vkey: str | WitnessVerifier) -> int:
    """The time (POSIX seconds) at which the witness cosigned this checkpoint note.

    Raises :class:`CosignatureInvalid` if the witness's line is missing or does not verify, and
    :class:`CheckpointInvalid` if the note or the key cannot be read. The log's own signature is
    not checked here (``verify_checkpoint`` does that).
    """
    return _cosignature(parse_checkpoint(checkpoint_text), _verifier(witness_vkey)).timestamp


def cosignatures(
    signed: SignedCheckpoint, witnesses: Iterable[WitnessVerifier]
) -> list[tuple[WitnessVerifier, Cosignature | CosignatureInvalid]]:
    """Each witness's verified cosignature on ``signed``, or the error saying why there is none
    (:class:`CosignatureMissing` when the witness's line is absent)."""
    out: list[tuple[WitnessVerifier, Cosignature | CosignatureInvalid]] = []
    for w in witnesses:
        try:
            out.append((w, _cosignature(signed, w)))
        except CosignatureInvalid as exc:
            out.append((w, exc))
    return out


def merge_signatures(note: str, lines: str) -> str:
    """``note`` with the signature lines in ``lines`` added; a key's newer line replaces its older one.

    Used to keep one note with every cosignature the log collected. Nothing is verified here.
    """
    signed = parse_checkpoint(note)
    extra = [line for line in lines.split("\n") if line]
    for line in extra:
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointInvalid("a signature line must start with an em dash (U+2014) and a space")
    probe = parse_checkpoint(signed.body.decode("utf-8") + "\n" + "\n".join(extra) + "\n")
    new_keys = {(s.name, s.key_hash) for s in probe.signatures}
    kept = [
        f"{_SIG_PREFIX}{s.name} {base64.b64encode(s.key_hash + s.signature).decode('ascii')}"
        for s in signed.signatures
        if (s.name, s.key_hash) not in new_keys
    ]
    return signed.body.decode("utf-8") + "\n" + "".join(f"{line}\n" for line in [*kept, *extra])


# -- the add-checkpoint request ----------------------------------------------------------------------
def format_add_checkpoint(old_size: int, proof: Sequence[bytes], checkpoint_text: str) -> bytes:
    """The request body of ``POST <prefix>/add-checkpoint``."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint_text).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], str]:
    """``(old size, consistency proof, checkpoint note)``; :class:`WitnessRequestInvalid` if malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessRequestInvalid(f"request body is not UTF-8 (byte {exc.start})") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRequestInvalid(
            "request body must be 'old <size>', proof lines, an empty line, then the checkpoint"
        )
    lines = head.split("\n")
    m = _OLD.fullmatch(lines[0])
    if not m or int(m.group(1)) > 2**64 - 1:
        raise WitnessRequestInvalid("the first line must be 'old <size>' (a decimal without leading zeros)")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRequestInvalid(f"{len(lines) - 1} proof lines; at most {MAX_PROOF_LINES} are allowed")
    proof = []
    for i, line in enumerate(lines[1:], 1):
        raw = _b64decode(line)
        if raw is None or len(raw) != 32:
            raise WitnessRequestInvalid(f"proof line {i} is not canonical base64 of a 32-byte hash")
        proof.append(raw)
    return int(m.group(1)), proof, note


# -- the witness ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WitnessedHead:
    """The latest checkpoint a witness cosigned for one log."""

    origin: str
    tree_size: int
    root_hash: bytes
    time: int  # when it was cosigned, POSIX seconds
    checkpoint: str  # the note as the log sent it

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "time": self.time,
            "checkpoint": self.checkpoint,
        }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Witness:
    """A C2SP witness: the logs it follows (their keys), its state file, and its signing key.

    ``add_checkpoint`` checks and records under one lock (a thread lock and an ``flock`` on
    ``<state>.lock``, so several server processes can share one state file), and the new state is
    on disk (written to a temporary file, fsynced, renamed) before the cosignature is returned: the
    witness never rolls back and never cosigns two different roots for one size.

    Checkpoints it refuses although the log signed them (an inconsistent proof, another root for
    a size it cosigned) are appended to ``<state dir>/conflicts.jsonl``: they may be evidence that
    the log misbehaved (``appliance-verify fork`` checks a pair).
    """

    def __init__(
        self, signer: WitnessSigner, state_path: str | os.PathLike[str], logs: Iterable[NoteVerifier]
    ) -> None:
        self.signer = signer
        self._path = Path(state_path)
        self._logs: dict[str, list[NoteVerifier]] = {}
        for v in logs:
            self._logs.setdefault(v.name, []).append(v)
        self._lock = threading.Lock()
        self._clock = time.time

    @property
    def name(self) -> str:
        return self.signer.name

    @property
    def origins(self) -> list[str]:
        return sorted(self._logs)

    def vkey(self) -> str:
        return self.signer.vkey()

    # -- state ------------------------------------------------------------------------------------
    def _read(self) -> dict[str, WitnessedHead]:
        try:
            data = json.loads(self._path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LedgerCorrupt(f"{self._path} is unreadable ({exc}); restore it from a backup") from exc
        if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT:
            raise LedgerCorrupt(f"{self._path} is not an {_STATE_FORMAT} file")
        out = {}
        try:
            for origin, h in data["logs"].items():
                out[origin] = WitnessedHead(
                    origin,
                    int(h["tree_size"]),
                    bytes.fromhex(h["root_hash"]),
                    int(h["time"]),
                    h["checkpoint"],
                )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LedgerCorrupt(f"{self._path}: a log's record is damaged ({exc})") from exc
        return out

    def _write(self, heads: dict[str, WitnessedHead]) -> None:
        data = {"format": _STATE_FORMAT, "logs": {o: h.as_dict() for o, h in sorted(heads.items())}}
        tmp = self._path.with_name(f".{self._path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)
        _fsync_dir(self._path.parent)

    def heads(self) -> dict[str, WitnessedHead]:
        """The latest cosigned checkpoint of each log, by origin."""
        with self._lock:
            return self._read()

    def _conflict(self, kind: str, head: WitnessedHead | None, checkpoint_text: str) -> None:
        record = {
            "kind": kind,
            "seen": int(self._clock()),
            "cosigned": head.as_dict() if head else None,
            "checkpoint": checkpoint_text,
        }
        path = self._path.with_name("conflicts.jsonl")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- the protocol ----------------------------------------------------------------------------------
    def _check_signed(self, checkpoint_text: str) -> SignedCheckpoint:
        try:
            signed = parse_checkpoint(checkpoint_text)
        except CheckpointInvalid as exc:
            raise WitnessRequestInvalid(f"checkpoint: {exc}") from exc
        origin = signed.checkpoint.origin
        keys = self._logs.get(origin)
        if not keys:
            raise UnknownLog(f"this witness follows no log with origin {origin!r}")
        if not any(signed.verified_by(k) for k in keys):
            raise LogSignatureInvalid(
                f"checkpoint of {origin!r} carries no valid signature by the log key this witness trusts"
            )
        return signed

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], checkpoint_text: str) -> str:
        """Check a new checkpoint against the last one cosigned for its log; return the cosignature line.

        Raises :class:`WitnessRequestInvalid` (malformed, old size above the new size),
        :class:`UnknownLog`, :class:`LogSignatureInvalid`, :class:`WitnessConflict` (``old_size`` is
        not the witness's size, carried as ``.size``; or the same size with another root, ``.fork``)
        or :class:`ConsistencyUnproven`.
        """
        signed = self._check_signed(checkpoint_text)
        cp = signed.checkpoint
        if type(old_size) is not int or old_size < 0:
            raise WitnessRequestInvalid(f"old size {old_size!r} must be a whole number")
        if old_size > cp.tree_size:
            raise WitnessRequestInvalid(
                f"old size {old_size} is larger than the checkpoint's size {cp.tree_size}"
            )
        if len(proof) > MAX_PROOF_LINES:
            raise WitnessRequestInvalid(f"{len(proof)} proof hashes; at most {MAX_PROOF_LINES} are allowed")
        lock_path = self._path.with_name(self._path.name + ".lock")
        with self._lock:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                return self._add_locked(old_size, proof, signed)
            finally:
                os.close(fd)  # releases the flock

    def _add_locked(self, old_size: int, proof: Sequence[bytes], signed: SignedCheckpoint) -> str:
        cp = signed.checkpoint
        heads = self._read()
        head = heads.get(cp.origin)
        last_size = head.tree_size if head else 0
        if old_size != last_size:
            raise WitnessConflict(
                f"old size {old_size} is not {last_size}, the size this witness last cosigned for "
                f"{cp.origin!r}; send a consistency proof from {last_size}",
                last_size,
            )
        if head is not None and cp.tree_size == head.tree_size and cp.root_hash != head.root_hash:
            self._conflict("fork", head, signed.text)
            raise WitnessConflict(
                f"{cp.origin!r} signed root {cp.root_hash.hex()} for size {cp.tree_size}, but this witness "
                f"cosigned root {head.root_hash.hex()} for that size: the log forked",
                last_size,
                fork=True,
            )
        if old_size == 0:
            if proof:
                raise WitnessRequestInvalid("the consistency proof must be empty when the old size is 0")
        else:
            assert head is not None
            if not merkle.verify_consistency(old_size, cp.tree_size, proof, head.root_hash, cp.root_hash):
                self._conflict("inconsistent", head, signed.text)
                raise ConsistencyUnproven(
                    f"the proof does not show size {old_size} (root {head.root_hash.hex()}) is a prefix of "
                    f"size {cp.tree_size} (root {cp.root_hash.hex()})"
                )
        now = max(int(self._clock()), head.time if head else 0)
        line = self.signer.cosign(signed.body, now)
        heads[cp.origin] = WitnessedHead(cp.origin, cp.tree_size, cp.root_hash, now, signed.text)
        self._write(heads)
        return line + "\n"
