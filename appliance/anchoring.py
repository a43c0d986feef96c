"""Anchoring in the node: signed checkpoints written to Ethereum or Fabric on a schedule, and recorded.

The back ends live in :mod:`ledger.anchors` (``ethereum``, ``fabric``); this module decides when to
anchor, what, and what to remember:

* **When.** The scheduler's ``ledger.anchor`` job calls :meth:`AnchorService.tick` every
  ``anchor.check_seconds``. It anchors when the log holds new entries (its own entries do not count,
  or anchoring would feed itself; nor do entries that are only witnesses' cosignings) and either
  ``every_minutes`` passed since the last anchoring or ``every_entries`` arrived. Anchoring runs
  beside the append paths, never inside them: a chain that is down or slow delays anchors, never
  entries.
* **What.** The latest signed checkpoint (signed first if the log grew), if its size is larger than
  the last size anchored. A size the chain already holds (a crash after sending, a transaction mined
  after its wait gave up) is adopted when its root is ours, and is a fork (:class:`AnchorMismatch`)
  when it is not.
* **Records.** Each anchoring appends ``ledger.anchored`` (chain, network, contract, tx, block,
  size, root) and a line in ``<data_dir>/anchors.jsonl`` (:class:`~ledger.anchors.AnchorIndex`). The
  job also follows pending transactions: enough confirmations make them ``confirmed``; one that a
  reorganisation removed becomes ``dropped``, appends ``ledger.anchor_dropped`` and is anchored again.
* **Failures** back off exponentially (``retry_backoff_seconds`` doubling up to the cap), kept in
  ``<data_dir>/state/anchoring.json`` so every process and a restart see the same schedule.

The account key stays in a 0600 file (``keys/anchor-ethereum.key`` unless ``anchor.ethereum.key_file``
says otherwise) and reaches only the back end; it is never logged, recorded or returned.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance._files import endpoint, write_json
from appliance.errors import KeyFileError
from appliance.keys import read_secret, write_secret
from appliance.settings import AnchorSettings
from appliance.witnesses import only_housekeeping
from ledger.anchors import (
    Anchor,
    AnchorError,
    AnchorIndex,
    AnchorMismatch,
    AnchorRecord,
    AnchorUnavailable,
)

if TYPE_CHECKING:
    from appliance.node import Node

__all__ = ["AnchorService", "AnchoringBusy", "AnchoringNotConfigured", "build_anchor"]

log = logging.getLogger("appliance.anchoring")

_ACTOR = "system:anchor"
#: Entries this service appends; they do not make the log "grown" for the due logic.
OWN_ACTIONS = ("ledger.anchored", "ledger.anchor_dropped", "ledger.anchor_deployed")
_DEPLOY_FORMAT = "appliance-anchor-deployment/1"
_LOCK_WAIT_SECONDS = 10.0
_OWN_KEPT = 64


class AnchoringNotConfigured(AnchorError):
    """``anchor.chain`` is ``none``, or the chosen chain lacks a setting (the message names it)."""


class AnchoringBusy(AnchorUnavailable):
    """Another process (the scheduler, another command) is anchoring right now; retry in a moment."""


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class _State:
    """What survives between runs and processes: the backoff, and what counts as new entries."""

    failures: int = 0
    next_attempt: float | None = None
    last_error: str | None = None
    #: Sequence numbers of the latest entries this service appended (they are not "new entries").
    own_seqs: tuple[int, ...] = ()
    last_anchored_at: float | None = None

    def own_after(self, size: int) -> int:
        """How many of the entries from ``size`` on are this service's own."""
        return sum(1 for q in self.own_seqs if q >= size)

    def with_own(self, seq: int) -> _State:
        return replace(self, own_seqs=(*self.own_seqs, seq)[-_OWN_KEPT:])


def paths(data_dir: Path) -> dict[str, Path]:
    return {
        "deployment": data_dir / "anchor.json",
        "index": data_dir / "anchors.jsonl",
        "state": data_dir / "state" / "anchoring.json",
        "lock": data_dir / "state" / "anchoring.lock",
        "ethereum_key": data_dir / "keys" / "anchor-ethereum.key",
    }


def read_deployment(data_dir: Path) -> dict[str, Any] | None:
    """What ``appliance anchor deploy`` recorded, or None."""
    path = paths(data_dir)["deployment"]
    if not path.exists():
        return None
    try:
        data = json.loads(read_secret(path))
    except (KeyFileError, ValueError) as exc:
        raise AnchorError(
            f"{path} is unreadable ({exc}); fix its mode or deploy again with --replace"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != _DEPLOY_FORMAT:
        raise AnchorError(f"{path} is not an {_DEPLOY_FORMAT} file; deploy again with --replace")
    return data


def build_anchor(settings: AnchorSettings, data_dir: Path) -> Anchor:
    """The back end ``anchor.chain`` names, from settings and the recorded deployment.

    web3 and grpc are imported here, on first use, so processes that only read the index (HTTP
    workers listing anchors) never load them.
    """
    if settings.chain == "ethereum":
        return _ethereum(settings, data_dir)
    if settings.chain == "fabric":
        return _fabric(settings)
    raise AnchoringNotConfigured(
        "anchoring is not configured on this node: set anchor.chain to ethereum or fabric "
        "(docs/anchoring.md); for Ethereum, deploy the contract first with `appliance anchor deploy`"
    )


def _ethereum(settings: AnchorSettings, data_dir: Path) -> Anchor:
    e = settings.ethereum
    dep = read_deployment(data_dir)
    dep = dep if dep is not None and dep.get("chain") == "ethereum" else {}
    rpc = e.rpc_url or dep.get("rpc_url")
    contract = e.contract or dep.get("contract")
    if not rpc or not contract:
        missing = " and ".join(n for n, v in (("rpc_url", rpc), ("contract", contract)) if not v)
        raise AnchoringNotConfigured(
            f"anchor.chain is ethereum but anchor.ethereum.{missing} is unset and no contract was deployed "
            "from this node; run `appliance anchor deploy --chain ethereum --rpc URL --key FILE` or set them"
        )
    key_path = e.key_file or paths(data_dir)["ethereum_key"]
    try:
        key = read_secret(Path(key_path))
    except KeyFileError as exc:
        raise AnchorError(f"the Ethereum account key: {exc}") from exc
    same = str(contract).lower() == str(dep.get("contract", "")).lower()
    chain_id = e.chain_id if e.chain_id is not None else (dep.get("chain_id") if same else None)
    from ledger.anchors.ethereum import EthereumAnchor

    return EthereumAnchor.connect(
        rpc,
        contract,
        key,
        chain_id=chain_id,
        confirmations=settings.confirmations,
        timeout=e.timeout_seconds,
        receipt_timeout=e.receipt_timeout_seconds,
        from_block=int(dep.get("block", 0)) if same else 0,
    )


def _fabric(settings: AnchorSettings) -> Anchor:
    f = settings.fabric
    needed = ("endpoint", "channel", "chaincode", "msp_id", "cert_file", "key_file")
    missing = [n for n in needed if getattr(f, n) is None]
    if missing:
        raise AnchoringNotConfigured(
            f"anchor.chain is fabric but anchor.fabric.{', anchor.fabric.'.join(missing)} "
            "is unset; see docs/anchoring.md"
        )
    try:
        from ledger.anchors.fabric import FabricAnchor
    except ImportError as exc:
        raise AnchorError(
            f"the Fabric back end (ledger.anchors.fabric) cannot be loaded in this installation: {exc}"
        ) from exc
    assert f.cert_file is not None and f.key_file is not None
    try:
        cert = Path(f.cert_file).read_bytes()
        tls = Path(f.tls_ca_file).read_bytes() if f.tls_ca_file is not None else None
        tls_cert = Path(f.tls_client_cert_file).read_bytes() if f.tls_client_cert_file is not None else None
        key = read_secret(Path(f.key_file))
    except KeyFileError as exc:
        raise AnchorError(f"the Fabric identity key: {exc}") from exc
    except OSError as exc:
        raise AnchorError(f"a Fabric identity file cannot be read: {exc}") from exc
    try:
        tls_key = read_secret(Path(f.tls_client_key_file)) if f.tls_client_key_file is not None else None
    except KeyFileError as exc:
        raise AnchorError(f"the Fabric TLS client key: {exc}") from exc
    except OSError as exc:
        raise AnchorError(f"the Fabric TLS client key cannot be read: {exc}") from exc
    return FabricAnchor.connect(  # type: ignore[no-any-return]
        endpoint=str(f.endpoint),
        channel=str(f.channel),
        chaincode=str(f.chaincode),
        msp_id=str(f.msp_id),
        cert_pem=cert,
        key_pem=key,
        tls_root_cert=tls,
        tls_client_cert=tls_cert,
        tls_client_key=tls_key,
        tls_server_name=f.tls_server_name,
        timeout=f.timeout_seconds,
    )


class AnchorService:
    """The node's anchoring (``node.anchoring``); ``anchor`` replaces the back end built from settings."""

    def __init__(self, node: Node, anchor: Anchor | None = None) -> None:
        self._node = node
        self._anchor = anchor
        self._paths = paths(node.settings.data_dir)
        self.index = AnchorIndex(self._paths["index"])

    @property
    def settings(self) -> AnchorSettings:
        return self._node.settings.anchor

    @property
    def chain(self) -> str:
        return self._anchor.chain if self._anchor is not None else self.settings.chain

    @property
    def configured(self) -> bool:
        return self.chain != "none"

    def backend(self) -> Anchor:
        """The back end, built on first use; :class:`AnchoringNotConfigured` says what is missing."""
        if self._anchor is None:
            self._anchor = build_anchor(self.settings, self._node.settings.data_dir)
        return self._anchor

    def deployment(self) -> dict[str, Any] | None:
        return read_deployment(self._node.settings.data_dir)

    # -- the records -----------------------------------------------------------------------------
    def records(self) -> list[AnchorRecord]:
        """Every anchoring this node made, on any chain, with its latest status, oldest first."""
        return self.index.records()

    def _contract(self) -> str | None:
        """The contract (address or chaincode) anchoring goes to, without touching the network."""
        if self._anchor is not None:
            return self._anchor.contract
        s = self.settings
        if s.chain == "ethereum":
            dep = self.deployment() or {}
            return s.ethereum.contract or dep.get("contract")
        if s.chain == "fabric":
            return s.fabric.chaincode
        return None

    def _ours(self, contract: str | None = None) -> list[AnchorRecord]:
        contract = contract if contract is not None else self._contract()
        if contract is None:
            return []
        chain = self.chain
        return [r for r in self.records() if r.chain == chain and r.contract.lower() == contract.lower()]

    @staticmethod
    def _held(records: list[AnchorRecord]) -> int:
        return max((r.tree_size for r in records if r.status != "dropped"), default=0)

    # -- state and locking -----------------------------------------------------------------------
    def _load_state(self) -> _State:
        try:
            data = json.loads(self._paths["state"].read_text(encoding="utf-8"))
            fields = {k: data[k] for k in _State.__dataclass_fields__ if k in data}
            fields["own_seqs"] = tuple(int(q) for q in fields.get("own_seqs", ()))
            return _State(**fields)
        except FileNotFoundError:
            return _State()
        except (OSError, ValueError, TypeError):
            log.warning("%s is unreadable; anchoring starts with a fresh schedule", self._paths["state"])
            return _State()

    def _save_state(self, state: _State) -> None:
        write_json(self._paths["state"], asdict(state))

    @contextmanager
    def _locked(self, wait: float = _LOCK_WAIT_SECONDS) -> Iterator[None]:
        """One anchoring at a time across processes and threads (flock is per open file)."""
        path = self._paths["lock"]
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise AnchoringBusy(
                            "anchoring is running in another process (the scheduler's ledger.anchor job or "
                            "another command); try again in a few seconds"
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _failed(self, exc: AnchorError) -> None:
        state = self._load_state()
        failures = state.failures + 1
        s = self.settings
        delay = min(s.retry_backoff_cap_seconds, s.retry_backoff_seconds * 2 ** min(failures - 1, 30))
        self._save_state(
            replace(state, failures=failures, next_attempt=time.time() + delay, last_error=str(exc)[:500])
        )
        log.warning("anchoring failed (%s: %s); retry in %.0f s", type(exc).__name__, exc, delay)

    def _succeeded(self) -> None:
        state = self._load_state()
        if state.failures or state.next_attempt is not None or state.last_error is not None:
            self._save_state(replace(state, failures=0, next_attempt=None, last_error=None))

    def _own_entry(self, actor: str, action: str, details: dict[str, Any], request_id: str | None) -> int:
        receipt = self._node.record(actor, action, details=details, request_id=request_id)
        self._save_state(self._load_state().with_own(receipt.seq))
        return receipt.seq

    def _record_anchored(
        self, rec: AnchorRecord, actor: str, request_id: str | None, **extra: Any
    ) -> dict[str, Any]:
        """The ledger entry first (the record of truth), then the index line and the due state."""
        details = {
            "chain": rec.chain,
            "network": rec.network,
            "contract": rec.contract,
            "tx": rec.tx,
            "block": rec.block,
            "tree_size": rec.tree_size,
            "root": rec.root,
            "status": rec.status,
            **extra,
        }
        receipt = self._node.record(actor, "ledger.anchored", details=details, request_id=request_id)
        self.index.append(rec)
        self._save_state(replace(self._load_state().with_own(receipt.seq), last_anchored_at=time.time()))
        log.info("anchored size %s on %s %s: tx %s", rec.tree_size, rec.chain, rec.network, rec.tx)
        return {**rec.as_dict(), "ledger_seq": receipt.seq, **extra}

    # -- anchoring -----------------------------------------------------------------------------------
    def anchor_now(self, *, actor: str = _ACTOR, request_id: str | None = None) -> dict[str, Any]:
        """Anchor the latest checkpoint now if it is larger than the last anchored size (no due check).

        Returns ``{"anchored": record or None, "reason": why not, "tree_size": ..}``.
        """
        with self._locked():
            return self._guarded(lambda: self._anchor_latest(actor, request_id))

    def _guarded(self, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            out: dict[str, Any] = fn()
        except AnchorError as exc:
            if not isinstance(exc, AnchoringNotConfigured):
                self._failed(exc)
            raise
        self._succeeded()
        return out

    def _anchor_latest(self, actor: str, request_id: str | None) -> dict[str, Any]:
        anchor = self.backend()
        ledger = self._node.ledger
        ledger.refresh()
        if ledger.size == 0:
            return {"anchored": None, "reason": "the ledger is empty", "tree_size": 0}
        cp = ledger.sign_checkpoint(only_if_grown=True).checkpoint
        mine = self._ours(anchor.contract)
        held = self._held(mine)
        held = self._adopt_chain_state(anchor, held, actor, request_id)
        if cp.tree_size <= held:
            return {
                "anchored": None,
                "reason": f"size {held} is anchored already; the latest checkpoint is size {cp.tree_size}",
                "tree_size": cp.tree_size,
            }
        rec = anchor.anchor(cp.tree_size, cp.root_hash)
        return {
            "anchored": self._record_anchored(rec, actor, request_id),
            "reason": None,
            "tree_size": cp.tree_size,
        }

    def _adopt_chain_state(self, anchor: Anchor, held: int, actor: str, request_id: str | None) -> int:
        """If the chain holds a larger size than our records, take it as ours when its root is ours.

        That happens when the node crashed between sending and recording, or when a transaction whose
        wait timed out was mined later. A root that differs from the ledger's is a fork: refused.
        """
        latest = anchor.latest_size()
        if latest <= held:
            return held
        ledger = self._node.ledger
        onchain = anchor.read(latest)
        if onchain is None:
            raise AnchorError(
                f"{anchor.chain} {anchor.contract} says size {latest} is its latest but holds no root for it"
            )
        if latest > ledger.size:
            raise AnchorMismatch(
                f"{anchor.chain} {anchor.network} contract {anchor.contract} holds size {latest}, beyond "
                f"this ledger's {ledger.size} entries: another node anchors to this contract, or this "
                "ledger was restored from an older backup; deploy a new contract for this node"
            )
        ours = ledger.root(latest)
        if onchain.root != ours:
            raise AnchorMismatch(
                f"{anchor.chain} {anchor.network} contract {anchor.contract} holds root "
                f"{onchain.root.hex()[:16]}.. for size {latest}, this ledger's root there is "
                f"{ours.hex()[:16]}..: a fork or a rewritten ledger; keep both as evidence"
            )
        rec = AnchorRecord(
            chain=anchor.chain,
            network=anchor.network,
            contract=anchor.contract,
            tree_size=latest,
            root=ours.hex(),
            tx=onchain.tx or "",
            block=onchain.block,
            status="pending",
            time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        if rec.tx:
            rec = anchor.refresh(rec)
        self._record_anchored(rec, actor, request_id, adopted=True)
        return latest

    def refresh(self, *, actor: str = _ACTOR, request_id: str | None = None) -> dict[str, Any]:
        """Follow pending anchorings: confirmed, still pending, or dropped (then recorded, anchored again)."""
        with self._locked():
            return self._guarded(lambda: self._refresh(actor, request_id))

    def _refresh(self, actor: str, request_id: str | None) -> dict[str, Any]:
        contract = self._contract()
        mine = self._ours(contract)
        pending = [r for r in mine if r.status == "pending"]
        out: dict[str, Any] = {"checked": len(pending), "confirmed": 0, "dropped": [], "reanchored": []}
        if not pending and not self._uncovered(mine):
            return out
        anchor = self.backend()
        for rec in pending:
            new = anchor.refresh(rec) if rec.tx else self._by_root(anchor, rec)
            if new == rec:
                continue
            self.index.append(new)
            if new.status == "confirmed":
                out["confirmed"] += 1
            elif new.status == "dropped":
                self._own_entry(
                    actor,
                    "ledger.anchor_dropped",
                    {
                        "chain": new.chain,
                        "network": new.network,
                        "contract": new.contract,
                        "tx": new.tx,
                        "block": rec.block,
                        "tree_size": new.tree_size,
                        "root": new.root,
                    },
                    request_id,
                )
                log.warning(
                    "anchor of size %s (tx %s) was dropped by a reorganisation", new.tree_size, new.tx
                )
                out["dropped"].append(new.tree_size)
        # Dropped sizes no anchoring covers (just now, or earlier when anchoring them again failed).
        for rec in self._uncovered(self._ours(contract)):
            if anchor.latest_size() >= rec.tree_size:
                continue  # the chain holds a later size, which covers this one
            again = anchor.anchor(rec.tree_size, bytes.fromhex(rec.root))
            out["reanchored"].append(self._record_anchored(again, actor, request_id, replaces=rec.tx))
        return out

    def _uncovered(self, records: list[AnchorRecord]) -> list[AnchorRecord]:
        """Dropped anchorings above the largest size held: one per size, smallest first."""
        held = self._held(records)
        by_size = {r.tree_size: r for r in records if r.status == "dropped" and r.tree_size > held}
        return [by_size[size] for size in sorted(by_size)]

    @staticmethod
    def _by_root(anchor: Anchor, rec: AnchorRecord) -> AnchorRecord:
        """An adopted anchoring whose transaction the endpoint would not name: held while its root is."""
        onchain = anchor.read(rec.tree_size)
        if onchain is not None and onchain.root.hex() == rec.root:
            return replace(rec, status="confirmed", block=onchain.block, tx=onchain.tx or rec.tx)
        return replace(rec, status="dropped")

    def _only_housekeeping(self, held: int) -> bool:
        """Whether everything after the anchored size is cosignings and anchorings (nothing to anchor)."""
        ledger = self._node.ledger
        return held > 0 and only_housekeeping(ledger, held, ledger.size)

    def _due(self, state: _State) -> tuple[bool, str]:
        ledger = self._node.ledger
        ledger.refresh()
        held = self._held(self._ours())
        new = ledger.size - held - state.own_after(held)
        if new <= 0:
            return False, "no new entries since the last anchoring"
        if self._only_housekeeping(held):
            return False, "only cosignings and anchorings since the last anchoring"
        if held == 0:
            return True, f"first anchoring ({new} entries)"
        s = self.settings
        if s.every_entries and new >= s.every_entries:
            return True, f"{new} new entries (every_entries {s.every_entries})"
        last = state.last_anchored_at
        if last is None:
            last = max((_parse_iso(r.time) or 0.0 for r in self._ours()), default=0.0)
        if s.every_minutes and time.time() - last >= s.every_minutes * 60:
            return True, f"{new} new entries, {s.every_minutes} min since the last anchoring"
        return False, f"{new} new entries; not due yet"

    def tick(self, trigger: str = "schedule") -> dict[str, Any]:
        """The ``ledger.anchor`` job: follow pending anchorings, then anchor if due; honours the backoff.

        Raises the anchor error when an attempt fails (the job history and ``job.failed`` record it);
        while backing off it returns at once, without touching the chain.
        """
        try:
            with self._locked(wait=0):
                return self._tick()
        except AnchoringBusy:
            return {"skipped": "anchoring is running in another process"}

    def _tick(self) -> dict[str, Any]:
        state = self._load_state()
        if state.next_attempt is not None and time.time() < state.next_attempt:
            return {
                "skipped": f"backing off after {state.failures} failure(s) until {_iso(state.next_attempt)}",
                "last_error": state.last_error,
            }

        def run() -> dict[str, Any]:
            summary: dict[str, Any] = {"refresh": self._refresh(_ACTOR, None)}
            due, why = self._due(self._load_state())
            summary["due"] = why
            if due:
                summary.update(self._anchor_latest(_ACTOR, None))
                if summary["anchored"] is not None:
                    summary["anchored"] = {
                        k: summary["anchored"][k] for k in ("tree_size", "tx", "block", "status")
                    }
            return summary

        return self._guarded(run)

    # -- deployment ----------------------------------------------------------------------------------
    def deploy(
        self,
        *,
        chain: str,
        rpc_url: str,
        key_file: Path,
        chain_id: int | None = None,
        replace_existing: bool = False,
        actor: str,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Deploy the anchor contract from the account in ``key_file`` and make this node its owner.

        The key is installed as ``keys/anchor-ethereum.key`` (0600) unless the same key is there
        already; the deployment goes to ``anchor.json`` and a ``ledger.anchor_deployed`` entry.
        """
        if chain != "ethereum":
            raise AnchorError(
                f"the node deploys Ethereum contracts only; a {chain} anchor chaincode is installed by the "
                "network's administrators (docs/anchoring.md)"
            )
        existing = self.deployment()
        if existing is not None and not replace_existing:
            raise AnchorError(
                f"this node already deployed contract {existing.get('contract')} on chain "
                f"{existing.get('chain_id')}; pass --replace to deploy a new one (anchoring restarts there)"
            )
        try:
            key = read_secret(Path(key_file)).strip()
        except KeyFileError as exc:
            raise AnchorError(f"the account key file: {exc}") from exc
        from ledger.anchors.ethereum import EthereumAnchor, endpoint_name

        installed = self._paths["ethereum_key"]
        with self._locked():
            if installed.exists():
                try:
                    same = read_secret(installed).strip() == key
                except KeyFileError as exc:
                    raise AnchorError(str(exc)) from exc
                if not same:
                    raise AnchorError(
                        f"{installed} holds another account key; move it away to switch accounts (anchors "
                        "made with it stay verifiable), or set anchor.ethereum.key_file"
                    )
            e = self.settings.ethereum
            dep = EthereumAnchor.deploy_contract(
                rpc_url,
                key,
                chain_id=chain_id,
                timeout=e.timeout_seconds,
                receipt_timeout=e.receipt_timeout_seconds,
            )
            if not installed.exists():
                write_secret(installed, key + b"\n")
            details = {
                "chain": "ethereum",
                "network": str(dep.chain_id),
                "contract": dep.address,
                "tx": dep.tx,
                "block": dep.block,
                "owner": dep.owner,
                "rpc": endpoint_name(rpc_url),
            }
            receipt = self._node.record(
                actor, "ledger.anchor_deployed", details=details, request_id=request_id
            )
            write_json(
                self._paths["deployment"],
                {
                    "format": _DEPLOY_FORMAT,
                    "chain": "ethereum",
                    "chain_id": dep.chain_id,
                    "contract": dep.address,
                    "rpc_url": rpc_url,
                    "tx": dep.tx,
                    "block": dep.block,
                    "owner": dep.owner,
                    "deployed": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
            self._save_state(self._load_state().with_own(receipt.seq))
            if self.settings.chain == "ethereum":
                self._anchor = None  # rebuilt from the new deployment on next use
        log.info("anchor contract deployed at %s on chain %s", dep.address, dep.chain_id)
        return {**details, "ledger_seq": receipt.seq, "key_file": str(installed)}

    # -- reading -----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Where anchoring goes and how it is doing; reads local state only (no network)."""
        s = self.settings
        state = self._load_state()
        ledger = self._node.ledger
        ledger.refresh()
        mine = self._ours()
        held = self._held(mine)
        last = max((r for r in mine if r.status != "dropped"), key=lambda r: r.tree_size, default=None)
        last_at = _parse_iso(last.time) if last is not None else None
        network: str | None = last.network if last is not None else None
        rpc: str | None = None
        if s.chain == "ethereum" and self._anchor is None:
            dep = self.deployment() or {}
            cid = s.ethereum.chain_id or dep.get("chain_id")
            network = str(cid) if cid is not None else network
            rpc = endpoint(s.ethereum.rpc_url or dep.get("rpc_url"))
        elif s.chain == "fabric" and self._anchor is None:
            network, rpc = s.fabric.channel, s.fabric.endpoint
        counts = {k: sum(1 for r in mine if r.status == k) for k in ("pending", "confirmed", "dropped")}
        waiting = ledger.size - held - state.own_after(held)
        return {
            "configured": self.configured,
            "chain": self.chain,
            "network": network,
            "contract": self._contract(),
            "rpc": rpc,
            "every_minutes": s.every_minutes,
            "every_entries": s.every_entries,
            "confirmations": s.confirmations,
            "log_size": ledger.size,
            "anchored_size": held,
            "unanchored_entries": 0 if waiting <= 0 or self._only_housekeeping(held) else waiting,
            "last_anchor": last.as_dict() if last is not None else None,
            "last_anchor_age_seconds": round(time.time() - last_at, 1) if last_at is not None else None,
            "counts": counts,
            "failures": state.failures,
            "last_error": state.last_error,
            "next_attempt": _iso(state.next_attempt),
        }

    def verify(self) -> list[dict[str, Any]]:
        """Read every anchored size back from the chain and compare it with this ledger's root there.

        One row per anchoring of the configured contract that was not dropped: ``ok`` and, when not,
        the ``problem``.
        """
        anchor = self.backend()
        ledger = self._node.ledger
        ledger.refresh()
        rows: list[dict[str, Any]] = []
        mine = self._ours(anchor.contract)
        where = f"{anchor.chain} {anchor.network} contract {anchor.contract}"
        for rec in mine:
            if rec.status == "dropped":
                continue  # removed by a reorganisation; anchored again or covered by a later anchoring
            problem: str | None = None
            onchain = anchor.read(rec.tree_size)
            ours = ledger.root(rec.tree_size) if rec.tree_size <= ledger.size else None
            if ours is None:
                problem = f"size {rec.tree_size} is beyond this ledger's {ledger.size} entries"
            elif ours.hex() != rec.root:
                problem = f"the record says root {rec.root[:16]}.., the ledger's root is {ours.hex()[:16]}.."
            elif onchain is None:
                problem = f"{where} holds nothing for size {rec.tree_size}"
            elif onchain.root != ours:
                problem = (
                    f"{where} holds root {onchain.root.hex()[:16]}.. for size {rec.tree_size}, "
                    f"the ledger's is {ours.hex()[:16]}.."
                )
            elif rec.tx and anchor.refresh(rec).status == "dropped":
                problem = f"transaction {rec.tx} is no longer in the chain (the size is held by another one)"
            rows.append(
                {
                    "tree_size": rec.tree_size,
                    "root": rec.root,
                    "tx": rec.tx,
                    "block": onchain.block
                    if onchain is not None and onchain.block is not None
                    else rec.block,
                    "status": rec.status,
                    "ok": problem is None,
                    "problem": problem,
                }
            )
        return rows
