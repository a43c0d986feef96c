"""Anchors over HTTP: where the ledger's signed checkpoints were anchored, and anchoring on demand.

Auditors read the anchorings (chain, contract, transaction, block, size, root, status) to check
them on chain themselves; an admin can anchor the latest checkpoint now instead of waiting for the
scheduler. Listing reads the node's index and state only, so it answers while the chain is down.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import plain_digits
from appliance.server.openapi import operation

__all__ = ["bp"]

bp = Blueprint("anchors", __name__, url_prefix="/v1/ledger")

READERS = ("auditor", "admin")
ADMIN = ("admin",)
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 Merkle root, lower-case hex")]


class AnchorsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["pending", "confirmed", "dropped"] | None = Field(None, description="only these")
    limit: Annotated[int, Field(ge=1, le=1000), plain_digits(4, "1 to 1000")] = 100


class AnchorOut(BaseModel):
    chain: str = Field(description="ethereum or fabric")
    network: str = Field(description="chain id (Ethereum) or channel (Fabric)")
    contract: str = Field(description="contract address or chaincode name")
    tree_size: int
    root: Hex
    tx: str = Field(description="transaction hash / id")
    block: int | None = Field(description="block holding the transaction; null while unknown")
    status: Literal["pending", "confirmed", "dropped"]
    time: str = Field(description="when the node anchored (UTC)")


class AnchoredOut(AnchorOut):
    ledger_seq: int = Field(description="the ledger.anchored entry that records this anchoring")
    adopted: bool | None = Field(None, description="found on chain after a crash or a late receipt")
    replaces: str | None = Field(None, description="the dropped transaction this one anchors again")


class AnchorCounts(BaseModel):
    pending: int
    confirmed: int
    dropped: int


class AnchorStatusOut(BaseModel):
    configured: bool
    chain: str = Field(description="none, ethereum or fabric (anchor.chain)")
    network: str | None
    contract: str | None
    rpc: str | None = Field(description="endpoint, scheme://host:port only")
    every_minutes: int
    every_entries: int
    confirmations: int
    log_size: int
    anchored_size: int = Field(description="largest tree size anchored and not dropped")
    unanchored_entries: int = Field(
        description="entries since then, the node's own anchoring entries aside; 0 when only cosignings "
        "and anchorings followed (nothing to anchor)"
    )
    last_anchor: AnchorOut | None
    last_anchor_age_seconds: float | None
    counts: AnchorCounts
    failures: int = Field(description="failed attempts in a row; retries back off exponentially")
    last_error: str | None
    next_attempt: str | None = Field(description="the scheduler retries no earlier than this (UTC)")


class AnchorsOut(BaseModel):
    status: AnchorStatusOut
    anchors: list[AnchorOut] = Field(description="newest first")


class AnchorRunOut(BaseModel):
    anchored: AnchoredOut | None = Field(description="the new anchoring; null when there was nothing to do")
    reason: str | None = Field(description="why nothing was anchored")
    tree_size: int = Field(description="size of the latest signed checkpoint")


_PROBLEMS = {
    409: "Anchoring not configured, refused by the chain, or the chain holds another root",
    503: "Ledger, storage or the anchor chain unavailable (Retry-After)",
}


@bp.get("/anchors")
@operation(
    summary="Anchorings of signed checkpoints (newest first) and the anchoring status",
    roles=READERS,
    query=AnchorsQuery,
    response=AnchorsOut,
)
def list_anchors(query: AnchorsQuery) -> AnchorsOut:
    service = current_node().anchoring
    records = [r for r in reversed(service.records()) if query.status is None or r.status == query.status]
    return AnchorsOut(
        status=AnchorStatusOut.model_validate(service.status()),
        anchors=[AnchorOut.model_validate(r.as_dict()) for r in records[: query.limit]],
    )


@bp.post("/anchors")
@operation(
    summary="Anchor the latest signed checkpoint now (signed first if the log grew)",
    roles=ADMIN,
    response=AnchorRunOut,
    problems=_PROBLEMS,
)
def anchor_now() -> AnchorRunOut:
    out: dict[str, Any] = current_node().anchoring.anchor_now(
        actor=current_key().actor, request_id=request_id()
    )
    return AnchorRunOut.model_validate(out)
