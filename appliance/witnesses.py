"""Witnesses of this node's ledger: which ones, pushing checkpoints to them, keeping their cosignatures.

A witness (``appliance witness serve`` on another machine, or any c2sp.org/tlog-witness service)
cosigns a checkpoint only if it is consistent with the last one it cosigned for this log, so
checkpoints that carry cosignatures from witnesses an auditor trusts cannot be one side of a split
view. This module is the log's half of that protocol:

* **Registry.** ``<data_dir>/witnesses.json``: name (the witness key's name), submission URL and
  verifier key of each witness; ``appliance witness add URL KEY`` / ``remove NAME`` change it and
  record ``ledger.witness_added`` / ``ledger.witness_removed``.
* **Pushing.** The scheduler's ``ledger.witness`` job (only when witnesses are configured) sends the
  latest signed checkpoint to every witness with a consistency proof from the size that witness last
  cosigned; a 409 names the witness's size and the push is retried once from there. The returned
  cosignature is verified with the configured key before it is kept, and each cosigning appends a
  ``ledger.cosigned`` entry (witness, size, root, the cosignature line itself). A witness that is
  down or refuses is logged and tried again on the next run; nothing here ever holds the ledger's
  lock, so witnesses never delay appends. A checkpoint whose only new entries are housekeeping (this
  job's own ``ledger.cosigned``, the anchoring job's ``ledger.anchored``) is not pushed, or each
  cosigning would cause the next.
* **Cosigned checkpoints.** ``<data_dir>/cosigned/<size>.note``: the checkpoint note with every
  cosignature collected for it merged in (the newest few sizes are kept). The checkpoint shown to
  auditors (``GET /v1/ledger/checkpoint``, ``appliance ledger head``) and evidence bundles use them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import urllib3

from appliance._files import endpoint, write_json, write_text
from appliance.errors import UnknownWitness, WitnessConfigError
from ledger.checkpoint import SignedCheckpoint, parse_checkpoint
from ledger.errors import CheckpointInvalid, LedgerError
from ledger.witness import (
    WitnessVerifier,
    cosignatures,
    format_add_checkpoint,
    merge_signatures,
    verify_cosignature,
)

if TYPE_CHECKING:
    from appliance.node import Node
    from ledger.log import Ledger

__all__ = ["HOUSEKEEPING", "OWN_ACTION", "WitnessEntry", "WitnessService", "only_housekeeping", "paths"]

log = logging.getLogger("appliance.witnesses")

_ACTOR = "system:witness"
#: The entry each cosigning appends; entries of only this kind do not make a checkpoint worth pushing.
OWN_ACTION = "ledger.cosigned"
#: Housekeeping entries (actor, action) that do not make a checkpoint worth pushing either: this job's
#: own, and the anchoring job's (else anchoring and cosigning would take turns feeding each other).
HOUSEKEEPING = frozenset(
    {
        (_ACTOR, OWN_ACTION),
        ("system:anchor", "ledger.anchored"),
        ("system:anchor", "ledger.anchor_dropped"),
    }
)


def only_housekeeping(ledger: Ledger, size: int, end: int) -> bool:
    """Whether entries ``[size, end)`` are all :data:`HOUSEKEEPING` (cosignings, anchorings).

    Both jobs ask it before acting on "the log grew": each one's own entry would otherwise give the
    other a reason to run, and a quiet node would keep cosigning and anchoring (a transaction each).
    """
    for seq in range(end - 1, size - 1, -1):  # newest first: usually the answer comes at once
        e = ledger.entry(seq)
        if (e.actor, e.action) not in HOUSEKEEPING:
            return False
    return True


_REGISTRY_FORMAT = "appliance-witnesses/1"
_KEEP_NOTES = 32
_MAX_RESPONSE = 64 * 1024
_SIZE_TYPE = "text/x.tlog.size"


def paths(data_dir: Path) -> dict[str, Path]:
    return {
        "registry": data_dir / "witnesses.json",
        "lock": data_dir / "state" / "witnesses.lock",
        "status": data_dir / "state" / "witnesses.json",
        "cosigned": data_dir / "cosigned",
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_url(url: str) -> str:
    """The submission prefix, normalised (no trailing slash); :class:`WitnessConfigError` if unusable."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise WitnessConfigError(f"witness URL {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WitnessConfigError(
            f"witness URL {url!r} must be http(s)://host[:port][/prefix], the witness's submission prefix "
            "(the node posts to <prefix>/add-checkpoint)"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise WitnessConfigError(f"witness URL {url!r} must not carry a query, fragment or credentials")
    return url.strip().rstrip("/")


def read_key(key: str) -> WitnessVerifier:
    """A witness verifier key from its text; :class:`WitnessConfigError` says what is wrong."""
    try:
        return WitnessVerifier.from_vkey(key.strip())
    except CheckpointInvalid as exc:
        raise WitnessConfigError(str(exc)) from None


@dataclass(frozen=True)
class WitnessEntry:
    """One configured witness."""

    name: str
    url: str
    vkey: str
    added: str

    @property
    def verifier(self) -> WitnessVerifier:
        return WitnessVerifier.from_vkey(self.vkey)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "vkey": self.vkey, "added": self.added}


class _PushFailed(Exception):
    """One witness could not cosign this time; the message says why (logged, retried next run)."""


class WitnessService:
    """The node's witnesses (``node.witnesses``)."""

    def __init__(self, node: Node, *, timeout: float | None = None) -> None:
        self._node = node
        self._paths = paths(node.settings.data_dir)
        self._timeout = timeout if timeout is not None else node.settings.witness.timeout_seconds

    # -- the registry ------------------------------------------------------------------------------
    def witnesses(self) -> list[WitnessEntry]:
        path = self._paths["registry"]
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise WitnessConfigError(f"{path} is unreadable ({exc}); fix or remove it") from exc
        if not isinstance(data, dict) or data.get("format") != _REGISTRY_FORMAT:
            raise WitnessConfigError(f"{path} is not an {_REGISTRY_FORMAT} file; fix or remove it")
        try:
            return [WitnessEntry(w["name"], w["url"], w["vkey"], w["added"]) for w in data["witnesses"]]
        except (KeyError, TypeError) as exc:
            raise WitnessConfigError(f"{path}: a witness record is damaged ({exc})") from exc

    @property
    def configured(self) -> bool:
        try:
            return bool(self.witnesses())
        except WitnessConfigError:
            return True  # a damaged registry: the job runs and reports it rather than going quiet

    def _save(self, entries: list[WitnessEntry]) -> None:
        write_json(
            self._paths["registry"], {"format": _REGISTRY_FORMAT, "witnesses": [e.as_dict() for e in entries]}
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        path = self._paths["lock"]
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def add(self, url: str, vkey: str, *, actor: str, request_id: str | None = None) -> dict[str, Any]:
        """Add a witness by its submission URL and verifier key; records ``ledger.witness_added``."""
        url = check_url(url)
        verifier = read_key(vkey)
        if verifier.key_hash == self._node_key_hash():
            raise WitnessConfigError("that is this node's own key; a log cannot witness itself")
        with self._locked():
            entries = self.witnesses()
            for e in entries:
                if e.name == verifier.name:
                    raise WitnessConfigError(
                        f"a witness named {e.name!r} is configured already ({e.url}); remove it first"
                    )
            entry = WitnessEntry(verifier.name, url, verifier.vkey(), _now())
            self._save([*entries, entry])
            try:
                receipt = self._node.record(
                    actor,
                    "ledger.witness_added",
                    details={
                        "witness": entry.name,
                        "key_id": verifier.key_hash.hex(),
                        "vkey": entry.vkey,
                        "endpoint": endpoint(url),
                    },
                    request_id=request_id,
                )
            except BaseException:
                self._save(entries)  # unrecorded, so undone
                raise
        scheduled = self._schedule()
        return {
            **entry.as_dict(),
            "key_id": verifier.key_hash.hex(),
            "ledger_seq": receipt.seq,
            "job_scheduled": scheduled,
        }

    def _schedule(self) -> bool:
        """Store the ``ledger.witness`` job for a running scheduler to pick up (the first witness
        turns it on); False if the job store cannot be reached (the next scheduler start adds it)."""
        try:
            from appliance.scheduler import ensure_job

            ensure_job(self._node, "ledger.witness")
        except Exception:  # the witness is added either way; the scheduler catches up
            log.warning(
                "the ledger.witness job could not be stored; it starts with the scheduler", exc_info=True
            )
            return False
        return True

    def remove(self, name: str, *, actor: str, request_id: str | None = None) -> dict[str, Any]:
        """Stop pushing to a witness (by name or key id); records ``ledger.witness_removed``. Its past
        cosignatures stay valid."""
        with self._locked():
            entries = self.witnesses()
            gone = [e for e in entries if name in (e.name, e.verifier.key_hash.hex())]
            if not gone:
                known = ", ".join(e.name for e in entries) or "none"
                raise UnknownWitness(f"no witness named {name!r} (configured: {known})")
            kept = [e for e in entries if e is not gone[0]]
            self._save(kept)
            try:
                receipt = self._node.record(
                    actor,
                    "ledger.witness_removed",
                    details={"witness": gone[0].name, "key_id": gone[0].verifier.key_hash.hex()},
                    request_id=request_id,
                )
            except BaseException:
                self._save(entries)
                raise
        return {**gone[0].as_dict(), "ledger_seq": receipt.seq}

    def _node_key_hash(self) -> bytes:
        from ledger.checkpoint import NoteVerifier

        return NoteVerifier.from_vkey(self._node.vkey).key_hash

    # -- status --------------------------------------------------------------------------------------
    def _load_status(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self._paths["status"].read_text("utf-8"))
            return {k: dict(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError):
            log.warning("%s is unreadable; witnesses are pushed from size 0 again", self._paths["status"])
            return {}

    def status(self) -> list[dict[str, Any]]:
        """Every configured witness with what the node knows of it: last size cosigned, last error."""
        st = self._load_status()
        out = []
        for e in self.witnesses():
            s = st.get(e.name, {})
            out.append(
                {
                    **e.as_dict(),
                    "key_id": e.verifier.key_hash.hex(),
                    "cosigned_size": int(s.get("size", 0)),
                    "cosigned_root": s.get("root"),
                    "last_cosigned": s.get("last_ok"),
                    "last_attempt": s.get("last_attempt"),
                    "failures": int(s.get("failures", 0)),
                    "last_error": s.get("last_error"),
                }
            )
        return out

    # -- cosigned checkpoints ------------------------------------------------------------------------
    def _note_path(self, size: int) -> Path:
        return self._paths["cosigned"] / f"{size:020d}.note"

    def cosigned_note(self, size: int) -> str | None:
        """The stored checkpoint note of ``size`` with its cosignatures merged in, or None."""
        try:
            return self._note_path(size).read_text("utf-8")
        except FileNotFoundError:
            return None

    def _store(self, signed: SignedCheckpoint, line: str) -> str:
        old = self.cosigned_note(signed.checkpoint.tree_size)
        base = old if old is not None and parse_checkpoint(old).body == signed.body else signed.text
        note = merge_signatures(base, line + "\n")
        write_text(self._note_path(signed.checkpoint.tree_size), note)
        notes = sorted(self._paths["cosigned"].glob("*.note"))
        for stale in notes[:-_KEEP_NOTES]:
            stale.unlink(missing_ok=True)
        return note

    def cosigned_checkpoints(self) -> list[tuple[SignedCheckpoint, list[dict[str, Any]]]]:
        """Stored cosigned checkpoints, newest first, each with its cosignatures that verify with a
        configured witness key (an unknown or failing line is not listed)."""
        verifiers = [e.verifier for e in self._safe_witnesses()]
        out = []
        for path in sorted(self._paths["cosigned"].glob("*.note"), reverse=True):
            try:
                signed = parse_checkpoint(path.read_text("utf-8"))
            except (OSError, CheckpointInvalid):
                continue
            valid = [c.as_dict() for _, c in cosignatures(signed, verifiers) if not isinstance(c, Exception)]
            out.append((signed, valid))
        return out

    def _safe_witnesses(self) -> list[WitnessEntry]:
        try:
            return self.witnesses()
        except WitnessConfigError:
            return []

    def view(self, signed: SignedCheckpoint) -> dict[str, Any]:
        """How auditors see a checkpoint: its note with every cosignature collected, those
        cosignatures (verified), and the newest cosigned checkpoint if it is another one."""
        stored = self.cosigned_note(signed.checkpoint.tree_size)
        note = signed.text
        if stored is not None and parse_checkpoint(stored).body == signed.body:
            note = stored
        verifiers = [e.verifier for e in self._safe_witnesses()]
        cosigned = [
            c.as_dict()
            for _, c in cosignatures(parse_checkpoint(note), verifiers)
            if not isinstance(c, Exception)
        ]
        witnessed = None
        for other, valid in self.cosigned_checkpoints():
            if valid:
                if other.body != signed.body:
                    witnessed = {**other.as_dict(), "cosignatures": valid}
                break
        return {**signed.as_dict(), "note": note, "cosignatures": cosigned, "witnessed": witnessed}

    # -- pushing ---------------------------------------------------------------------------------------
    def tick(self, trigger: str = "schedule") -> dict[str, Any]:
        """The ``ledger.witness`` job: push the latest signed checkpoint to every witness that lacks it."""
        entries = self.witnesses()
        led = self._node.ledger
        led.refresh()
        if not entries:
            return {"witnesses": 0, "tree_size": led.size, "note": "no witnesses configured"}
        signed = led.latest_checkpoint() or led.sign_checkpoint()
        size = signed.checkpoint.tree_size
        with self._locked():
            status = self._load_status()
        summary: dict[str, Any] = {"tree_size": size, "cosigned": [], "up_to_date": [], "failed": {}}
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=self._timeout, read=self._timeout), retries=False
        )
        try:
            for entry in entries:
                st = status.setdefault(entry.name, {})
                have = int(st.get("size", 0))
                if have == size and st.get("root") == signed.checkpoint.root_hash.hex():
                    summary["up_to_date"].append(entry.name)
                    continue
                if 0 < have < size and only_housekeeping(led, have, size):
                    summary["up_to_date"].append(entry.name)
                    continue
                st["last_attempt"] = _now()
                try:
                    line, when = self._push(http, entry, signed, have)
                except _PushFailed as exc:
                    st["failures"] = int(st.get("failures", 0)) + 1
                    st["last_error"] = str(exc)
                    summary["failed"][entry.name] = str(exc)
                    log.warning("witness %s did not cosign size %d: %s", entry.name, size, exc)
                    continue
                self._store(signed, line)
                receipt = self._node.record(
                    _ACTOR,
                    OWN_ACTION,
                    details={
                        "witness": entry.name,
                        "key_id": entry.verifier.key_hash.hex(),
                        "tree_size": size,
                        "root_hash": signed.checkpoint.root_hash.hex(),
                        "time": when,
                        "cosignature": line,
                    },
                )
                st.update(
                    size=size,
                    root=signed.checkpoint.root_hash.hex(),
                    last_ok=_now(),
                    failures=0,
                    last_error=None,
                    ledger_seq=receipt.seq,
                )
                summary["cosigned"].append(entry.name)
        finally:
            http.clear()
            with self._locked():
                write_json(self._paths["status"], status)
        return summary

    def _push(
        self, http: urllib3.PoolManager, entry: WitnessEntry, signed: SignedCheckpoint, old: int
    ) -> tuple[str, int]:
        """Send ``signed`` from size ``old`` (once more from the size a 409 names); the verified line."""
        size = signed.checkpoint.tree_size
        url = entry.url + "/add-checkpoint"
        for attempt in range(2):
            if old > size:
                raise _PushFailed(
                    f"the witness has cosigned size {old} of this log, larger than the latest checkpoint "
                    f"({size}): it saw another history of this log, or the node's ledger was restored"
                )
            try:
                proof = self._node.ledger.consistency_proof(old, size) if old else []
            except LedgerError as exc:
                raise _PushFailed(f"no consistency proof from size {old}: {exc}") from None
            body = format_add_checkpoint(old, proof, signed.text)
            try:
                resp = http.request(
                    "POST",
                    url,
                    body=body,
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                    preload_content=False,
                )
                data = resp.read(_MAX_RESPONSE + 1, decode_content=True)
                resp.release_conn()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _PushFailed(f"{endpoint(url)} unreachable ({type(exc).__name__}: {exc})") from None
            text = data[:_MAX_RESPONSE].decode("utf-8", "replace")
            if resp.status == 200:
                return self._cosignature(entry, signed, text)
            if resp.status == 409 and resp.headers.get("Content-Type", "").startswith(_SIZE_TYPE):
                try:
                    theirs = int(text.strip())
                except ValueError:
                    raise _PushFailed(f"409 with an unreadable size {text[:40]!r}") from None
                if theirs == old:
                    raise _PushFailed(
                        f"the witness refuses size {size}: it cosigned another root for that size of this "
                        "log (a fork; see its conflicts.jsonl)"
                    )
                if attempt == 0:
                    log.info(
                        "witness %s has size %d, not %d: sending a proof from there", entry.name, theirs, old
                    )
                old = theirs
                continue
            raise _PushFailed(f"HTTP {resp.status} from {endpoint(url)}: {' '.join(text.split())[:300]}")
        raise _PushFailed(f"the witness still reports another size ({old}) after a retry")

    @staticmethod
    def _cosignature(entry: WitnessEntry, signed: SignedCheckpoint, text: str) -> tuple[str, int]:
        verifier = entry.verifier
        mine = [line for line in text.split("\n") if line.startswith(f"\u2014 {verifier.name} ")]
        for line in mine:
            try:
                when = verify_cosignature(merge_signatures(signed.text, line + "\n"), verifier)
            except CheckpointInvalid:
                continue
            return line, when
        why = "none by its configured key" if not mine else "it does not verify with the configured key"
        raise _PushFailed(f"the witness answered 200 but {why} ({' '.join(text.split())[:200]!r})")


def summary_line(result: Mapping[str, Any]) -> str:
    """One line for the CLI: who cosigned what."""
    parts = [f"size {result.get('tree_size')}"]
    for key in ("cosigned", "up_to_date"):
        if result.get(key):
            parts.append(f"{key.replace('_', ' ')}: {', '.join(result[key])}")
    for name, why in (result.get("failed") or {}).items():
        parts.append(f"{name} failed: {why}")
    return "; ".join(parts)
