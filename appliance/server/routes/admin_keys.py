"""API keys over HTTP, for admins: list, create, rotate, revoke.

A new or rotated token is in the body of that one response only (``Cache-Control: no-store``, like
every answer of the API); the node keeps its argon2id hash. Every change is a ledger entry recorded
before the key file changes (see :mod:`appliance.key_service`). Revoking the last live admin key is
refused here: the CLI on the node can still do it, and can always make a new admin key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field

from appliance.key_service import MAX_SECONDS, ApiKeyService, KeyChange
from appliance.keys import ApiKey
from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import Text, plain_digits
from appliance.server.openapi import operation

__all__ = ["bp"]

bp = Blueprint("admin_keys", __name__, url_prefix="/v1/admin/keys")

ADMIN = ("admin",)
Role = Literal["admin", "agent", "supervisor", "analyst", "custodian", "auditor", "ops"]
KeyId = Annotated[str, Field(min_length=8, max_length=32, pattern=r"^[0-9a-f]{8,32}$")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyPath(_Params):
    key_id: KeyId = Field(description="the id in the token apl_<key id>_<secret>, as `keys list` shows it")


class CreateIn(_Params):
    role: Role
    label: Annotated[Text, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = Field(
        "", description="what the key is for (shown in lists; not recorded in the ledger)"
    )
    expires_in_seconds: int | None = Field(
        None, ge=60, le=MAX_SECONDS, description="the key stops working this long after creation; null: never"
    )


class RotateQuery(_Params):
    grace_seconds: Annotated[int, Field(ge=0, le=MAX_SECONDS), plain_digits(9, "0 or more seconds")] = Field(
        0, description="the old secret keeps working this long (default 0: it stops at once)"
    )


class KeyOut(BaseModel):
    key_id: str
    role: str
    label: str
    state: str = Field(description="active | revoked | expired")
    created: str
    expires: str | None
    rotated: str | None
    grace_until: str | None = Field(description="the secret before the last rotation works until then")
    hash: str = Field(description="argon2id, or sha256 for a key made before argon2 (re-hashed on next use)")


class KeysOut(BaseModel):
    keys: list[KeyOut]


class KeyChangeOut(KeyOut):
    ledger_seq: int


class IssuedOut(KeyChangeOut):
    token: str = Field(description="the API key; shown this once, store it now")


def _out(key: ApiKey) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "role": key.role,
        "label": key.label,
        "state": key.state,
        "created": key.created,
        "expires": key.expires,
        "rotated": key.rotated,
        "grace_until": key.grace_until,
        "hash": key.hash,
    }


def _issued(change: KeyChange, status: int) -> tuple[Response, int]:
    body = IssuedOut.model_validate(
        {**_out(change.key), "ledger_seq": change.ledger_seq, "token": change.token}
    )
    response = jsonify(body.model_dump(mode="json"))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response, status


@bp.get("")
@operation(summary="API keys: ids, roles, states (never secrets)", roles=ADMIN, response=KeysOut)
def list_keys() -> KeysOut:
    return KeysOut(keys=[KeyOut.model_validate(_out(k)) for k in ApiKeyService(current_node()).keys()])


@bp.post("")
@operation(
    summary="Create an API key; the token is in this response only",
    roles=ADMIN,
    body=CreateIn,
    response=IssuedOut,
    status=201,
)
def create(body: CreateIn) -> tuple[Response, int]:
    expires = timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds is not None else None
    change = ApiKeyService(current_node()).create(
        body.role, actor=current_key().actor, label=body.label, expires_in=expires, request_id=request_id()
    )
    return _issued(change, 201)


@bp.post("/<key_id>/rotate")
@operation(
    summary="New secret for a key (same id and role); the token is in this response only",
    roles=ADMIN,
    path=KeyPath,
    query=RotateQuery,
    response=IssuedOut,
)
def rotate(path: KeyPath, query: RotateQuery) -> tuple[Response, int]:
    change = ApiKeyService(current_node()).rotate(
        path.key_id,
        actor=current_key().actor,
        grace=timedelta(seconds=query.grace_seconds),
        request_id=request_id(),
    )
    return _issued(change, 200)


@bp.delete("/<key_id>")
@operation(
    summary="Revoke an API key for good (every worker refuses it from its next request)",
    roles=ADMIN,
    path=KeyPath,
    response=KeyChangeOut,
)
def revoke(path: KeyPath) -> KeyChangeOut:
    change = ApiKeyService(current_node()).revoke(
        path.key_id, actor=current_key().actor, request_id=request_id()
    )
    return KeyChangeOut.model_validate({**_out(change.key), "ledger_seq": change.ledger_seq})
