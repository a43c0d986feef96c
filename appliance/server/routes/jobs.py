"""The scheduler's jobs over HTTP: list them with their last runs, read history, run now, pause, resume.

A run asked for here happens in this worker, synchronously, under the same per-job lock as the
scheduler's runs: if the job is running anywhere else the answer is 409 and the skipped run is in
the history. Pause and resume edit the job store the scheduler process reads, and are recorded in
the ledger with the caller's key.
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from appliance.jobs import JOB_ID_PATTERN, UnknownJob, job_history, known_job, run_job_now
from appliance.scheduler import list_jobs, pause_job, resume_job
from appliance.server.auth import current_key
from appliance.server.context import current_node, request_id
from appliance.server.fields import plain_digits
from appliance.server.openapi import operation

__all__ = ["bp"]

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")

READ_ROLES = ("admin", "auditor")
ADMIN = ("admin",)

JobId = Annotated[str, Field(min_length=3, max_length=96, pattern=JOB_ID_PATTERN)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobPath(_Params):
    job_id: JobId = Field(description="ledger.checkpoint, outbox.deliver, playbook.<name>, ...")


class RunsQuery(_Params):
    limit: Annotated[int, Field(ge=1, le=1000), plain_digits(4, "1 to 1000")] = 20


class LastRunOut(BaseModel):
    status: str = Field(description="running | succeeded | failed | skipped")
    started: str
    duration_ms: int | None
    error: str | None
    reason: str | None = Field(description="why a run was skipped: misfired, already running")


class JobOut(BaseModel):
    id: str
    name: str
    trigger: str = Field(description="'cron[0 9 * * *] UTC' or 'every 10 s'")
    next_run_time: str | None = Field(description="UTC; null when paused or not scheduled yet")
    paused: bool
    scheduled: bool = Field(description="registered by the scheduler process (false until it first starts)")
    last_run: LastRunOut | None


class JobsOut(BaseModel):
    jobs: list[JobOut]


class JobStateOut(JobOut):
    changed: bool = Field(description="false when the job already was in that state (nothing recorded)")


class RunOut(BaseModel):
    id: int
    job_id: str
    started: str
    finished: str | None
    status: str = Field(description="running | succeeded | failed | skipped")
    duration_ms: int | None
    trigger: str = Field(description="schedule | manual | api | startup")
    detail: dict[str, Any] | None = Field(description="the job's summary, or why it was skipped")
    error: str | None = Field(description="first line of the error of a failed run")


class RunsOut(BaseModel):
    runs: list[RunOut]


@bp.get("")
@operation(summary="The scheduler's jobs with their next and last runs", roles=READ_ROLES, response=JobsOut)
def list_all() -> JobsOut:
    return JobsOut(jobs=[JobOut.model_validate(j) for j in list_jobs(current_node())])


@bp.get("/<job_id>/runs")
@operation(
    summary="A job's run history, newest first",
    roles=READ_ROLES,
    path=JobPath,
    query=RunsQuery,
    response=RunsOut,
)
def runs(path: JobPath, query: RunsQuery) -> RunsOut:
    node = current_node()
    history = job_history(node, path.job_id, query.limit)
    if not history and not known_job(node, path.job_id):
        raise UnknownJob(f"no job {path.job_id!r} and no runs recorded under that id; see GET /v1/jobs")
    return RunsOut(runs=[RunOut.model_validate(r) for r in history])


@bp.post("/<job_id>/run")
@operation(
    summary="Run a job now, in this request (409 when it is running elsewhere)",
    roles=ADMIN,
    path=JobPath,
    response=RunOut,
)
def run(path: JobPath) -> RunOut:
    """A job that fails answers 200 with ``status: failed``: the run happened and is recorded."""
    return RunOut.model_validate(run_job_now(current_node(), path.job_id, trigger="api"))


@bp.post("/<job_id>/pause")
@operation(
    summary="Pause a job (it stays paused across restarts)", roles=ADMIN, path=JobPath, response=JobStateOut
)
def pause(path: JobPath) -> JobStateOut:
    state = pause_job(current_node(), path.job_id, actor=current_key().actor, request_id=request_id())
    return JobStateOut.model_validate(state)


@bp.post("/<job_id>/resume")
@operation(
    summary="Resume a paused job from its next scheduled time",
    roles=ADMIN,
    path=JobPath,
    response=JobStateOut,
)
def resume(path: JobPath) -> JobStateOut:
    state = resume_job(current_node(), path.job_id, actor=current_key().actor, request_id=request_id())
    return JobStateOut.model_validate(state)
