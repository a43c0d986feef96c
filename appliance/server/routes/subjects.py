"""Erasure of a data subject by crypto-shredding, over HTTP (admin only).

The customer's rows and subject key are deleted and their masking tokens revoked in one store
transaction; their ledger entries stay (every proof still verifies) under a pseudonym nothing can
recompute any more; the erasure itself is the ``subject.erased`` entry whose seq the answer carries.
See :mod:`appliance.subjects` and docs/erasure.md.
"""

from __future__ import annotations

from typing import Literal, get_args

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, field_validator

from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.openapi import operation
from appliance.server.routes.customers import CustomerId
from appliance.subjects import MAX_REASON_CHARS, REASON_CODES

__all__ = ["bp"]

bp = Blueprint("subjects", __name__, url_prefix="/v1/subjects")

ReasonCode = Literal["data_subject_request", "consent_withdrawn", "retention_expired", "legal_order", "other"]
assert get_args(ReasonCode) == REASON_CODES  # one list of codes: appliance.subjects.REASON_CODES


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubjectPath(_Params):
    customer_id: CustomerId = Field(description="the store's customer id")


class EraseIn(_Params):
    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON_CHARS,
        description="why (e.g. the request's reference); the ledger keeps only its SHA-256",
    )
    code: ReasonCode = Field("data_subject_request", description="reason code, recorded in clear")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the reason is blank; say why the customer is erased")
        return value


class EraseOut(BaseModel):
    erasure_id: str
    subject: str = Field(
        description="the pseudonym the ledger keeps; nothing links it to the person any more"
    )
    ledger_seq: int = Field(description="the subject.erased entry")
    removed: dict[str, int] = Field(description="rows deleted, per table")
    tokens_revoked: int
    columns_refreshed: list[str] = Field(
        description="encrypted privacy columns re-encrypted without the subject"
    )
    columns_pending: str | None = Field(
        description="why the privacy columns are not refreshed yet (the node retries); null when done"
    )


@bp.post("/<customer_id>/erase")
@operation(
    summary="Erase a customer by crypto-shredding (cannot be undone; their ledger entries stay, unlinkable)",
    roles=("admin",),
    path=SubjectPath,
    body=EraseIn,
    response=EraseOut,
)
def erase(path: SubjectPath, body: EraseIn) -> EraseOut:
    report = current_node().subjects.erase(
        path.customer_id, body.reason, actor=current_key().actor, request_id=request_id(), code=body.code
    )
    return EraseOut.model_validate(report.as_dict())
