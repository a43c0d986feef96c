"""The ledger's witnesses over HTTP: who cosigns this node's checkpoints, and choosing them.

Auditors read the list (each witness's key, what it last cosigned, its last error) to decide which
witness keys to trust when they verify bundles; an admin adds and removes witnesses (each change is
a ledger entry). Pushing checkpoints is the ``ledger.witness`` job (``POST /v1/jobs/ledger.witness/run``
runs it now).
"""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import Text
from appliance.server.openapi import operation

__all__ = ["bp"]

bp = Blueprint("witnesses", __name__, url_prefix="/v1/ledger")

READERS = ("auditor", "admin")
ADMIN = ("admin",)
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class WitnessOut(BaseModel):
    name: str = Field(description="the witness's key name")
    url: str = Field(description="its submission prefix (the node posts to <url>/add-checkpoint)")
    vkey: str = Field(description="its verifier key (c2sp.org/tlog-cosignature, type 0x04)")
    key_id: str
    added: str
    cosigned_size: int = Field(description="the largest tree size it cosigned for this node (0: none yet)")
    cosigned_root: Hex | None
    last_cosigned: str | None = Field(description="when it last cosigned (UTC)")
    last_attempt: str | None
    failures: int = Field(description="failed pushes in a row; the job retries on every run")
    last_error: str | None


class WitnessesOut(BaseModel):
    witnesses: list[WitnessOut]


class NewWitness(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: Text = Field(max_length=2048, description="http(s)://host[:port][/prefix]")
    vkey: Text = Field(max_length=512, description="the witness's verifier key, <name>+<key id>+<base64>")


class WitnessChange(BaseModel):
    name: str
    url: str
    ledger_seq: int = Field(description="the ledger.witness_added / ledger.witness_removed entry")


class WitnessKeyId(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_id: str = Field(pattern=r"^[0-9a-f]{8}$", description="the witness's key id (see the list)")


@bp.get("/witnesses")
@operation(summary="The witnesses cosigning this node's checkpoints", roles=READERS, response=WitnessesOut)
def list_witnesses() -> WitnessesOut:
    return WitnessesOut.model_validate({"witnesses": current_node().witnesses.status()})


@bp.post("/witnesses")
@operation(
    summary="Add a witness (recorded as ledger.witness_added)",
    roles=ADMIN,
    body=NewWitness,
    response=WitnessChange,
    status=201,
    problems={422: "The URL or key is unusable, or a witness of that name is configured"},
)
def add_witness(body: NewWitness) -> WitnessChange:
    out = current_node().witnesses.add(
        body.url, body.vkey, actor=current_key().actor, request_id=request_id()
    )
    return WitnessChange.model_validate(out)


@bp.delete("/witnesses/<key_id>")
@operation(
    summary="Remove a witness (recorded as ledger.witness_removed)",
    roles=ADMIN,
    path=WitnessKeyId,
    response=WitnessChange,
    problems={404: "No witness has that key id"},
)
def remove_witness(path: WitnessKeyId) -> WitnessChange:
    """By key id: witness names usually hold a '/', which a path segment cannot."""
    out = current_node().witnesses.remove(path.key_id, actor=current_key().actor, request_id=request_id())
    return WitnessChange.model_validate(out)
