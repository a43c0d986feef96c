"""Evidence bundles: what an auditor needs to check entries against a signed tree head, offline.

A bundle is one JSON object: the log's signed checkpoint, some entries with
their inclusion proofs, and earlier checkpoints with consistency proofs to
it. Everything in it is re-derived from the entry bytes and the log's public
key, so a bundle that passes cannot have been edited after export.

Two kinds of failure are kept apart because an auditor acts on them
differently: input this verifier cannot read at all (:class:`BundleUnusable`:
not JSON, missing fields, wrong types, bad hex) is a tooling problem; a
readable bundle whose proofs or signatures fail is evidence of tampering and
comes back as ``BundleReport(ok=False, reason=...)``.

Only the standard library, ``cryptography`` and the ledger's own pure modules
are imported: the offline auditor must install with nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger import merkle
from ledger.checkpoint import Checkpoint, NoteVerifier, verify_checkpoint
from ledger.entry import Entry, canonical_json_stdlib, parse_entry
from ledger.errors import CheckpointInvalid, EntryInvalid, LedgerError

__all__ = ["BUNDLE_FORMAT", "BundleReport", "BundleUnusable", "build_bundle", "load_bundle", "verify_bundle"]

BUNDLE_FORMAT = "appliance-evidence-bundle/1"
_KEYS = {"format", "origin", "checkpoint", "entries", "consistency"}
_ENTRY_KEYS = {"seq", "entry", "leaf_hash", "inclusion_path"}
_CONSISTENCY_KEYS = {"checkpoint", "path"}
_HASH_HEX = re.compile(r"[0-9a-f]{64}")


class BundleUnusable(LedgerError):
    """The input is not a readable evidence bundle (as opposed to one whose proofs fail)."""


@dataclass(frozen=True)
class BundleReport:
    """Outcome of :func:`verify_bundle`; ``reason`` names the first field that failed, or summarises."""

    ok: bool
    reason: str
    checkpoint: Checkpoint | None
    entries_checked: int
    consistency_checked: int


@dataclass(frozen=True)
class _Entry:
    seq: int
    raw: bytes
    leaf: bytes
    path: list[bytes]


@dataclass(frozen=True)
class _Bundle:
    origin: str
    checkpoint: str
    entries: list[_Entry]
    consistency: list[tuple[str, list[bytes]]]


def build_bundle(
    origin: str,
    checkpoint_text: str,
    entries: Sequence[tuple[int, bytes, Sequence[bytes]]],
    consistency: Sequence[tuple[str, Sequence[bytes]]] = (),
) -> dict[str, Any]:
    """Assemble a bundle from entries ``(seq, raw entry bytes, inclusion path)`` and earlier checkpoints."""
    out = []
    for seq, raw, path in entries:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EntryInvalid(f"entry {seq} is not UTF-8; ledger entries are canonical JSON") from exc
        out.append(
            {
                "seq": seq,
                "entry": text,
                "leaf_hash": merkle.leaf_hash(raw).hex(),
                "inclusion_path": [p.hex() for p in path],
            }
        )
    return {
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "checkpoint": checkpoint_text,
        "entries": out,
        "consistency": [{"checkpoint": text, "path": [p.hex() for p in path]} for text, path in consistency],
    }


def _object(value: object, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleUnusable(f"{where} must be a JSON object, not {type(value).__name__}")
    missing, unknown = keys - value.keys(), value.keys() - keys
    if missing:
        raise BundleUnusable(f"{where} is missing {', '.join(sorted(missing))}")
    if unknown:
        raise BundleUnusable(f"{where} has unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BundleUnusable(f"{where} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BundleUnusable(f"{where} is not valid Unicode (lone surrogate)") from exc
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BundleUnusable(f"{where} must be a JSON array, not {type(value).__name__}")
    return value


def _hash(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not _HASH_HEX.fullmatch(value):
        raise BundleUnusable(f"{where} must be 64 lowercase hex characters (a SHA-256 hash)")
    return bytes.fromhex(value)


def _hashes(value: object, where: str) -> list[bytes]:
    return [_hash(h, f"{where}[{i}]") for i, h in enumerate(_list(value, where))]


def _parse(bundle: object) -> _Bundle:
    top = _object(bundle, "bundle", _KEYS)
    if top["format"] != BUNDLE_FORMAT:
        raise BundleUnusable(f"format is {top['format']!r}; this verifier reads {BUNDLE_FORMAT!r}")
    entries = []
    for i, item in enumerate(_list(top["entries"], "entries")):
        where = f"entries[{i}]"
        e = _object(item, where, _ENTRY_KEYS)
        seq = e["seq"]
        if type(seq) is not int or seq < 0:
            raise BundleUnusable(f"{where}.seq must be a non-negative integer, not {seq!r}")
        raw = _text(e["entry"], f"{where}.entry").encode("utf-8")
        leaf = _hash(e["leaf_hash"], f"{where}.leaf_hash")
        entries.append(_Entry(seq, raw, leaf, _hashes(e["inclusion_path"], f"{where}.inclusion_path")))
    consistency = []
    for i, item in enumerate(_list(top["consistency"], "consistency")):
        c = _object(item, f"consistency[{i}]", _CONSISTENCY_KEYS)
        text = _text(c["checkpoint"], f"consistency[{i}].checkpoint")
        consistency.append((text, _hashes(c["path"], f"consistency[{i}].path")))
    return _Bundle(
        _text(top["origin"], "origin"), _text(top["checkpoint"], "checkpoint"), entries, consistency
    )


def load_bundle(data: str | bytes) -> dict[str, Any]:
    """Read a bundle file's contents; raises :class:`BundleUnusable` unless it is a readable bundle."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            repeated = sorted({k for k, _ in pairs if [p for p, _ in pairs].count(k) > 1})
            raise BundleUnusable(f"bundle repeats the JSON key(s) {', '.join(map(repr, repeated))}")
        return obj

    try:
        bundle: dict[str, Any] = json.loads(data, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise BundleUnusable(f"bundle is not JSON: {exc}") from exc
    _parse(bundle)  # raises unless it is an object of the right shape
    return bundle


def _fail(reason: str, cp: Checkpoint | None, entries: int = 0, consistency: int = 0) -> BundleReport:
    return BundleReport(False, reason, cp, entries, consistency)


def _check_entry(e: _Entry, where: str, cp: Checkpoint) -> Entry | str:
    """The parsed entry if ``e`` holds up against ``cp``, else why not."""
    if merkle.leaf_hash(e.raw) != e.leaf:
        return f"{where}.leaf_hash is not the hash of {where}.entry: the entry or its hash was altered"
    try:
        parsed = parse_entry(e.raw)
        canonical = canonical_json_stdlib(parsed.as_dict())
    except (EntryInvalid, TypeError, ValueError, RecursionError) as exc:  # TypeError: e.g. "subject": 5
        return f"{where}.entry is not a ledger entry: {exc}"
    if parsed.seq != e.seq:
        return f"{where}.entry has seq {parsed.seq} but is listed as seq {e.seq}"
    if canonical != e.raw:
        return f"{where}.entry is not canonical JSON (sorted keys, no spaces): it was re-encoded or altered"
    if e.seq >= cp.tree_size:
        return f"{where}.seq {e.seq} is not below the checkpoint's tree size {cp.tree_size}"
    if not merkle.verify_inclusion(e.leaf, e.seq, cp.tree_size, e.path, cp.root_hash):
        return f"{where}.inclusion_path does not prove seq {e.seq} in the checkpoint's tree"
    return parsed


def verify_bundle(bundle: object, verifier: NoteVerifier) -> BundleReport:
    """Check every signature, proof and hash link in ``bundle`` against the log's key.

    Raises :class:`BundleUnusable` only when ``bundle`` cannot be read as a
    bundle at all; every failed check is reported, never raised.
    """
    b = _parse(bundle)
    try:
        cp = verify_checkpoint(b.checkpoint, verifier).checkpoint
    except CheckpointInvalid as exc:
        return _fail(f"checkpoint: {exc}", None)
    if cp.origin != b.origin:
        return _fail(f"origin {b.origin!r} is not the checkpoint's origin {cp.origin!r}", cp)
    checked: dict[int, tuple[int, bytes, str]] = {}  # seq -> (index in entries, leaf hash, prev)
    for i, e in enumerate(b.entries):
        parsed = _check_entry(e, f"entries[{i}]", cp)
        if isinstance(parsed, str):
            return _fail(parsed, cp, i)
        checked[e.seq] = (i, e.leaf, parsed.prev)
    for seq, (i, _, prev) in checked.items():
        before = checked.get(seq - 1)
        if before is not None and prev != before[1].hex():
            return _fail(
                f"entries[{i}].entry prev is not the leaf hash of seq {seq - 1}: the hash chain is broken",
                cp,
                len(b.entries),
            )
    # verify_checkpoint ties every earlier checkpoint to the verifier's name, hence to the same origin.
    for i, (text, path) in enumerate(b.consistency):
        where = f"consistency[{i}]"
        try:
            old = verify_checkpoint(text, verifier).checkpoint
        except CheckpointInvalid as exc:
            return _fail(f"{where}.checkpoint: {exc}", cp, len(b.entries), i)
        if old.tree_size > cp.tree_size:
            return _fail(
                f"{where}.checkpoint has size {old.tree_size}, larger than the checkpoint's {cp.tree_size}",
                cp,
                len(b.entries),
                i,
            )
        if not merkle.verify_consistency(old.tree_size, cp.tree_size, path, old.root_hash, cp.root_hash):
            return _fail(
                f"{where}.path does not prove size {old.tree_size} is a prefix of size {cp.tree_size}",
                cp,
                len(b.entries),
                i,
            )
    summary = (
        f"checkpoint of {cp.origin} at size {cp.tree_size} verified; "
        f"entries checked: {len(b.entries)}, consistency proofs checked: {len(b.consistency)}"
    )
    return BundleReport(True, summary, cp, len(b.entries), len(b.consistency))
