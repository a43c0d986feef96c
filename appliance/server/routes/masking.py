"""Masking over HTTP: free text and structured records, masked for the caller's role; de-tokenisation.

Each call appends one ledger entry before the answer leaves: what was masked (counts per entity type,
field names, the profile version), never the values. De-tokenisation is recorded before the value is
revealed, so there is no un-audited way back from a token.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, Strict

from appliance.masking.entities import EntityType
from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import Text
from appliance.server.openapi import operation

__all__ = ["MASKED_ROLES", "bp"]

bp = Blueprint("masking", __name__, url_prefix="/v1")

#: Roles that have a masking profile; analyst, custodian and admin never see customer text.
MASKED_ROLES = ("agent", "supervisor", "auditor", "ops")
DETOKENIZE_ROLES = ("supervisor", "admin")
_MAX_RECORDS = 1000


#: An entity type name; strict bodies would otherwise demand an enum instance, which JSON cannot carry.
Entity = Annotated[EntityType, Strict(False)]
Region = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MaskTextIn(_Body):
    text: Text = Field(description="the text to mask (code points are what span offsets count)")
    region: Region | None = Field(None, description="region of the profile; default: masking.default_region")
    entities: list[Entity] | None = Field(None, description="detect only these types (default: all)")
    spans: bool = Field(True, description="return what was found: type, start, end, score")


class EntityOut(BaseModel):
    type: str
    start: int = Field(description="offset into the ORIGINAL text, in code points")
    end: int = Field(description="exclusive end offset into the ORIGINAL text")
    score: float


class ProfileOut(BaseModel):
    role: str
    region: str
    version: str = Field(description="the masking profile set version recorded in the ledger")


class MaskTextOut(BaseModel):
    text: str
    entities: list[EntityOut] | None = None
    profile: ProfileOut
    ledger_seq: int = Field(description="the ledger entry recording this masking")


class MaskRecordsIn(_Body):
    records: list[dict[str, Any]] = Field(min_length=1, max_length=_MAX_RECORDS)
    fields: dict[str, Entity | Literal["free_text"] | None] | None = Field(
        None,
        description="field → entity type (or null to pass through); 'free_text' fields are scanned. "
        "Default: the store's declared customer schema; fields it does not declare are scanned as text.",
    )
    region: Region | None = None


class MaskRecordsOut(BaseModel):
    records: list[dict[str, Any]]
    profile: ProfileOut
    ledger_seq: int


class DetokenizeIn(_Body):
    token: str = Field(min_length=1, max_length=4096)
    reason: Text = Field(min_length=3, max_length=500, description="why; recorded (masked) in the ledger")


class DetokenizeOut(BaseModel):
    type: str
    value: str
    ledger_seq: int


@bp.post("/mask/text")
@operation(
    summary="Mask free text for the caller's role", roles=MASKED_ROLES, body=MaskTextIn, response=MaskTextOut
)
def mask_text(body: MaskTextIn) -> MaskTextOut:
    """Offsets in ``entities`` index the text that was sent, so a client can highlight what was hidden."""
    node = current_node()
    key = current_key()
    entities = None if body.entities is None else [str(e) for e in body.entities]
    result = node.masking.mask_text(body.text, role=key.role, region=body.region, entities=entities)
    receipt = node.record(
        key.actor,
        "text.masked",
        details={
            "profile": result.version,
            "region": result.region,
            "chars": len(body.text),
            "entities": result.counts(),
        },
        request_id=request_id(),
    )
    return MaskTextOut(
        text=result.text,
        entities=[EntityOut(**f.as_dict()) for f in result.findings] if body.spans else None,
        profile=ProfileOut(role=result.role, region=result.region, version=result.version),
        ledger_seq=receipt.seq,
    )


@bp.post("/mask/records")
@operation(
    summary="Mask structured records for the caller's role",
    roles=MASKED_ROLES,
    body=MaskRecordsIn,
    response=MaskRecordsOut,
)
def mask_records(body: MaskRecordsIn) -> MaskRecordsOut:
    """Declared fields get their type's operator whole; free text and undeclared fields are scanned."""
    node = current_node()
    key = current_key()
    fields = (
        node.masking_fields() if body.fields is None else {k: v and str(v) for k, v in body.fields.items()}
    )
    masked = node.masking.mask_records(body.records, fields, role=key.role, region=body.region)
    names = sorted({name for r in body.records for name in r})
    receipt = node.record(
        key.actor,
        "records.masked",
        details={
            "profile": node.masking.version,
            "region": masked[0].region,
            "records": len(body.records),
            "fields": names[:200],
        },
        request_id=request_id(),
    )
    first = masked[0]
    return MaskRecordsOut(
        records=[m.record for m in masked],
        profile=ProfileOut(role=first.role, region=first.region, version=first.version),
        ledger_seq=receipt.seq,
    )


@bp.post("/tokens/detokenize")
@operation(
    summary="Reveal the value behind a reversible token (audited)",
    roles=DETOKENIZE_ROLES,
    body=DetokenizeIn,
    response=DetokenizeOut,
)
def detokenize(body: DetokenizeIn) -> DetokenizeOut:
    """The entry is appended after the token is proven genuine and before the value is returned."""
    node = current_node()
    key = current_key()
    entity_type, value = node.masking.detokenize(body.token, role=key.role)
    reason = node.masking.mask_text(body.reason, role="auditor").text
    receipt = node.record(
        key.actor,
        "token.detokenized",
        subject=[node.pseudonyms.pseudonym("value", value)],
        details={"type": entity_type, "reason": reason, "profile": node.masking.version},
        request_id=request_id(),
    )
    return DetokenizeOut(type=entity_type, value=value, ledger_seq=receipt.seq)
