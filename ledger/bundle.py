"""Evidence bundles: what an auditor needs to check entries against a signed tree head, offline.

A bundle is one JSON object: the log's signed checkpoint, some entries with
their inclusion proofs, and other signed checkpoints with consistency proofs
linking them to it. Everything in it is re-derived from the entry bytes and
the log's public key, so a bundle that passes cannot have been edited after
export.

Format 2 (``appliance-evidence-bundle/2``) adds what a log's own signature
cannot give: the witnesses' cosignatures on the checkpoint (checked against
witness keys the auditor trusts, c2sp.org/tlog-cosignature), the checkpoints
the node anchored on a chain with the anchor references (each anchor's size
and root must equal a checkpoint the log signed; ``check_onchain`` then looks
them up on the chain), and the selection that made the bundle. Its entries
must be unique and in seq order. A checkpoint in format 2 may be newer than
the bundle's (an anchoring after it): its proof then runs from the bundle's
checkpoint to it. Format 1 bundles verify as before.

Three kinds of failure are kept apart because an auditor acts on them
differently: input this verifier cannot read at all (:class:`BundleUnusable`:
not JSON, missing fields, wrong types, bad hex) is a tooling problem; a
readable bundle whose proofs or signatures fail is evidence of tampering and
comes back as ``BundleReport(ok=False, reason=...)``; and two checkpoints the
log validly signed that cannot both be true (one size, two roots; or a proof
that reproduces the newer root but shows a different older one) are proof
that the log itself forked, reported with ``fork`` set to both.

Only the standard library, ``cryptography`` and the ledger's own pure modules
are imported: the offline auditor must install with nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger import merkle
from ledger.checkpoint import Checkpoint, NoteVerifier, SignedCheckpoint, verify_checkpoint
from ledger.entry import Entry, canonical_json_stdlib, parse_entry
from ledger.errors import CheckpointInvalid, CosignatureMissing, EntryInvalid, LedgerError
from ledger.witness import Cosignature, WitnessVerifier, cosignatures

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_V2",
    "BundleReport",
    "BundleUnusable",
    "ForkEvidence",
    "WitnessCheck",
    "build_bundle",
    "build_bundle_v2",
    "find_fork",
    "load_bundle",
    "prefix_root",
    "verify_bundle",
]

BUNDLE_FORMAT = "appliance-evidence-bundle/1"
BUNDLE_FORMAT_V2 = "appliance-evidence-bundle/2"
_KEYS = {"format", "origin", "checkpoint", "entries", "consistency"}
_KEYS_V2 = _KEYS | {"anchors", "selection"}
_ENTRY_KEYS = {"seq", "entry", "leaf_hash", "inclusion_path"}
_CONSISTENCY_KEYS = {"checkpoint", "path"}
_ANCHOR_KEYS = {"chain", "network", "contract", "tree_size", "root", "tx", "block", "status", "time"}
_HASH_HEX = re.compile(r"[0-9a-f]{64}")


class BundleUnusable(LedgerError):
    """The input is not a readable evidence bundle (as opposed to one whose proofs fail)."""


@dataclass(frozen=True)
class ForkEvidence:
    """Two checkpoints the log signed that cannot both be true: proof that it showed two histories.

    ``prefix_root`` is set when the sizes differ: the root of the first ``a.tree_size`` leaves of
    ``b``'s tree, as the consistency proof (which reproduces ``b``'s signed root) shows it.
    """

    a: SignedCheckpoint
    b: SignedCheckpoint
    prefix_root: bytes | None = None

    def describe(self) -> str:
        a, b = self.a.checkpoint, self.b.checkpoint
        if self.prefix_root is None:
            return (
                f"fork: the log signed two conflicting checkpoints of size {a.tree_size}: root "
                f"{a.root_hash.hex()} and root {b.root_hash.hex()}"
            )
        return (
            f"fork: the log signed two conflicting checkpoints: size {a.tree_size} with root "
            f"{a.root_hash.hex()}, and size {b.tree_size} with root {b.root_hash.hex()} whose first "
            f"{a.tree_size} entries have root {self.prefix_root.hex()}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "description": self.describe(),
            "a": {**self.a.as_dict(), "root_hash": self.a.checkpoint.root_hash.hex()},
            "b": {**self.b.as_dict(), "root_hash": self.b.checkpoint.root_hash.hex()},
            "prefix_root": self.prefix_root.hex() if self.prefix_root is not None else None,
        }


@dataclass(frozen=True)
class WitnessCheck:
    """One trusted witness's verdict on the bundle's checkpoint."""

    witness: str  # <name>+<key id>
    cosignature: Cosignature | None
    problem: str | None  # why there is no valid cosignature
    altered: bool = False  # a line by this key is there and does not verify

    def as_dict(self) -> dict[str, Any]:
        return {
            "witness": self.witness,
            "ok": self.cosignature is not None,
            "time": self.cosignature.timestamp if self.cosignature else None,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class BundleReport:
    """Outcome of :func:`verify_bundle`; ``reason`` names the first field that failed, or summarises."""

    ok: bool
    reason: str
    checkpoint: Checkpoint | None
    entries_checked: int
    consistency_checked: int
    format: str = BUNDLE_FORMAT
    witnesses: tuple[WitnessCheck, ...] = ()
    anchors: tuple[dict[str, Any], ...] = ()  # the anchor references checked against signed checkpoints
    fork: ForkEvidence | None = None
    selection: Mapping[str, Any] | None = None
    unknown_signatures: tuple[str, ...] = field(default=())  # lines by keys the auditor did not name

    @property
    def anchors_checked(self) -> int:
        return len(self.anchors)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON (``appliance-verify bundle --json``)."""
        cp = self.checkpoint
        return {
            "ok": self.ok,
            "fork": self.fork.as_dict() if self.fork else None,
            "reason": self.reason,
            "format": self.format,
            "checkpoint": None
            if cp is None
            else {
                "origin": cp.origin,
                "tree_size": cp.tree_size,
                "root_hash": cp.root_hash.hex(),
                "timestamp_ms": cp.timestamp_ms,
            },
            "entries_checked": self.entries_checked,
            "consistency_checked": self.consistency_checked,
            "witnesses": [w.as_dict() for w in self.witnesses],
            "unknown_signatures": list(self.unknown_signatures),
            "anchors_checked": self.anchors_checked,
            "selection": dict(self.selection) if self.selection is not None else None,
        }


@dataclass(frozen=True)
class _Entry:
    seq: int
    raw: bytes
    leaf: bytes
    path: list[bytes]


@dataclass(frozen=True)
class _Bundle:
    format: str
    origin: str
    checkpoint: str
    entries: list[_Entry]
    consistency: list[tuple[str, list[bytes]]]
    anchors: list[dict[str, Any]]
    selection: dict[str, Any] | None


def _entries_out(entries: Sequence[tuple[int, bytes, Sequence[bytes]]]) -> list[dict[str, Any]]:
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
    return out


def build_bundle(
    origin: str,
    checkpoint_text: str,
    entries: Sequence[tuple[int, bytes, Sequence[bytes]]],
    consistency: Sequence[tuple[str, Sequence[bytes]]] = (),
) -> dict[str, Any]:
    """Assemble a format 1 bundle from entries ``(seq, raw entry bytes, inclusion path)`` and earlier
    checkpoints ``(note, consistency proof to the bundle's checkpoint)``."""
    return {
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "checkpoint": checkpoint_text,
        "entries": _entries_out(entries),
        "consistency": [{"checkpoint": text, "path": [p.hex() for p in path]} for text, path in consistency],
    }


def build_bundle_v2(
    origin: str,
    checkpoint_text: str,
    entries: Sequence[tuple[int, bytes, Sequence[bytes]]],
    consistency: Sequence[tuple[str, Sequence[bytes]]] = (),
    anchors: Iterable[Mapping[str, Any]] = (),
    selection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a format 2 bundle.

    ``checkpoint_text`` is the signed note with every cosignature collected; ``entries`` must be in
    seq order; ``consistency`` pairs other signed checkpoints with the consistency proof between them
    and the bundle's checkpoint (from the smaller size to the larger); ``anchors`` are
    ``AnchorRecord.as_dict()`` of anchorings of those checkpoints; ``selection`` says what was asked.
    """
    seqs = [seq for seq, _, _ in entries]
    if seqs != sorted(set(seqs)):
        raise EntryInvalid("format 2 bundles list each entry once, in seq order")
    return {
        "format": BUNDLE_FORMAT_V2,
        "origin": origin,
        "checkpoint": checkpoint_text,
        "entries": _entries_out(entries),
        "consistency": [{"checkpoint": text, "path": [p.hex() for p in path]} for text, path in consistency],
        "anchors": [dict(a) for a in anchors],
        "selection": dict(selection) if selection is not None else {},
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


def _count(value: object, where: str) -> int:
    if type(value) is not int or value < 0:
        raise BundleUnusable(f"{where} must be a non-negative integer, not {value!r}")
    return value


def _anchor(value: object, where: str) -> dict[str, Any]:
    a = _object(value, where, _ANCHOR_KEYS)
    for key in ("chain", "network", "contract", "tx", "status", "time"):
        _text(a[key], f"{where}.{key}")
    _count(a["tree_size"], f"{where}.tree_size")
    _hash(a["root"], f"{where}.root")
    if a["block"] is not None:
        _count(a["block"], f"{where}.block")
    return a


def _parse(bundle: object) -> _Bundle:
    if not isinstance(bundle, dict):
        raise BundleUnusable(f"bundle must be a JSON object, not {type(bundle).__name__}")
    fmt = bundle.get("format")
    if fmt not in (BUNDLE_FORMAT, BUNDLE_FORMAT_V2):
        if "format" not in bundle:
            _object(bundle, "bundle", _KEYS)  # names what is missing
        raise BundleUnusable(
            f"format is {fmt!r}; this verifier reads {BUNDLE_FORMAT!r} and {BUNDLE_FORMAT_V2!r}"
        )
    top = _object(bundle, "bundle", _KEYS_V2 if fmt == BUNDLE_FORMAT_V2 else _KEYS)
    entries = []
    for i, item in enumerate(_list(top["entries"], "entries")):
        where = f"entries[{i}]"
        e = _object(item, where, _ENTRY_KEYS)
        seq = _count(e["seq"], f"{where}.seq")
        raw = _text(e["entry"], f"{where}.entry").encode("utf-8")
        leaf = _hash(e["leaf_hash"], f"{where}.leaf_hash")
        entries.append(_Entry(seq, raw, leaf, _hashes(e["inclusion_path"], f"{where}.inclusion_path")))
    consistency = []
    for i, item in enumerate(_list(top["consistency"], "consistency")):
        c = _object(item, f"consistency[{i}]", _CONSISTENCY_KEYS)
        text = _text(c["checkpoint"], f"consistency[{i}].checkpoint")
        consistency.append((text, _hashes(c["path"], f"consistency[{i}].path")))
    anchors: list[dict[str, Any]] = []
    selection = None
    if fmt == BUNDLE_FORMAT_V2:
        anchors = [_anchor(a, f"anchors[{i}]") for i, a in enumerate(_list(top["anchors"], "anchors"))]
        if not isinstance(top["selection"], dict):
            raise BundleUnusable(f"selection must be a JSON object, not {type(top['selection']).__name__}")
        selection = top["selection"]
    return _Bundle(
        fmt,
        _text(top["origin"], "origin"),
        _text(top["checkpoint"], "checkpoint"),
        entries,
        consistency,
        anchors,
        selection,
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


def prefix_root(old_size: int, new_size: int, path: Sequence[bytes], new_root: bytes) -> bytes | None:
    """The root of the first ``old_size`` leaves of the tree ``new_root``, as a consistency proof shows it.

    RFC 9162 section 2.1.4.2 recomputes both roots from the path; when the path reproduces the
    newer signed root, the older root it yields is that tree's true prefix (or SHA-256 collided).
    None when the path does not reproduce ``new_root``, and when ``old_size`` is a power of two (the
    proof then leaves the older root out: it cannot show another one).
    """
    if not 0 < old_size < new_size or old_size & (old_size - 1) == 0 or not path:
        return None
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            fr = merkle.node_hash(bytes(c), fr)
            sr = merkle.node_hash(bytes(c), sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = merkle.node_hash(sr, bytes(c))
        fn >>= 1
        sn >>= 1
    return fr if sn == 0 and sr == bytes(new_root) else None


def find_fork(
    a: SignedCheckpoint, b: SignedCheckpoint, path: Sequence[bytes] | None = None
) -> ForkEvidence | None:
    """Fork evidence if two (already verified) checkpoints of one log cannot both be true.

    Same size, different roots: always. Different sizes: only with a consistency ``path`` between
    them that reproduces the larger root and shows another prefix root than the smaller one's.
    """
    if a.checkpoint.tree_size > b.checkpoint.tree_size:
        a, b = b, a
    ca, cb = a.checkpoint, b.checkpoint
    if ca.tree_size == cb.tree_size:
        return ForkEvidence(a, b) if ca.root_hash != cb.root_hash else None
    if path is None:
        return None
    shown = prefix_root(ca.tree_size, cb.tree_size, path, cb.root_hash)
    return ForkEvidence(a, b, shown) if shown is not None and shown != ca.root_hash else None


def _fail(
    reason: str, cp: Checkpoint | None, entries: int = 0, consistency: int = 0, **kw: Any
) -> BundleReport:
    return BundleReport(False, reason, cp, entries, consistency, **kw)


def _witness_checks(
    signed: SignedCheckpoint, witnesses: Sequence[WitnessVerifier], log: NoteVerifier
) -> tuple[tuple[WitnessCheck, ...], tuple[str, ...]]:
    checks = tuple(
        WitnessCheck(w.key_name, c, None, False)
        if isinstance(c, Cosignature)
        else WitnessCheck(w.key_name, None, str(c), not isinstance(c, CosignatureMissing))
        for w, c in cosignatures(signed, witnesses)
    )
    known = {(w.name, w.key_hash) for w in witnesses} | {(log.name, log.key_hash)}
    unknown = tuple(
        f"{s.name}+{s.key_hash.hex()}" for s in signed.signatures if (s.name, s.key_hash) not in known
    )
    return checks, unknown


def verify_bundle(
    bundle: object,
    verifier: NoteVerifier,
    *,
    witnesses: Sequence[WitnessVerifier] = (),
    min_witnesses: int | None = None,
) -> BundleReport:
    """Check every signature, proof and hash link in ``bundle`` against the log's key.

    ``witnesses`` are the witness keys the auditor trusts: at least ``min_witnesses`` of them
    (default: all) must have cosigned the bundle's checkpoint; a cosignature line that claims to be
    theirs and does not verify fails the bundle whatever the count. Raises :class:`BundleUnusable`
    only when ``bundle`` cannot be read as a bundle at all; every failed check is reported, never
    raised.
    """
    b = _parse(bundle)
    v2 = b.format == BUNDLE_FORMAT_V2
    want = len(witnesses) if min_witnesses is None else min_witnesses
    if want > len(witnesses):
        raise BundleUnusable(
            f"{want} witness cosignatures required but only {len(witnesses)} witness keys given"
        )
    common: dict[str, Any] = {"format": b.format, "selection": b.selection}
    try:
        signed = verify_checkpoint(b.checkpoint, verifier)
    except CheckpointInvalid as exc:
        return _fail(f"checkpoint: {exc}", None, **common)
    cp = signed.checkpoint
    if cp.origin != b.origin:
        return _fail(f"origin {b.origin!r} is not the checkpoint's origin {cp.origin!r}", cp, **common)
    checked: dict[int, tuple[int, bytes, str]] = {}  # seq -> (index in entries, leaf hash, prev)
    for i, e in enumerate(b.entries):
        if v2 and i and e.seq <= b.entries[i - 1].seq:
            return _fail(
                f"entries[{i}].seq {e.seq} does not follow entries[{i - 1}].seq {b.entries[i - 1].seq}: "
                "entries must be listed once each, in seq order (duplicated or reordered)",
                cp,
                i,
                **common,
            )
        parsed = _check_entry(e, f"entries[{i}]", cp)
        if isinstance(parsed, str):
            return _fail(parsed, cp, i, **common)
        checked[e.seq] = (i, e.leaf, parsed.prev)
    for seq, (i, _, prev) in checked.items():
        before = checked.get(seq - 1)
        if before is not None and prev != before[1].hex():
            return _fail(
                f"entries[{i}].entry prev is not the leaf hash of seq {seq - 1}: the hash chain is broken",
                cp,
                len(b.entries),
                **common,
            )
    n = len(b.entries)
    # verify_checkpoint ties every other checkpoint to the verifier's name, hence to the same origin.
    others: list[tuple[SignedCheckpoint, list[bytes]]] = []
    for i, (text, path) in enumerate(b.consistency):
        try:
            others.append((verify_checkpoint(text, verifier), path))
        except CheckpointInvalid as exc:
            return _fail(f"consistency[{i}].checkpoint: {exc}", cp, n, i, **common)
    # Fork evidence first: it is the strongest finding, whatever else fails.
    for i, (old, path) in enumerate(others):
        fork = find_fork(old, signed, path)
        for other, _ in others[:i]:
            fork = fork or find_fork(other, old)
        if fork is not None:
            return _fail(fork.describe(), cp, n, i, fork=fork, **common)
    for i, (old, path) in enumerate(others):
        where = f"consistency[{i}]"
        size = old.checkpoint.tree_size
        if size > cp.tree_size and not v2:
            return _fail(
                f"{where}.checkpoint has size {size}, larger than the checkpoint's {cp.tree_size}",
                cp,
                n,
                i,
                **common,
            )
        lo, hi = (old.checkpoint, cp) if size <= cp.tree_size else (cp, old.checkpoint)
        if not merkle.verify_consistency(lo.tree_size, hi.tree_size, path, lo.root_hash, hi.root_hash):
            return _fail(
                f"{where}.path does not prove size {lo.tree_size} is a prefix of size {hi.tree_size}",
                cp,
                n,
                i,
                **common,
            )
    signed_roots = {c.checkpoint.tree_size: c.checkpoint.root_hash for c, _ in [(signed, []), *others]}
    for i, a in enumerate(b.anchors):
        size, root = a["tree_size"], bytes.fromhex(a["root"])
        if size not in signed_roots:
            return _fail(
                f"anchors[{i}] anchors size {size}, but the bundle holds no checkpoint of that size signed "
                "by the log",
                cp,
                n,
                len(others),
                anchors=tuple(b.anchors[:i]),
                **common,
            )
        if signed_roots[size] != root:
            return _fail(
                f"anchors[{i}] anchors root {a['root']} for size {size}, but the log signed root "
                f"{signed_roots[size].hex()} for that size",
                cp,
                n,
                len(others),
                anchors=tuple(b.anchors[:i]),
                **common,
            )
    checks, unknown = _witness_checks(signed, witnesses, verifier)
    common |= {"witnesses": checks, "unknown_signatures": unknown, "anchors": tuple(b.anchors)}
    for c in checks:
        if c.altered:
            return _fail(f"cosignature: {c.problem}", cp, n, len(others), **common)
    valid = sum(1 for c in checks if c.cosignature is not None)
    if valid < want:
        missing = "; ".join(c.problem or "" for c in checks if c.cosignature is None)
        return _fail(
            f"cosignatures: {valid} of the {len(witnesses)} trusted witnesses cosigned the checkpoint, "
            f"{want} required ({missing})",
            cp,
            n,
            len(others),
            **common,
        )
    summary = (
        f"checkpoint of {cp.origin} at size {cp.tree_size} verified; "
        f"entries checked: {n}, consistency proofs checked: {len(others)}"
    )
    if v2 or witnesses:
        summary += f", witness cosignatures: {valid}, anchors matched: {len(b.anchors)}"
    return BundleReport(True, summary, cp, n, len(others), **common)
