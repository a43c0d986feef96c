"""The ledger over HTTP: signed tree heads, entries, proofs and evidence bundles for auditors.

Every read starts with ``Ledger.refresh()``: gunicorn workers each hold the
ledger open, and a worker must see what its siblings appended. Proofs are
answered against a signed checkpoint by default (signing one when the log has
none yet), because a proof is only worth something against a signed root.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from flask import Blueprint, Response, after_this_request, current_app, request
from pydantic import BaseModel, ConfigDict, Field

from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.errors import HTTPProblem
from appliance.server.fields import Text, plain_digits
from appliance.server.openapi import operation
from ledger import Ledger
from ledger.checkpoint import SignedCheckpoint

__all__ = ["bp"]

bp = Blueprint("ledger", __name__, url_prefix="/v1/ledger")

AUDITOR = ("auditor",)
_MAX_INDEX = 2**63 - 1


Index = Annotated[int, Field(ge=0, le=_MAX_INDEX), plain_digits(19, "a decimal integer from 0 to 2**63-1")]
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lower-case hex")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeqPath(_Params):
    seq: Index = Field(description="entry index (0-based)")


class InclusionQuery(_Params):
    seq: Index = Field(description="entry index (0-based)")
    size: Index | None = Field(None, description="tree size; default: the latest checkpoint's")


class ConsistencyQuery(_Params):
    first: Index = Field(description="the earlier tree size")
    second: Index | None = Field(None, description="the later tree size; default: the latest checkpoint's")


class NewEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    action: str = Field(description="dotted lower-case verb, e.g. 'record.read'")
    subject: list[str] = Field(default_factory=list, description="pseudonyms ('kind:hex'), never raw PII")
    details: dict[str, Any] = Field(default_factory=dict, description="digests and decisions; no floats")


class CosignatureOut(BaseModel):
    name: str = Field(description="the witness's key name")
    key_id: str = Field(description="its key id (c2sp.org/tlog-cosignature), 8 hex characters")
    time: int = Field(description="when it cosigned, POSIX seconds")


class WitnessedOut(BaseModel):
    origin: str
    tree_size: int
    root_hash: Hex
    timestamp_ms: int
    note: str = Field(description="the checkpoint note with the witnesses' cosignature lines")
    cosignatures: list[CosignatureOut]


class CheckpointOut(BaseModel):
    origin: str
    tree_size: int
    root_hash: Hex
    timestamp_ms: int
    note: str = Field(
        description="the C2SP signed note, with every witness cosignature collected for it (what Accept: "
        "text/plain returns)"
    )
    cosignatures: list[CosignatureOut] = Field(
        default_factory=list, description="cosignatures on this checkpoint by the configured witnesses"
    )
    witnessed: WitnessedOut | None = Field(
        None,
        description="the newest checkpoint the witnesses cosigned, when it is not this one (new checkpoints "
        "are cosigned on the ledger.witness job's next run)",
    )


class EntryOut(BaseModel):
    seq: int
    leaf_hash: Hex
    entry: dict[str, Any]
    raw: str = Field(description="the exact canonical JSON the leaf hash covers")


class AppendReceipt(BaseModel):
    seq: int
    leaf_hash: Hex
    time: str
    request_id: str


class InclusionProof(BaseModel):
    seq: int
    tree_size: int
    leaf_hash: Hex
    root_hash: Hex
    path: list[Hex]


class ConsistencyProof(BaseModel):
    first: int
    second: int
    first_root: Hex
    second_root: Hex
    path: list[Hex]


class BundleEntry(BaseModel):
    seq: int
    entry: str
    leaf_hash: Hex
    inclusion_path: list[Hex]


class BundleConsistency(BaseModel):
    checkpoint: str
    path: list[Hex]


class Bundle(BaseModel):
    format: str
    origin: str
    checkpoint: str
    entries: list[BundleEntry]
    consistency: list[BundleConsistency]


class BundleAnchor(BaseModel):
    chain: str = Field(description="ethereum or fabric")
    network: str = Field(description="chain id (Ethereum) or channel (Fabric)")
    contract: str
    tree_size: int
    root: Hex
    tx: str
    block: int | None
    status: str = Field(description="pending, confirmed or dropped (re-anchored since)")
    time: str


class BundleSelection(BaseModel):
    subject: str | None
    action: str | None
    from_: str | None = Field(alias="from")
    to: str | None
    seqs: list[int]


class BundleV2(BaseModel):
    format: str = Field(description="appliance-evidence-bundle/2")
    origin: str
    checkpoint: str = Field(description="the signed checkpoint note with its witness cosignatures")
    entries: list[BundleEntry] = Field(description="in seq order, each with its inclusion proof")
    consistency: list[BundleConsistency] = Field(
        description="the checkpoint that first covered the earliest entry and every anchored checkpoint, "
        "each with the consistency proof between it and the bundle's checkpoint (smaller size to larger)"
    )
    anchors: list[BundleAnchor] = Field(description="where those checkpoints were anchored")
    selection: BundleSelection = Field(description="what was asked for (not signed: informational)")


MAX_BUNDLE_LIMIT = 10_000
BundleLimit = Annotated[int, Field(ge=1, le=MAX_BUNDLE_LIMIT), plain_digits(5, f"1 to {MAX_BUNDLE_LIMIT}")]


class BundleQuery(_Params):
    subject: Text | None = Field(None, description="a pseudonym, kind:hex")
    action: Text | None = Field(None, description="an action, or a prefix such as 'record.*'")
    from_: datetime | None = Field(None, alias="from", description="entries at or after (RFC 3339; UTC)")
    to: datetime | None = Field(None, description="entries before (RFC 3339)")
    limit: BundleLimit = Field(1000, description="refuse (422) a larger selection rather than cut it")


def _ledger() -> Ledger:
    ledger = current_node().ledger
    ledger.refresh()
    return ledger


def _latest(ledger: Ledger) -> SignedCheckpoint:
    return ledger.latest_checkpoint() or ledger.sign_checkpoint()


def _vary_on_accept(response: Response) -> Response:
    response.vary.add("Accept")  # one URL, two representations: caches must key on Accept
    return response


def _checkpoint_out(signed: SignedCheckpoint) -> CheckpointOut:
    return CheckpointOut.model_validate(current_node().witnesses.view(signed))


@bp.get("/checkpoint")
@operation(
    summary="Latest signed checkpoint (tree head)",
    roles=AUDITOR,
    response=CheckpointOut,
    media={"text/plain": {"type": "string", "description": "C2SP signed note"}},
)
def get_checkpoint() -> CheckpointOut | Response:
    """JSON by default; the bare signed note for ``Accept: text/plain``, which C2SP tooling reads."""
    out = _checkpoint_out(_latest(_ledger()))
    after_this_request(_vary_on_accept)
    if request.accept_mimetypes.best_match(["application/json", "text/plain"]) == "text/plain":
        return Response(out.note, 200, mimetype="text/plain")
    return out


@bp.post("/checkpoints")
@operation(
    summary="Sign a checkpoint of the current tree now",
    roles=("auditor", "admin"),
    response=CheckpointOut,
    status=201,
)
def post_checkpoint() -> CheckpointOut:
    """Lets an auditor get a head covering the newest entries without waiting for the scheduler."""
    ledger = _ledger()
    return _checkpoint_out(ledger.sign_checkpoint())


@bp.get("/entries/<seq>")
@operation(
    summary="One entry, parsed and as its exact stored bytes", roles=AUDITOR, path=SeqPath, response=EntryOut
)
def get_entry(path: SeqPath) -> EntryOut:
    """``raw`` is what the leaf hash covers; ``entry`` is the same, parsed, for convenience."""
    ledger = _ledger()
    entry = ledger.entry(path.seq)
    return EntryOut(
        seq=entry.seq,
        leaf_hash=ledger.leaf_hash(path.seq).hex(),
        entry=entry.as_dict(),
        raw=entry.raw.decode("utf-8"),
    )


@bp.post("/entries")
@operation(
    summary="Append an entry (integration and testing)",
    roles=("admin",),
    body=NewEntry,
    response=AppendReceipt,
    status=201,
)
def post_entry(body: NewEntry) -> AppendReceipt:
    """The key's actor and the request id go into the entry, so the entry names who asked and when."""
    rid = request_id()
    receipt = current_node().record(
        current_key().actor, body.action, body.subject, body.details, request_id=rid
    )
    return AppendReceipt(
        seq=receipt.seq, leaf_hash=receipt.leaf_hash.hex(), time=receipt.time, request_id=rid
    )


@bp.get("/proofs/inclusion")
@operation(
    summary="Inclusion proof of an entry in a tree size",
    roles=AUDITOR,
    query=InclusionQuery,
    response=InclusionProof,
)
def get_inclusion(query: InclusionQuery) -> InclusionProof:
    """RFC 9162 audit path; verify it against a signed checkpoint of ``tree_size``."""
    ledger = _ledger()
    size = query.size if query.size is not None else _latest(ledger).checkpoint.tree_size
    return InclusionProof(**ledger.inclusion_evidence(query.seq, size))


@bp.get("/proofs/consistency")
@operation(
    summary="Consistency proof between two tree sizes",
    roles=AUDITOR,
    query=ConsistencyQuery,
    response=ConsistencyProof,
)
def get_consistency(query: ConsistencyQuery) -> ConsistencyProof:
    """RFC 9162 proof that the tree of size ``first`` is a prefix of the tree of size ``second``."""
    ledger = _ledger()
    second = query.second if query.second is not None else _latest(ledger).checkpoint.tree_size
    if query.first > second:
        raise HTTPProblem(
            400,
            "invalid-parameter",
            "Invalid parameter",
            f"first ({query.first}) must not exceed second ({second})",
            errors=[{"loc": ["query", "first"], "msg": "must be <= second"}],
        )
    return ConsistencyProof(**ledger.consistency_evidence(query.first, second))


@bp.get("/bundles")
@operation(
    summary="Evidence bundle (format 2) of the entries a subject, action or time range selects",
    roles=AUDITOR,
    query=BundleQuery,
    response=BundleV2,
    problems={404: "No entry matches", 422: "A filter is unusable, or more entries match than limit"},
)
def get_bundles(query: BundleQuery) -> Response:
    """Filters combine (an entry must match all given); at least one is required. The bundle carries the
    checkpoint with its witness cosignatures, every anchored checkpoint with a consistency proof and the
    anchor references; ``appliance-verify bundle`` checks it offline. Recorded as ``ledger.exported``."""
    from appliance.evidence import Selection, export_bundle

    if query.subject is None and query.action is None and query.from_ is None and query.to is None:
        raise HTTPProblem(
            400,
            "invalid-parameter",
            "Invalid parameter",
            "select entries with subject, action, from or to (one entry: /v1/ledger/bundles/<seq>)",
            errors=[{"loc": ["query"], "msg": "give at least one of subject, action, from, to"}],
        )
    selection = Selection(query.subject, query.action, query.from_, query.to)
    bundle = export_bundle(
        current_node(), selection, actor=current_key().actor, request_id=request_id(), max_entries=query.limit
    )
    response = Response(current_app.json.dumps(bundle), 200, mimetype="application/json")
    first, n = bundle["entries"][0]["seq"], len(bundle["entries"])
    response.headers["Content-Disposition"] = f'attachment; filename="bundle-{first}-{n}.json"'
    return response


@bp.get("/bundles/<seq>")
@operation(
    summary="Evidence bundle of one entry, verifiable offline", roles=AUDITOR, path=SeqPath, response=Bundle
)
def get_bundle(path: SeqPath) -> Response:
    """The entry proven in the latest checkpoint, plus the checkpoint that first covered it and the
    consistency proof from there, so an auditor holding that earlier head can link the two."""
    seq = path.seq
    bundle = _ledger().evidence_bundle([seq])
    response = Response(current_app.json.dumps(bundle), 200, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="bundle-{seq}.json"'
    return response
