"""Evidence bundles for auditors (format 2): selected entries and everything that backs them.

The node picks the entries (by subject pseudonym, action, time range and explicit seqs, through
:func:`appliance.ledger_query.find_entries`) and assembles, from its ledger and data dir:

* the checkpoint the entries are proven in: the newest checkpoint with witness cosignatures that
  covers every selected entry (its note carries those cosignatures), else the latest checkpoint
  (signed first if none covers the entries yet);
* the checkpoint that first covered the earliest entry, and every checkpoint that was anchored on a
  chain (``<data_dir>/anchors.jsonl``), each with a consistency proof to or from the bundle's;
* the anchor references (``AnchorRecord.as_dict()``), which ``appliance-verify bundle --rpc``
  checks on the chain.

An export is a read of the ledger about a data subject, so it appends ``ledger.exported`` (filters,
entry count, tree size; the subject's pseudonym as the entry's subject) before the bundle is
returned. A selection larger than the cap is refused rather than cut: a partial bundle would read as
the whole trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from appliance.errors import LedgerQueryInvalid, NothingSelected
from appliance.ledger_query import EntryFilter, find_entries
from ledger.anchors import AnchorIndex
from ledger.bundle import build_bundle_v2
from ledger.checkpoint import SignedCheckpoint, parse_checkpoint
from ledger.errors import ProofUnavailable

if TYPE_CHECKING:
    from appliance.node import Node

__all__ = ["MAX_BUNDLE_ENTRIES", "Selection", "export_bundle"]

#: Entries one bundle may hold; more is refused (narrow the selection, or export in parts).
MAX_BUNDLE_ENTRIES = 10_000


@dataclass(frozen=True)
class Selection:
    """What an auditor asked for; filters combine (all must match), ``seqs`` are added to the result."""

    subject: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    seqs: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "action": self.action,
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
            "seqs": list(self.seqs),
        }

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.subject, self.action, self.since, self.until))


def _select(node: Node, sel: Selection, cap: int) -> list[int]:
    ledger = node.ledger
    size = ledger.refresh()
    chosen: set[int] = set()
    for seq in sel.seqs:
        if type(seq) is not int or not 0 <= seq < size:
            raise ProofUnavailable(f"entry {seq} does not exist; the ledger holds entries 0..{size - 1}")
        chosen.add(seq)
    if sel.filtered:
        found = find_entries(
            ledger, subject=sel.subject, action=sel.action, since=sel.since, until=sel.until, limit=cap + 1
        )
        chosen.update(seq for seq, _ in found)
    if not chosen:
        what = "the filters select no entry" if sel.filtered else "no entry was named"
        raise NothingSelected(f"{what}; a bundle needs at least one entry (widen the filters or give --seq)")
    if len(chosen) > cap:
        raise LedgerQueryInvalid(
            f"more than {cap} entries are selected; a bundle holds at most {cap}: narrow the selection "
            "(a shorter time range, an action) and export it in parts"
        )
    return sorted(chosen)


def _bundle_checkpoint(node: Node, last_seq: int) -> SignedCheckpoint:
    """The newest cosigned checkpoint covering ``last_seq``, else the latest (signed if needed)."""
    for signed, cosigned in node.witnesses.cosigned_checkpoints():
        if cosigned and signed.checkpoint.tree_size > last_seq:
            return signed
    ledger = node.ledger
    latest = ledger.latest_checkpoint()
    if latest is None or latest.checkpoint.tree_size <= last_seq:
        latest = ledger.sign_checkpoint()
    stored = node.witnesses.cosigned_note(latest.checkpoint.tree_size)
    if stored is not None and parse_checkpoint(stored).body == latest.body:
        return parse_checkpoint(stored)
    return latest


def export_bundle(
    node: Node,
    selection: Selection,
    *,
    actor: str,
    request_id: str | None = None,
    max_entries: int = MAX_BUNDLE_ENTRIES,
) -> dict[str, Any]:
    """A format 2 evidence bundle of the selected entries (see the module docstring)."""
    EntryFilter.build(selection.subject, selection.action, selection.since, selection.until)  # checks them
    seqs = _select(node, selection, max_entries)
    ledger = node.ledger
    signed = _bundle_checkpoint(node, seqs[-1])
    cp = signed.checkpoint
    size = cp.tree_size
    entries = [(seq, ledger.raw_entry(seq), ledger.inclusion_proof(seq, size)) for seq in seqs]

    by_size: dict[int, SignedCheckpoint] = {}
    for c in ledger.checkpoints():
        by_size.setdefault(c.checkpoint.tree_size, c)
    anchors = []
    linked: dict[str, tuple[str, Sequence[bytes]]] = {}

    def link(other: SignedCheckpoint) -> None:
        o = other.checkpoint.tree_size
        if other.body == signed.body or other.text in linked:
            return
        proof = ledger.consistency_proof(o, size) if o <= size else ledger.consistency_proof(size, o)
        linked[other.text] = (other.text, proof)

    earliest = ledger.checkpoint_covering(seqs[0])
    if earliest is not None:
        link(earliest)
    for rec in sorted(
        AnchorIndex(node.settings.data_dir / "anchors.jsonl").records(), key=lambda r: r.tree_size
    ):
        anchored = by_size.get(rec.tree_size)
        if anchored is None or anchored.checkpoint.root_hash.hex() != rec.root or rec.tree_size > ledger.size:
            continue  # not a checkpoint of this ledger (another node's index, a restored data dir)
        if anchored.checkpoint.tree_size != size:
            link(anchored)
        anchors.append(rec.as_dict())
    bundle = build_bundle_v2(
        ledger.origin,
        signed.text,
        entries,
        sorted(linked.values(), key=lambda t: parse_checkpoint(t[0]).checkpoint.tree_size),
        anchors,
        selection.as_dict(),
    )
    node.record(
        actor,
        "ledger.exported",
        subject=[selection.subject] if selection.subject else [],
        details={
            "format": bundle["format"],
            "entries": len(seqs),
            "tree_size": size,
            "root_hash": cp.root_hash.hex(),
            "action": selection.action,
            "from": selection.as_dict()["from"],
            "to": selection.as_dict()["to"],
            "seqs": len(selection.seqs),
            "anchors": len(anchors),
        },
        request_id=request_id,
    )
    return bundle
