"""What every anchor back end offers, and the record of an anchoring the node keeps.

An anchor writes a signed checkpoint's ``(tree_size, root)`` somewhere the node
cannot rewrite later (a public chain, a consortium ledger). Back ends differ in
transport and finality, so the node sees only this small interface: anchor one
checkpoint, read back what is stored for a size, tell how final a transaction is.

:class:`AnchorIndex` is the node's own list of anchorings (one JSON line each,
appended with fsync). It is a cache of facts that are also ledger entries
(``ledger.anchored``), kept so bundles can name anchors without scanning the log.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ledger.errors import LedgerError

__all__ = [
    "Anchor",
    "AnchorError",
    "AnchorIndex",
    "AnchorMismatch",
    "AnchorRecord",
    "AnchorRejected",
    "AnchorUnavailable",
    "OnChain",
]


class AnchorError(LedgerError):
    """Root of what anchoring refuses or cannot do."""


class AnchorUnavailable(AnchorError):
    """The chain or gateway cannot be reached (or timed out); retry later, nothing was lost."""


class AnchorRejected(AnchorError):
    """The chain refused the anchoring (reverted, endorsement failed, not the owner, size not growing)."""


class AnchorMismatch(AnchorError):
    """What the chain holds for a size differs from the checkpoint (a fork, or a forged record)."""


@dataclass(frozen=True)
class OnChain:
    """What a back end reads back for one tree size."""

    tree_size: int
    root: bytes
    tx: str | None
    block: int | None


@dataclass(frozen=True)
class AnchorRecord:
    """One anchoring of one checkpoint: where, which transaction, and how final it is.

    ``chain`` is ``ethereum`` or ``fabric``; ``network`` the chain id (Ethereum) or
    channel (Fabric); ``contract`` the contract address or chaincode name; ``block``
    the block number holding the transaction (``None`` until it is mined/committed).
    ``status`` is ``pending`` (sent), ``confirmed`` (enough confirmations) or
    ``dropped`` (a reorganisation removed it; the node anchors the size again).
    """

    chain: str
    network: str
    contract: str
    tree_size: int
    root: str  # hex
    tx: str
    block: int | None
    status: str
    time: str  # UTC RFC 3339

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnchorRecord:
        try:
            return cls(
                chain=str(data["chain"]),
                network=str(data["network"]),
                contract=str(data["contract"]),
                tree_size=int(data["tree_size"]),
                root=str(data["root"]),
                tx=str(data["tx"]),
                block=None if data.get("block") is None else int(data["block"]),
                status=str(data["status"]),
                time=str(data["time"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AnchorError(f"anchor record is not readable: {exc}") from exc


class Anchor(Protocol):
    """A back end: Ethereum (``ledger.anchors.ethereum``) or Fabric (``ledger.anchors.fabric``)."""

    chain: str

    @property
    def network(self) -> str:
        """Chain id (Ethereum, as decimal text) or channel name (Fabric)."""
        ...

    @property
    def contract(self) -> str:
        """Contract address (0x..., checksummed) or chaincode name."""
        ...

    def anchor(self, tree_size: int, root: bytes) -> AnchorRecord:
        """Send one anchoring; returns a ``pending`` or ``confirmed`` record.

        Raises AnchorUnavailable (retry later) or AnchorRejected (will not succeed as sent).
        """
        ...

    def refresh(self, record: AnchorRecord) -> AnchorRecord:
        """The record with its current status: ``confirmed``, still ``pending``, or ``dropped``."""
        ...

    def read(self, tree_size: int) -> OnChain | None:
        """What the chain holds for ``tree_size``, or None if nothing."""
        ...

    def latest_size(self) -> int:
        """The largest tree size anchored so far (0 if none)."""
        ...


class AnchorIndex:
    """Append-only JSON-lines file of :class:`AnchorRecord`; status updates are appended, last wins."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path

    def append(self, record: AnchorRecord) -> None:
        line = json.dumps(record.as_dict(), sort_keys=True, separators=(",", ":")) + "\n"
        with self._lock:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)

    def update(self, record: AnchorRecord, **changes: Any) -> AnchorRecord:
        new = replace(record, **changes)
        self.append(new)
        return new

    def records(self) -> list[AnchorRecord]:
        """The current state of every anchoring (one per chain+network+contract+tx), in anchoring order.

        A torn last line (a crash mid-append) is skipped: the ledger entry is the record of truth.
        """
        if not self._path.exists():
            return []
        latest: dict[tuple[str, str, str, str], AnchorRecord] = {}
        for line in self._path.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = AnchorRecord.from_dict(json.loads(line))
            except (ValueError, AnchorError):
                continue
            latest[(rec.chain, rec.network, rec.contract, rec.tx)] = rec
        return list(latest.values())
