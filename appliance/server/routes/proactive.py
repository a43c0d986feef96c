"""The proactive service over HTTP: triggers for marketing ops, outcomes, the lift report, playbooks,
consent and suppression lists, event ingestion and the model registry.

Ops never see a raw contact value: a trigger carries the customer's pseudonym and the contact fields
its offer's channel needs, masked with the ``ops`` profile of the customer's region. Every call that
changes something (an outcome, a consent, a suppression, events, a playbook run, a model rollback)
appends its ledger entry before it answers; listing triggers with contact data is recorded as a read.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import plain_digits
from appliance.server.openapi import operation
from appliance.store.errors import UnknownCustomer

__all__ = ["bp"]

bp = Blueprint("proactive", __name__, url_prefix="/v1")

OPS_ROLES = ("ops", "admin")
REPORT_ROLES = ("ops", "admin", "auditor", "analyst")
CONSENT_ROLES = ("agent", "supervisor", "admin")
MODEL_ROLES = ("admin", "auditor", "analyst")

Id = Annotated[int, Field(ge=1, le=2**62), plain_digits(18, "a decimal id")]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerPath(_Params):
    trigger_id: Id = Field(description="the trigger's id")


class TriggersQuery(_Params):
    status: (
        Literal["pending", "delivered", "failed", "suppressed", "holdout", "deferred", "closed"] | None
    ) = Field(None, description="pending = raised, awaiting contact; omit for all")
    playbook: Name | None = None
    run_id: str | None = Field(None, max_length=32, pattern=r"^[0-9a-f]+$")
    after: Annotated[int, Field(ge=0, le=2**62), plain_digits(18, "a decimal id")] = Field(
        0, description="page: ids greater than this (the last id of the previous page)"
    )
    limit: Annotated[int, Field(ge=1, le=500), plain_digits(3, "1 to 500")] = 100


class TriggerOut(BaseModel):
    id: int
    run_id: str
    playbook: str
    group: str = Field(description="treated | holdout (control group: never contacted)")
    status: str
    suppressed_by: str | None = Field(description="the first gate that stopped it")
    score: float
    rank: int
    channel: str
    reasons: dict[str, Any] = Field(
        description="gates: every gate's verdict; model: top contributing features"
    )
    model_version: str | None
    created: str
    not_before: str | None = Field(description="deferred by quiet hours until then (UTC)")
    outcome: str | None
    customer: dict[str, Any] = Field(description="pseudonym, region, language and contact masked for ops")


class TriggersOut(BaseModel):
    triggers: list[TriggerOut]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last page")
    ledger_seq: int | None = Field(description="the read entry for the contact data shown")


class OutcomeIn(_Body):
    outcome: Literal["contacted", "converted", "declined"]


class OutcomeOut(BaseModel):
    trigger: TriggerOut
    ledger_seq: int


class LiftRowOut(BaseModel):
    playbook: str
    basis: Literal["events", "outcomes"] = Field(
        description="events: the playbook's target event within its horizon (both groups alike); "
        "outcomes: what ops reported"
    )
    goal: Literal["increase", "decrease"] = Field(description="which way the target should move")
    treated_n: int
    treated_conversions: int
    treated_rate: float | None
    holdout_n: int
    holdout_conversions: int
    holdout_rate: float | None
    lift: float | None = Field(description="treated rate - holdout rate")
    ci_low: float | None = Field(description="95% interval of the lift (Newcombe hybrid score)")
    ci_high: float | None
    relative_lift: float | None
    p_value: float | None
    open: int = Field(description="triggers still inside the target's horizon, not counted yet")
    note: str | None


class LiftOut(BaseModel):
    playbooks: list[LiftRowOut]


class ReportQuery(_Params):
    playbook: Name | None = None
    basis: Literal["events", "outcomes"] = "events"


class PlaybookPath(_Params):
    name: Name


class PlaybookOut(BaseModel):
    name: str
    description: str
    schedule: str
    enabled: bool
    model: str | None
    model_version: str | None = Field(description="the live version the next run scores with")
    channel: str


class PlaybooksOut(BaseModel):
    playbooks: list[PlaybookOut]


class RunOut(BaseModel):
    summary: dict[str, Any]


class ConsentIn(_Body):
    customer_id: Id | None = None
    external_id: str | None = Field(None, min_length=1, max_length=64)
    channel: Literal["sms", "email", "phone", "app_push", "wechat"]
    status: Literal["opt_in", "opt_out"]
    ts: AwareDatetime | None = Field(None, description="when the customer said so; default: now")
    source: str = Field("api", min_length=1, max_length=64, description="where it was captured")


class ConsentOut(BaseModel):
    customer_id: int
    consents: list[dict[str, Any]]
    ledger_seq: int


class SuppressionIn(_Body):
    customer_id: Id
    reason: str = Field(min_length=1, max_length=256)


class SuppressionPath(_Params):
    customer_id: Id


class SuppressionOut(BaseModel):
    customer_id: int
    suppressed: bool
    changed: bool
    ledger_seq: int


class EventsIn(_Body):
    events: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


class EventsOut(BaseModel):
    accepted: int
    ledger_seq: int


class ModelsOut(BaseModel):
    models: list[dict[str, Any]]


class ModelPath(_Params):
    name: Name


class RollbackIn(_Body):
    version: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")


class RollbackOut(BaseModel):
    model: dict[str, Any]
    ledger_seq: int


def _trigger_out(row: Any, customer: dict[str, Any]) -> TriggerOut:
    d = row.as_dict()
    return TriggerOut(
        id=d["id"],
        run_id=d["run_id"],
        playbook=d["playbook"],
        group=d["group"],
        status=d["status"],
        suppressed_by=d["suppressed_by"],
        score=d["score"],
        rank=d["rank"],
        channel=d["channel"],
        reasons=d["reasons"],
        model_version=d["model_version"],
        created=d["created"],
        not_before=d["not_before"],
        outcome=d["outcome"],
        customer=customer,
    )


# -- triggers ------------------------------------------------------------------------------------------
#: The ledger refuses an entry naming more pseudonyms than this (ledger/entry.py).
_SUBJECTS_PER_ENTRY = 64


@bp.get("/triggers")
@operation(
    summary="Triggers for marketing ops (pull delivery), with masked contact data",
    roles=OPS_ROLES,
    query=TriggersQuery,
    response=TriggersOut,
)
def list_triggers(query: TriggersQuery) -> TriggersOut:
    """Page with ``?after=<next_after>``; ``status=pending`` are raised triggers nobody has acted on."""
    node = current_node()
    key = current_key()
    rows = node.store.proactive.list_triggers(
        status=query.status,
        playbook=query.playbook,
        run_id=query.run_id,
        after_id=query.after,
        limit=query.limit,
    )
    out = [_trigger_out(r, node.proactive.customer_view(r.customer_id, r.channel)) for r in rows]
    # A ledger entry names at most 64 subjects: a longer page is recorded as several entries, each
    # with the triggers of its customers; ledger_seq is the first of them.
    by_subject: dict[str, list[int]] = {}
    for r in rows:
        by_subject.setdefault(node.pseudonyms.pseudonym("cust", str(r.customer_id)), []).append(r.id)
    subjects = sorted(by_subject)
    seq = None
    for i in range(0, len(subjects), _SUBJECTS_PER_ENTRY):
        chunk = subjects[i : i + _SUBJECTS_PER_ENTRY]
        receipt = node.record(
            key.actor,
            "trigger.listed",
            chunk,
            {"triggers": sorted(t for s in chunk for t in by_subject[s]), "role": key.role},
            request_id=request_id(),
        )
        seq = receipt.seq if seq is None else seq
    return TriggersOut(
        triggers=out, next_after=rows[-1].id if len(rows) == query.limit else None, ledger_seq=seq
    )


@bp.get("/triggers/report")
@operation(
    summary="Lift per playbook: conversion of treated vs holdout, with 95% confidence intervals",
    roles=REPORT_ROLES,
    query=ReportQuery,
    response=LiftOut,
)
def lift_report(query: ReportQuery) -> LiftOut:
    rows = current_node().proactive.lift(query.playbook, basis=query.basis)
    return LiftOut(playbooks=[LiftRowOut(**r) for r in rows])


@bp.get("/triggers/<trigger_id>")
@operation(
    summary="One trigger with its reasons and masked contact",
    roles=OPS_ROLES,
    path=TriggerPath,
    response=TriggerOut,
)
def get_trigger(path: TriggerPath) -> TriggerOut:
    node = current_node()
    key = current_key()
    row = node.store.proactive.get_trigger(path.trigger_id)
    view = node.proactive.customer_view(row.customer_id, row.channel)
    node.record(
        key.actor,
        "trigger.listed",
        [view["ref"]],
        {"triggers": [row.id], "role": key.role},
        request_id=request_id(),
    )
    return _trigger_out(row, view)


@bp.post("/triggers/<trigger_id>/outcome")
@operation(
    summary="Record what came of a trigger: contacted, then converted or declined",
    roles=OPS_ROLES,
    path=TriggerPath,
    body=OutcomeIn,
    response=OutcomeOut,
)
def record_outcome(path: TriggerPath, body: OutcomeIn) -> OutcomeOut:
    """converted and declined are final (409 after them); a holdout trigger cannot be 'contacted'."""
    node = current_node()
    key = current_key()
    row, seq = node.proactive.record_outcome(
        path.trigger_id, body.outcome, actor=key.actor, request_id=request_id()
    )
    return OutcomeOut(
        trigger=_trigger_out(row, node.proactive.customer_view(row.customer_id, row.channel)), ledger_seq=seq
    )


# -- playbooks ---------------------------------------------------------------------------------------------
@bp.get("/playbooks")
@operation(
    summary="The node's playbooks, their schedules and live models", roles=REPORT_ROLES, response=PlaybooksOut
)
def list_playbooks() -> PlaybooksOut:
    service = current_node().proactive
    out = []
    for pb in service.playbooks.values():
        live = service.registry.live(pb.model) if pb.model else None
        out.append(
            PlaybookOut(
                name=pb.name,
                description=pb.description,
                schedule=pb.schedule,
                enabled=pb.enabled,
                model=pb.model,
                model_version=live.version if live else None,
                channel=pb.offer.channel,
            )
        )
    return PlaybooksOut(playbooks=out)


@bp.post("/playbooks/<name>/run")
@operation(
    summary="Run a playbook now (features, scores, gates, triggers)",
    roles=("admin",),
    path=PlaybookPath,
    response=RunOut,
)
def run_playbook(path: PlaybookPath) -> RunOut:
    """Runs under the job's lock and history, like the scheduler's runs (409 when one is running)."""
    from appliance.jobs import run_job_now

    node = current_node()
    node.proactive.playbook(path.name)  # 404 for an unknown name before any lock is taken
    return RunOut(summary=run_job_now(node, f"playbook.{path.name}", trigger="api"))


# -- consent and suppression ------------------------------------------------------------------------------
@bp.post("/consents")
@operation(
    summary="Record a customer's opt-in or opt-out for one channel",
    roles=CONSENT_ROLES,
    body=ConsentIn,
    response=ConsentOut,
    status=201,
)
def add_consent(body: ConsentIn) -> ConsentOut:
    node = current_node()
    if (body.customer_id is None) == (body.external_id is None):
        from appliance.store.errors import RecordInvalid

        raise RecordInvalid("customer_id", "name the customer with exactly one of customer_id or external_id")
    cid = body.customer_id
    if cid is None:
        assert body.external_id is not None
        found = node.store.customer_ids_for([body.external_id]).get(body.external_id)
        if found is None:
            raise UnknownCustomer(body.external_id)
        cid = found
    seq = node.proactive.record_consent(
        cid,
        body.channel,
        body.status,
        actor=current_key().actor,
        source=body.source,
        ts=body.ts,
        request_id=request_id(),
    )
    return ConsentOut(customer_id=cid, consents=node.store.proactive.consents_for(cid), ledger_seq=seq)


@bp.post("/suppressions")
@operation(
    summary="Put a customer on the do-not-contact list",
    roles=("supervisor", "ops", "admin"),
    body=SuppressionIn,
    response=SuppressionOut,
)
def add_suppression(body: SuppressionIn) -> SuppressionOut:
    changed, seq = current_node().proactive.set_suppressed(
        body.customer_id, True, actor=current_key().actor, reason=body.reason, request_id=request_id()
    )
    return SuppressionOut(customer_id=body.customer_id, suppressed=True, changed=changed, ledger_seq=seq)


@bp.delete("/suppressions/<customer_id>")
@operation(
    summary="Take a customer off the do-not-contact list",
    roles=("admin",),
    path=SuppressionPath,
    response=SuppressionOut,
)
def remove_suppression(path: SuppressionPath) -> SuppressionOut:
    changed, seq = current_node().proactive.set_suppressed(
        path.customer_id, False, actor=current_key().actor, request_id=request_id()
    )
    return SuppressionOut(customer_id=path.customer_id, suppressed=False, changed=changed, ledger_seq=seq)


# -- events -----------------------------------------------------------------------------------------------
@bp.post("/events")
@operation(
    summary="Ingest customer events (searches, orders, contacts, telemetry)",
    roles=("admin",),
    body=EventsIn,
    response=EventsOut,
    status=201,
)
def ingest_events(body: EventsIn) -> EventsOut:
    """All or nothing: one bad event refuses the batch (422 names its index and field)."""
    node = current_node()
    n = node.store.add_events(body.events)
    digest = hashlib.sha256(
        json.dumps(body.events, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
    receipt = node.record(
        current_key().actor, "events.ingested", (), {"count": n, "sha256": digest}, request_id=request_id()
    )
    return EventsOut(accepted=n, ledger_seq=receipt.seq)


# -- models -----------------------------------------------------------------------------------------------
@bp.get("/models")
@operation(
    summary="Model registry: versions, metrics and which one is live", roles=MODEL_ROLES, response=ModelsOut
)
def list_models() -> ModelsOut:
    return ModelsOut(models=current_node().proactive.model_listing())


@bp.post("/models/<name>/rollback")
@operation(
    summary="Make an earlier model version live again",
    roles=("admin",),
    path=ModelPath,
    body=RollbackIn,
    response=RollbackOut,
)
def rollback_model(path: ModelPath, body: RollbackIn) -> RollbackOut:
    node = current_node()
    version, seq = node.proactive.rollback_model(
        path.name, body.version, actor=current_key().actor, request_id=request_id()
    )
    return RollbackOut(model=version.as_dict(), ledger_seq=seq)
