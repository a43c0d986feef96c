"""Privacy-computing queries over HTTP: analysts submit, the custodian approves, auditors read.

An analyst sees their own queries and results only, never rows; the custodian sees every query and
approves those whose aggregates are not released automatically; an admin encrypts columns and grants
budgets. Every step is a ledger entry (see :mod:`appliance.privacy_service`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, model_validator

from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import plain_digits
from appliance.server.openapi import operation

__all__ = ["bp"]

bp = Blueprint("privacy", __name__, url_prefix="/v1")

ANALYST = ("analyst",)
CUSTODIAN = ("custodian",)
READERS = ("analyst", "custodian", "auditor", "admin")
ADMIN = ("admin",)

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Actor = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:._-]+$")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryIn(_Params):
    sql: str | None = Field(
        None,
        max_length=65_536,
        description="SELECT SUM(balance) FROM customers WHERE region = 'CN' GROUP BY segment",
    )
    query: dict[str, Any] | None = Field(None, description="the JSON form (docs/privacy.md)")

    @model_validator(mode="after")
    def _one(self) -> QueryIn:
        if (self.sql is None) == (self.query is None):
            raise ValueError("give exactly one of sql or query")
        return self


class QueryPath(_Params):
    query_id: Annotated[int, Field(ge=1), plain_digits(18, "a query id")]


class QueriesQuery(_Params):
    status: Literal["computing", "awaiting_approval", "released", "refused", "failed"] | None = None
    limit: Annotated[int, Field(ge=1, le=500), plain_digits(3, "1 to 500")] = 50


class QueryOut(BaseModel):
    id: int
    analyst: str
    submitted: str
    updated: str
    status: str = Field(description="computing | awaiting_approval | released | refused | failed")
    sql: str | None
    plan: dict[str, Any]
    plan_digest: str
    key_id: str | None
    result_digest: str | None = Field(description="SHA-256 of the encrypted result (also in the ledger)")
    released: dict[str, Any] | None = Field(description="what the guards let out; null until released")
    approved_by: str | None
    error: str | None = Field(description="why the query was refused")


class QueriesOut(BaseModel):
    queries: list[QueryOut]


class ColumnOut(BaseModel):
    table: str
    column: str
    scheme: str
    kind: str
    key_id: str
    rows: int
    ciphertexts: int
    bound: float | None
    buckets: list[float] | None
    visible_attributes: list[str]
    bytes: int


class ColumnsOut(BaseModel):
    columns: list[ColumnOut]


class EncryptIn(_Params):
    table: Literal["customers"] = "customers"
    column: Name
    scheme: Literal["ckks", "bfv", "paillier"] = "ckks"
    kind: Literal["value", "flag"] = "value"
    buckets: list[float] | None = Field(None, min_length=2, max_length=64)
    bound: float | None = Field(None, gt=0, allow_inf_nan=False)
    segment_by: list[Name] | None = Field(None, max_length=6)


class EncryptOut(ColumnOut):
    appended: int | None = Field(description="rows added to an existing column; null when encrypted anew")
    ledger_seq: int


class BudgetPart(BaseModel):
    limit: float
    spent: float
    left: float


class BudgetOut(BaseModel):
    analyst: str
    epsilon: BudgetPart
    delta: BudgetPart


class BudgetPath(_Params):
    analyst: Actor


class GrantIn(_Params):
    epsilon: float = Field(gt=0, le=1000, allow_inf_nan=False)
    delta: float = Field(ge=0, lt=1, allow_inf_nan=False)


class WeightsPath(_Params):
    name: Name


class WeightsIn(_Params):
    ids: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=2_000_000)
    weights: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(min_length=1, max_length=2_000_000)


class WeightsOut(BaseModel):
    name: str
    rows: int
    sha256: str
    ledger_seq: int


class WeightVectorOut(BaseModel):
    name: str
    rows: int
    nonzero: int


class WeightVectorsOut(BaseModel):
    weights: list[WeightVectorOut]


class KeysOut(BaseModel):
    current: str
    keys: list[dict[str, Any]]


def _query_out(row: Any) -> QueryOut:
    return QueryOut.model_validate(row.as_dict())


@bp.post("/queries")
@operation(
    summary="Submit a privacy query (SQL subset or JSON); released at once when the guards allow",
    roles=ANALYST,
    body=QueryIn,
    response=QueryOut,
    status=201,
)
def submit(body: QueryIn) -> QueryOut:
    row = current_node().privacy.submit(
        actor=current_key().actor, sql=body.sql, query=body.query, request_id=request_id()
    )
    return _query_out(row)


@bp.get("/queries")
@operation(
    summary="Privacy queries, newest first (an analyst sees their own)",
    roles=READERS,
    query=QueriesQuery,
    response=QueriesOut,
)
def list_queries(query: QueriesQuery) -> QueriesOut:
    key = current_key()
    analyst = key.actor if key.role == "analyst" else None
    rows = current_node().store.privacy.list_queries(analyst=analyst, status=query.status, limit=query.limit)
    return QueriesOut(queries=[_query_out(r) for r in rows])


@bp.get("/queries/<query_id>")
@operation(
    summary="One privacy query and its released result", roles=READERS, path=QueryPath, response=QueryOut
)
def get_query(path: QueryPath) -> QueryOut:
    key = current_key()
    return _query_out(current_node().privacy.get(path.query_id, actor=key.actor, role=key.role))


@bp.post("/queries/<query_id>/approve")
@operation(
    summary="Release a query that waits for the custodian (the guards still apply)",
    roles=CUSTODIAN,
    path=QueryPath,
    response=QueryOut,
)
def approve(path: QueryPath) -> QueryOut:
    row = current_node().privacy.approve(path.query_id, actor=current_key().actor, request_id=request_id())
    return _query_out(row)


@bp.get("/privacy/columns")
@operation(summary="Encrypted columns (no values)", roles=(*READERS,), response=ColumnsOut)
def columns() -> ColumnsOut:
    return ColumnsOut(
        columns=[ColumnOut.model_validate(c.as_dict()) for c in current_node().privacy.columns()]
    )


@bp.post("/privacy/columns")
@operation(
    summary="Encrypt a plain numeric column of the store (or append its new rows)",
    roles=ADMIN,
    body=EncryptIn,
    response=EncryptOut,
    status=201,
)
def encrypt(body: EncryptIn) -> EncryptOut:
    out = current_node().privacy.encrypt(
        body.table,
        body.column,
        scheme=body.scheme,
        kind=body.kind,
        buckets=body.buckets,
        bound=body.bound,
        segment_by=body.segment_by,
        actor=current_key().actor,
    )
    return EncryptOut.model_validate(out)


@bp.get("/privacy/budget")
@operation(
    summary="The calling analyst's privacy budget: limit, spent, left", roles=ANALYST, response=BudgetOut
)
def own_budget() -> BudgetOut:
    return BudgetOut.model_validate(current_node().privacy.budget_of(current_key().actor))


@bp.put("/privacy/budget/<analyst>")
@operation(
    summary="Set an analyst's total privacy budget (actor of their API key, e.g. key:ab12cd34)",
    roles=ADMIN,
    path=BudgetPath,
    body=GrantIn,
    response=BudgetOut,
)
def grant(path: BudgetPath, body: GrantIn) -> BudgetOut:
    out = current_node().privacy.grant(path.analyst, body.epsilon, body.delta, actor=current_key().actor)
    return BudgetOut.model_validate(out)


@bp.get("/privacy/keys")
@operation(summary="The HE key ids and their public parameters", roles=READERS, response=KeysOut)
def keys() -> KeysOut:
    return KeysOut.model_validate(current_node().privacy.key_info())


@bp.put("/privacy/weights/<name>")
@operation(
    summary="Store a named plaintext weight vector for DOT(column, 'name'): one weight per customer id",
    roles=("analyst", "admin"),
    path=WeightsPath,
    body=WeightsIn,
    response=WeightsOut,
)
def put_weights(path: WeightsPath, body: WeightsIn) -> WeightsOut:
    out = current_node().privacy.set_weights(path.name, body.ids, body.weights, actor=current_key().actor)
    return WeightsOut.model_validate(out)


@bp.get("/privacy/weights")
@operation(
    summary="Stored weight vectors (names and sizes, no weights)", roles=READERS, response=WeightVectorsOut
)
def list_weights() -> WeightVectorsOut:
    return WeightVectorsOut(
        weights=[WeightVectorOut.model_validate(w) for w in current_node().privacy.weight_vectors()]
    )
