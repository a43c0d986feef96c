"""Customer records and transcripts, masked for the caller's role ("usable but invisible").

The store hands back plain values; nothing leaves this module unmasked. Each read appends a
``record.read`` / ``transcript.read`` entry naming the customer by pseudonym, the fields returned and
the profile version before the response is sent: if the ledger cannot take it, the read fails.
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import plain_digits
from appliance.server.openapi import operation
from appliance.server.routes.masking import MASKED_ROLES, ProfileOut, Region
from appliance.store.errors import UnknownCustomer

__all__ = ["bp"]

bp = Blueprint("customers", __name__, url_prefix="/v1/customers")


CustomerId = Annotated[int, Field(ge=1, le=2**62), plain_digits(18, "a decimal customer id")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerPath(_Params):
    customer_id: CustomerId = Field(description="the store's customer id")


class LookupQuery(_Params):
    external_id: str = Field(
        min_length=1, max_length=128, description="the customer's id in the business system"
    )
    region: Region | None = Field(None, description="profile region; default: the customer's own region")


class ReadQuery(_Params):
    region: Region | None = Field(
        None, description="profile region; default: the customer's own region, then masking.default_region"
    )


class CustomerOut(BaseModel):
    customer: dict[str, Any] = Field(description="the record, every value masked for the caller's role")
    profile: ProfileOut
    ledger_seq: int


class MessageOut(BaseModel):
    seq: int
    ts: str
    speaker: str
    text: str


class TranscriptOut(BaseModel):
    id: int
    channel: str
    started: str
    messages: list[MessageOut]


class TranscriptsOut(BaseModel):
    customer_id: int
    transcripts: list[TranscriptOut]
    profile: ProfileOut
    ledger_seq: int


def _iso(ts: Any) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _region(query: ReadQuery, customer: dict[str, Any]) -> str | None:
    """The customer's region picks the rules (an EU customer's data is masked as EU data)."""
    return query.region or customer.get("region")


def _masked_customer(record: dict[str, Any], region: str | None) -> CustomerOut:
    """Mask one stored record for the caller and record the read before it is returned."""
    node = current_node()
    key = current_key()
    subject = node.pseudonyms.pseudonym("cust", str(record["id"]))
    masked = node.masking.mask_record(
        record, node.masking_fields(), role=key.role, region=region or record.get("region"), subject=subject
    )
    receipt = node.record(
        key.actor,
        "record.read",
        subject=[subject],
        details={"fields": sorted(record), "profile": masked.version, "region": masked.region},
        request_id=request_id(),
    )
    return CustomerOut(
        customer=masked.record,
        profile=ProfileOut(role=masked.role, region=masked.region, version=masked.version),
        ledger_seq=receipt.seq,
    )


@bp.get("")
@operation(
    summary="Find one customer by the business system's id, masked for the caller's role",
    roles=MASKED_ROLES,
    query=LookupQuery,
    response=CustomerOut,
)
def find_customer(query: LookupQuery) -> CustomerOut:
    """An agent holds the CRM's id, not ours; the answer carries ours (``id``) for later calls."""
    record = current_node().store.find_customer_by_external_id(query.external_id)
    if record is None:
        raise UnknownCustomer(query.external_id)
    return _masked_customer(record, query.region)


@bp.get("/<customer_id>")
@operation(
    summary="One customer, masked for the caller's role",
    roles=MASKED_ROLES,
    path=CustomerPath,
    query=ReadQuery,
    response=CustomerOut,
)
def get_customer(path: CustomerPath, query: ReadQuery) -> CustomerOut:
    return _masked_customer(current_node().store.get_customer(path.customer_id), query.region)


@bp.get("/<customer_id>/transcripts")
@operation(
    summary="A customer's conversations, every message masked for the caller's role",
    roles=MASKED_ROLES,
    path=CustomerPath,
    query=ReadQuery,
    response=TranscriptsOut,
)
def get_transcripts(path: CustomerPath, query: ReadQuery) -> TranscriptsOut:
    node = current_node()
    key = current_key()
    record = node.store.get_customer(path.customer_id)
    subject = node.pseudonyms.pseudonym("cust", str(path.customer_id))
    region = _region(query, record)
    out: list[TranscriptOut] = []
    counts: dict[str, int] = {}
    version = node.masking.version
    used_region = region or node.masking.default_region
    for tr in node.store.transcripts_for(path.customer_id):
        messages = []
        for m in tr.messages:
            masked = node.masking.mask_text(m.text, role=key.role, region=region, subject=subject)
            used_region = masked.region
            for name, n in masked.counts().items():
                counts[name] = counts.get(name, 0) + n
            messages.append(MessageOut(seq=m.seq, ts=_iso(m.ts), speaker=m.speaker, text=masked.text))
        out.append(TranscriptOut(id=tr.id, channel=tr.channel, started=_iso(tr.started), messages=messages))
    receipt = node.record(
        key.actor,
        "transcript.read",
        subject=[subject],
        details={
            "transcripts": len(out),
            "messages": sum(len(t.messages) for t in out),
            "entities": counts,
            "profile": version,
            "region": used_region,
        },
        request_id=request_id(),
    )
    return TranscriptsOut(
        customer_id=path.customer_id,
        transcripts=out,
        profile=ProfileOut(role=key.role, region=used_region, version=version),
        ledger_seq=receipt.seq,
    )
