"""The node's jobs as every door sees them: ids, errors, one guarded execution, run history.

A job runs in the scheduler process on its schedule, or in any process on demand (``appliance jobs
run``, ``POST /v1/jobs/<id>/run``). Both go through :func:`execute`, so both take the same per-job
file lock (two processes never run one job at once), and both leave the same record in ``job_runs``.
Nothing here imports APScheduler: the HTTP workers and the CLI import this module freely, and only
``appliance.scheduler`` knows how jobs are scheduled, paused and resumed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from appliance import logs, metrics
from appliance.errors import NodeError
from appliance.store import tables as t
from appliance.store.errors import StoreError
from predictors.errors import PredictorError

if TYPE_CHECKING:
    from appliance.node import Node

__all__ = [
    "BUILTIN_JOBS",
    "JOB_ID_PATTERN",
    "TARGETS",
    "JobBusy",
    "JobError",
    "UnknownJob",
    "execute",
    "job_history",
    "job_lock",
    "known_job",
    "last_run",
    "record_skipped",
    "require_job",
    "run_job_now",
    "stored_job_ids",
]

log = logging.getLogger("appliance.jobs")

#: ``ledger.checkpoint``, ``playbook.churn_retention``: dotted lowercase names (they name lock files).
JOB_ID_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)+$"
_JOB_ID = re.compile(JOB_ID_PATTERN)
_MAX_ID = 96  # job_runs.job_id
_PLAYBOOK = "playbook."
_ACTOR = "system:scheduler"
_WRITE_TRIES = 3
T = TypeVar("T")


class JobError(NodeError):
    """A job cannot be scheduled, run, paused or resumed as asked; the message says why and what to do."""


class UnknownJob(JobError):
    """No job has this id."""


class JobBusy(JobError):
    """The job is running elsewhere (another process holds its lock); this run was skipped and recorded."""


def _checkpoint(node: Node, trigger: str) -> Mapping[str, Any]:
    node.ledger.refresh()
    signed = node.ledger.sign_checkpoint(only_if_grown=True)
    return {"tree_size": signed.checkpoint.tree_size, "timestamp_ms": signed.checkpoint.timestamp_ms}


def _deliver(node: Node, trigger: str) -> Mapping[str, Any]:
    return node.proactive.deliver_outbox()


def _release(node: Node, trigger: str) -> Mapping[str, Any]:
    return node.proactive.release_deferred()


def _anchor(node: Node, trigger: str) -> Mapping[str, Any]:
    return node.anchoring.tick(trigger)


def _witness(node: Node, trigger: str) -> Mapping[str, Any]:
    return node.witnesses.tick(trigger)


#: What each fixed job does: ``fn(node, trigger) -> summary`` (JSON-able); ``playbook.<name>`` jobs run
#: the playbook. A mapping, not a chain of ifs, so a test can add a job of its own.
TARGETS: dict[str, Callable[[Node, str], Mapping[str, Any] | None]] = {
    "ledger.checkpoint": _checkpoint,
    "outbox.deliver": _deliver,
    "triggers.release_deferred": _release,
}
BUILTIN_JOBS: tuple[str, ...] = tuple(TARGETS)
#: Fixed jobs that exist only when a setting turns them on: id → (is it on?, what it does).
OPTIONAL: dict[str, tuple[Callable[[Node], bool], Callable[[Node, str], Mapping[str, Any] | None]]] = {
    "ledger.anchor": (lambda node: node.settings.anchor.chain != "none", _anchor),
    "ledger.witness": (lambda node: node.witnesses.configured, _witness),
}


def _optional_on(node: Node, job_id: str) -> bool:
    entry = OPTIONAL.get(job_id)
    return entry is not None and entry[0](node)


def stored_job_ids(node: Node) -> list[str]:
    """Ids of the jobs the scheduler has registered in the node's store (paused ones included)."""
    engine = node.store.engine
    with engine.connect() as conn:
        return sorted(conn.execute(select(t.scheduler_jobs.c.id)).scalars())


def _playbook_names(node: Node) -> list[str]:
    try:
        return sorted(node.proactive.playbooks)
    except PredictorError as exc:
        raise JobError(f"the playbooks cannot be loaded, so their jobs are unknown: {exc}") from exc


def known_job(node: Node, job_id: str) -> bool:
    """Whether ``job_id`` names a job: a fixed one, a registered one, or one per playbook on disk."""
    if not _JOB_ID.match(job_id) or len(job_id) > _MAX_ID:
        return False
    if job_id in TARGETS or _optional_on(node, job_id) or job_id in stored_job_ids(node):
        return True
    return job_id.startswith(_PLAYBOOK) and job_id[len(_PLAYBOOK) :] in _playbook_names(node)


def require_job(node: Node, job_id: str) -> None:
    """Raise :class:`UnknownJob`, listing the jobs there are, unless ``job_id`` names one."""
    if known_job(node, job_id):
        return
    optional = {j for j in OPTIONAL if _optional_on(node, j)}
    known = sorted(set(TARGETS) | optional | set(stored_job_ids(node)))
    raise UnknownJob(
        f"no job {job_id!r}; known jobs: {', '.join(known)} (and playbook.<name> for each playbook; "
        "see `appliance jobs list`)"
    )


def _target(job_id: str) -> Callable[[Node, str], Mapping[str, Any] | None]:
    fn = TARGETS.get(job_id)
    if fn is not None:
        return fn
    if job_id in OPTIONAL:
        return OPTIONAL[job_id][1]
    if job_id.startswith(_PLAYBOOK):
        name = job_id[len(_PLAYBOOK) :]

        def run_playbook(node: Node, trigger: str) -> Mapping[str, Any]:
            return node.proactive.run_playbook(name, trigger=trigger)

        return run_playbook
    raise UnknownJob(f"no job {job_id!r}; this node knows {', '.join(TARGETS)} and playbook.<name>")


@contextmanager
def job_lock(node: Node, job_id: str) -> Iterator[bool]:
    """Hold ``<data_dir>/state/jobs/<job_id>.lock`` if no other process or thread does; yields whether it did.

    ``flock`` is per open file, so it also keeps two threads of one process apart, and the kernel drops
    it when a process dies mid-run: no stale locks to clean up after a crash.
    """
    if not _JOB_ID.match(job_id):
        raise UnknownJob(f"{job_id!r} is not a job id (lowercase dotted names such as ledger.checkpoint)")
    directory = node.paths(node.settings.data_dir)["state"] / "jobs"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / f"{job_id}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = False
        else:
            held = True
        try:
            yield held
        finally:
            if held:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:500] if first else type(exc).__name__


def _retried(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a history write, again after a moment if the store refused it.

    With SQLite, a transaction that reads and then writes (``finish_run``) fails at once, without
    waiting, when another connection committed in between, e.g. the scheduler advancing a job's next
    run time; the transaction has to start over. A store that is really down fails all three tries.
    """
    for attempt in range(_WRITE_TRIES):
        try:
            return call(*args, **kwargs)
        except StoreError:
            if attempt == _WRITE_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _run_record(node: Node, job_id: str, run_id: int) -> dict[str, Any]:
    for run in node.store.proactive.job_runs(job_id, limit=50):
        if run["id"] == run_id:
            return run
    raise JobError(f"run {run_id} of job {job_id} vanished from job_runs while it was being read")


def record_skipped(node: Node, job_id: str, trigger: str, reason: str, **detail: Any) -> int:
    """One ``skipped`` run with its reason (misfired, already running), so history shows every gap."""
    runs = node.store.proactive
    run_id = _retried(runs.start_run, job_id, trigger)
    _retried(runs.finish_run, run_id, "skipped", detail={"reason": reason, **detail})
    _retried(runs.prune_runs, job_id, node.settings.proactive.job_history)
    metrics.job_finished(job_id, "skipped", None)
    return run_id


def execute(node: Node, job_id: str, trigger: str) -> dict[str, Any]:
    """Run one job now in this process, under its lock, recording the run; returns the run record.

    A job that raises is recorded as ``failed`` (with the first line of the error) and appends a
    ``job.failed`` ledger entry; it does not raise here, so neither the scheduler loop nor a
    caller's request dies of it. Raises :class:`JobBusy` when another run holds the lock.
    """
    fn = _target(job_id)
    runs = node.store.proactive
    with job_lock(node, job_id) as held:
        if not held:
            record_skipped(node, job_id, trigger, "already running")
            raise JobBusy(
                f"job {job_id} is already running (in the scheduler or another command); this run was "
                "skipped and recorded; try again when it has finished (`appliance jobs history "
                f"{job_id}`)"
            )
        run_id = _retried(runs.start_run, job_id, trigger)
        started = time.perf_counter()
        # Every line logged during the run (by the job, the node, libraries) names the job and run.
        with logs.bound(job_id=job_id, job_run=run_id, trigger=trigger):
            try:
                summary = fn(node, trigger)
            except Exception as exc:  # the scheduler loop must outlive any job
                metrics.job_finished(job_id, "failed", time.perf_counter() - started)
                error = _first_line(exc)
                log.exception("job %s failed", job_id)
                _retried(runs.finish_run, run_id, "failed", error=error)
                node.record(_ACTOR, "job.failed", details={"job": job_id, "error": error, "trigger": trigger})
            else:
                metrics.job_finished(job_id, "succeeded", time.perf_counter() - started)
                detail = dict(summary) if summary is not None else None
                _retried(runs.finish_run, run_id, "succeeded", detail=detail)
        _retried(runs.prune_runs, job_id, node.settings.proactive.job_history)
    return _run_record(node, job_id, run_id)


def run_job_now(node: Node, job_id: str, trigger: str = "manual") -> dict[str, Any]:
    """Run ``job_id`` synchronously in the calling process (CLI, HTTP worker); see :func:`execute`."""
    require_job(node, job_id)
    return execute(node, job_id, trigger)


def job_history(node: Node, job_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Newest runs first: status (running, succeeded, failed, skipped), started, duration, detail, error."""
    if not 1 <= limit <= 1000:
        raise JobError(f"limit {limit} is out of range; ask for 1 to 1000 runs")
    if job_id is not None and not _JOB_ID.match(job_id):
        raise UnknownJob(f"{job_id!r} is not a job id (lowercase dotted names such as ledger.checkpoint)")
    return node.store.proactive.job_runs(job_id, limit=limit)


def last_run(node: Node, job_id: str) -> dict[str, Any] | None:
    """The newest run of a job, in brief: status, started, duration_ms, error, reason (when skipped)."""
    runs = node.store.proactive.job_runs(job_id, limit=1)
    if not runs:
        return None
    r = runs[0]
    reason = r["detail"].get("reason") if r["status"] == "skipped" and r["detail"] else None
    return {
        "status": r["status"],
        "started": r["started"],
        "duration_ms": r["duration_ms"],
        "error": r["error"],
        "reason": reason,
    }
