"""Ledger entries and their canonical encoding.

An entry is hashed as the exact bytes of its canonical JSON (RFC 8785 style:
keys sorted, UTF-8, no insignificant whitespace). Two rules keep that encoding
unambiguous across encoders and languages, so an auditor can re-derive it:

* object keys are ASCII (code-point, UTF-8 and UTF-16 orderings then agree);
* numbers are integers within ±(2**53 - 1); decimals go in strings, because
  no two JSON libraries agree on how to print a float.

``subject`` holds pseudonyms only (``kind:hex``), never raw identifiers: the
ledger refuses anything else, which is what keeps it free of PII.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger._kernel import plain_json as _plain_json
from ledger.errors import EntryInvalid

_orjson: Any
try:  # orjson is ~15x faster; the stdlib encoder is the byte-identical fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the twin test
    _orjson = None

__all__ = [
    "GENESIS_PREV",
    "MAX_ENTRY_BYTES",
    "Entry",
    "canonical_json",
    "canonical_json_stdlib",
    "check_record",
    "entry_link",
    "parse_entry",
    "utc_timestamp",
]

MAX_ENTRY_BYTES = 64 * 1024
#: ``prev`` of entry 0: the chain starts from 32 zero bytes.
GENESIS_PREV = "0" * 64
MAX_DEPTH = 16
MAX_SAFE_INT = 2**53 - 1
_ACTION = re.compile(r"(?=.{3,64}\Z)[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_PSEUDONYM = re.compile(r"[a-z][a-z0-9_]{0,31}:[0-9a-f]{16,64}")
_ENTRY_KEYS = ("action", "actor", "details", "prev", "request_id", "seq", "subject", "time")


def canonical_json_stdlib(value: Any) -> bytes:
    """Canonical JSON with the standard library only (the offline tools' encoder)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


canonical_json: Callable[[Any], bytes]
_loads: Callable[[bytes], Any]
if _orjson is not None:
    _OPTS = _orjson.OPT_SORT_KEYS

    #: Canonical JSON bytes of an already-checked value (orjson: the same bytes as the
    #: stdlib encoder; a C-level partial because the ledger's batch loop calls it per entry).
    canonical_json = functools.partial(_orjson.dumps, option=_OPTS)

    _loads = _orjson.loads
else:  # pragma: no cover
    canonical_json = canonical_json_stdlib
    _loads = json.loads


# Actors, actions, pseudonyms and detail keys repeat endlessly: remember the ones already checked.
_OK_ACTIONS: set[str] = set()
_OK_ACTORS: set[str] = set()
_OK_SUBJECTS: set[str] = set()
_OK_KEYS: set[str] = set()
_OK_MAX = 65536


def _bad_key(k: Any, where: str) -> EntryInvalid:
    return EntryInvalid(f"{where}: key {k!r} must be printable ASCII, 1-128 characters")


def _check_str(v: str, where: str) -> None:
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EntryInvalid(f"{where}: string is not valid Unicode (lone surrogate)") from exc


def _check_value(value: Any, where: str, depth: int) -> None:
    # Flat scalars are checked inline: this runs for every entry of every batch.
    t = type(value)
    if t is dict:
        if depth > MAX_DEPTH:
            raise EntryInvalid(f"{where}: nested deeper than {MAX_DEPTH} levels")
        for k, v in value.items():
            if k not in _OK_KEYS:
                if type(k) is not str or not (0 < len(k) <= 128 and k.isascii() and k.isprintable()):
                    raise _bad_key(k, where)
                if len(_OK_KEYS) >= _OK_MAX:
                    _OK_KEYS.clear()
                _OK_KEYS.add(k)
            tv = type(v)
            if tv is str:
                if not v.isascii():
                    _check_str(v, where)
            elif tv is int:
                if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                    raise EntryInvalid(
                        f"{where}.{k}: integer {v} is outside ±(2**53-1); record it as a string"
                    )
            elif v is not None and tv is not bool:
                _check_value(v, f"{where}.{k}", depth + 1)
    elif t is list or t is tuple:
        if depth > MAX_DEPTH:
            raise EntryInvalid(f"{where}: nested deeper than {MAX_DEPTH} levels")
        for i, v in enumerate(value):
            tv = type(v)
            if tv is str:
                if not v.isascii():
                    _check_str(v, where)
            elif tv is int:
                if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                    _check_value(v, f"{where}[{i}]", depth + 1)
            elif v is not None and tv is not bool:
                _check_value(v, f"{where}[{i}]", depth + 1)
    elif t is str:
        _check_str(value, where)
    elif t is int:
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise EntryInvalid(f"{where}: integer {value} is outside ±(2**53-1); record it as a string")
    elif value is None or t is bool:
        pass
    elif t is float:
        raise EntryInvalid(f"{where}: floats are not allowed in ledger entries; record {value!r} as a string")
    else:
        raise EntryInvalid(f"{where}: {t.__name__} is not a JSON value")


_ACTOR = re.compile(r"[\x20-\x7e]{1,128}")


def _valid(value: Any, ok: set[str], pattern: re.Pattern[str]) -> bool:
    if type(value) is not str:
        return False
    if value in ok:
        return True
    if pattern.fullmatch(value):
        if len(ok) >= _OK_MAX:
            ok.clear()
        ok.add(value)
        return True
    return False


def check_record(
    actor: Any, action: Any, subject: Any = (), details: Any = None, request_id: Any = None
) -> tuple[str, str, list[str], dict[str, Any], str | None]:
    """Validate the caller-supplied fields of an entry; return them normalised.

    Raises :class:`EntryInvalid` naming the field and the fix.
    """
    if action not in _OK_ACTIONS and not _valid(action, _OK_ACTIONS, _ACTION):
        raise EntryInvalid(
            f"action {action!r} must be a dotted lower-case verb such as 'record.read' "
            "(at most 64 characters)"
        )
    if actor not in _OK_ACTORS and not _valid(actor, _OK_ACTORS, _ACTOR):
        raise EntryInvalid(f"actor {actor!r} must be printable ASCII, 1-128 characters")
    if type(subject) is not list:
        if isinstance(subject, str) or not isinstance(subject, Sequence):
            raise EntryInvalid("subject must be a list of pseudonyms such as ['cust:9f2c1a0b3d4e5f60']")
        subject = list(subject)
    else:
        subject = subject[:]
    if len(subject) > 64:
        raise EntryInvalid(f"subject lists {len(subject)} pseudonyms; at most 64 per entry")
    for s in subject:
        if s not in _OK_SUBJECTS and not _valid(s, _OK_SUBJECTS, _PSEUDONYM):
            raise EntryInvalid(
                f"subject {s!r} is not a pseudonym ('kind:hex', e.g. 'cust:9f2c1a0b3d4e5f60'); "
                "pseudonymise identifiers before they reach the ledger"
            )
    if details is None:
        details = {}
    elif type(details) is not dict:
        if not isinstance(details, Mapping):
            raise EntryInvalid("details must be a JSON object")
        details = dict(details)
    if _plain_json is None or not _plain_json(details):
        _check_value(details, "details", 1)
    # Request ids never repeat: checked each time, not remembered (a cache of them only grows).
    if request_id is not None and (type(request_id) is not str or not _ACTOR.fullmatch(request_id)):
        raise EntryInvalid(f"request_id {request_id!r} must be printable ASCII, 1-128 characters")
    return actor, action, subject, details, request_id


def utc_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with microseconds, e.g. ``2026-11-24T10:00:00.123456Z``."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    """One recorded entry: its fields and the exact bytes that were hashed."""

    seq: int
    time: str
    actor: str
    action: str
    subject: tuple[str, ...]
    details: Mapping[str, Any]
    prev: str
    request_id: str | None
    raw: bytes = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "subject": list(self.subject),
            "details": dict(self.details),
            "prev": self.prev,
            "request_id": self.request_id,
        }


_KEYSET = frozenset(_ENTRY_KEYS)


def entry_link(raw: bytes) -> tuple[int, str]:
    """``(seq, prev)`` of stored entry bytes: just what a chain check needs, fast.

    Raises :class:`EntryInvalid` when the bytes are not an entry; the full field
    checks are :func:`parse_entry`'s.
    """
    try:
        obj = _loads(raw)
    except ValueError as exc:
        raise EntryInvalid(f"entry is not JSON: {exc}") from exc
    if type(obj) is not dict or obj.keys() != _KEYSET:
        raise EntryInvalid(f"entry must have exactly the fields {', '.join(_ENTRY_KEYS)}")
    seq, prev = obj["seq"], obj["prev"]
    if type(seq) is not int or type(prev) is not str:
        raise EntryInvalid("entry seq must be an integer and prev a string")
    return seq, prev


def parse_entry(raw: bytes) -> Entry:
    """Parse stored entry bytes; raises :class:`EntryInvalid` if they are not an entry."""
    try:
        obj = _loads(raw)
    except ValueError as exc:
        raise EntryInvalid(f"entry is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or tuple(sorted(obj)) != _ENTRY_KEYS:
        raise EntryInvalid(f"entry must have exactly the fields {', '.join(_ENTRY_KEYS)}")
    seq, prev = obj["seq"], obj["prev"]
    if type(seq) is not int or seq < 0:
        raise EntryInvalid(f"entry seq {seq!r} is not a non-negative integer")
    if not isinstance(prev, str) or len(prev) != 64:
        raise EntryInvalid(f"entry {seq}: prev must be 64 hex characters")
    for name, kind in (("time", str), ("actor", str), ("action", str), ("subject", list), ("details", dict)):
        if not isinstance(obj[name], kind):
            raise EntryInvalid(
                f"entry {seq}: {name} must be a JSON {'string' if kind is str else kind.__name__}"
            )
    if obj["request_id"] is not None and not isinstance(obj["request_id"], str):
        raise EntryInvalid(f"entry {seq}: request_id must be a string or null")
    return Entry(
        seq=seq,
        time=obj["time"],
        actor=obj["actor"],
        action=obj["action"],
        subject=tuple(obj["subject"]),
        details=obj["details"],
        prev=prev,
        request_id=obj["request_id"],
        raw=bytes(raw),
    )
