"""APScheduler wiring: the node's periodic work, run in one process beside the workers.

Jobs: signing ledger checkpoints, delivering the webhook outbox, releasing triggers deferred by
quiet hours, and one job per enabled playbook on its cron schedule. The scheduler runs as its own
process (``appliance scheduler``, started by ``appliance serve``) so exactly one copy runs however
many gunicorn workers there are.

The jobs live in the node's store (APScheduler's SQLAlchemy job store, table ``scheduler_jobs``), so
what an operator pauses stays paused across restarts, and a pause or resume made by another process
(the CLI, an HTTP worker) is what the running scheduler reads the next time it looks for due jobs;
``triggers.release_deferred`` runs every minute, which bounds how long that takes. A stored job is
only ``run_job(<job id>)`` by textual reference: the job store pickles it, so it carries no node, no
settings and no callable that a later version of the code could not find.

This is the only module that imports APScheduler; :mod:`appliance.jobs` holds what the other doors
need (errors, guarded execution, history).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from appliance.jobs import JobBusy, JobError, execute, last_run, record_skipped, require_job
from appliance.node import Node

__all__ = [
    "RUN_JOB",
    "JobSpec",
    "build_scheduler",
    "cron_trigger",
    "describe_trigger",
    "ensure_job",
    "job_specs",
    "list_jobs",
    "pause_job",
    "resume_job",
    "run_job",
    "run_scheduler",
    "start_scheduler",
    "sync_jobs",
    "validate_cron",
]

log = logging.getLogger("appliance.scheduler")
#: The control schedulers of the CLI and HTTP workers start and stop on every call: not news.
_control_log = logging.getLogger("appliance.scheduler.control")
_control_log.setLevel(logging.WARNING)

#: What every stored job calls, by textual reference (the job store pickles references, not objects).
RUN_JOB = "appliance.scheduler:run_job"
#: Keeps the scheduler waking at least once a minute, so pauses and resumes made elsewhere are seen.
RELEASE_EVERY_SECONDS = 60
TABLE = "scheduler_jobs"

#: The node of the scheduler process, set by :func:`start_scheduler`; stored jobs name only their id.
_node: Node | None = None


class PlaybookLike(Protocol):
    """What scheduling needs of a playbook (``predictors.playbook.Playbook`` has it)."""

    name: str
    schedule: str | None
    enabled: bool
    description: str


@dataclass(frozen=True)
class JobSpec:
    """One job the settings and playbooks ask for: id, a human name, when it fires."""

    id: str
    name: str
    trigger: BaseTrigger


# -- cron expressions -------------------------------------------------------------------------------
#: Crontab fields → (CronTrigger argument, what is allowed).
_CRON_FIELDS = (
    ("minute", "minute", "0-59"),
    ("hour", "hour", "0-23"),
    ("day of month", "day", "1-31"),
    ("month", "month", "1-12 or jan-dec"),
)
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: APScheduler 3 counts weekdays from Monday = 0; crontab from Sunday = 0 (7 is Sunday too).
_AP_DOW = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DOW_ITEM = re.compile(r"^(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?$")


def _dow_number(token: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    if token in _DOW_NAMES:
        return _DOW_NAMES.index(token)
    raise ValueError(token)


def _day_of_week(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as APScheduler 3 reads it (0 = Monday), by name."""
    days: set[int] = set()
    for item in field.lower().split(","):
        m = _DOW_ITEM.match(item)
        if not m:
            raise ValueError(item)
        start, end, step = m.group(1), m.group(2), int(m.group(3) or 1)
        if step < 1:
            raise ValueError(item)
        if start == "*":
            if end is not None:
                raise ValueError(item)
            lo, hi = 0, 6
        else:
            lo = _dow_number(start)
            hi = _dow_number(end) if end is not None else (6 if m.group(3) else lo)
            if end in ("7", "sun") and lo > 0:
                hi = 7  # "5-7", "sat-sun": up to Sunday at the end of the week
            if hi < lo:
                raise ValueError(item)
        days.update(d % 7 for d in range(lo, hi + 1, step))
    if days == set(range(7)):
        return "*"
    # Runs of consecutive days in APScheduler's order, as names: "mon-fri", "sat-sun", "mon,wed,fri".
    order = sorted((d - 1) % 7 for d in days)
    parts: list[str] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and order[j + 1] == order[j] + 1:
            j += 1
        first, last = _AP_DOW[order[i]], _AP_DOW[order[j]]
        parts.append(first if i == j else f"{first}-{last}" if j > i + 1 else f"{first},{last}")
        i = j + 1
    return ",".join(parts)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise JobError(
            f"time zone {tz!r} is not an IANA time zone name; set proactive.timezone to one such as "
            "'UTC' or 'Asia/Shanghai'"
        ) from None


def cron_trigger(expr: str, tz: str) -> CronTrigger:
    """A trigger for a standard 5-field crontab expression in time zone ``tz``; :class:`JobError` if bad.

    Standard means standard: 0 and 7 are Sunday (APScheduler 3 alone would read 0 as Monday), and
    restricting both day of month and day of week is refused, because crontab fires on either while
    APScheduler would fire only on days matching both.
    """
    zone = _zone(tz)
    bad = f"schedule {expr!r} is not a cron expression"
    fields = expr.split()
    if len(fields) != 5:
        raise JobError(
            f"{bad}: it has {len(fields)} fields, a cron expression has 5 (minute hour day-of-month month "
            "day-of-week), e.g. '0 9 * * *' for 09:00 every day"
        )
    kwargs: dict[str, str] = {}
    for (label, arg, allowed), value in zip(_CRON_FIELDS, fields[:4], strict=True):
        try:
            CronTrigger(**{arg: value}, timezone=zone)
        except ValueError:
            raise JobError(
                f"{bad}: {label} {value!r} is not valid: {label} must be {allowed} "
                "(a value, a range a-b, a list a,b or a step */n)"
            ) from None
        kwargs[arg] = value
    try:
        kwargs["day_of_week"] = _day_of_week(fields[4])
    except ValueError:
        raise JobError(
            f"{bad}: day of week {fields[4]!r} is not valid: day of week must be 0-7 or sun-sat "
            "(0 and 7 are Sunday; a value, a range a-b, a list a,b or a step */n)"
        ) from None
    if kwargs["day"] != "*" and kwargs["day_of_week"] != "*":
        raise JobError(
            f"{bad} with one meaning: it restricts both day of month ({fields[2]!r}) and day of week "
            f"({fields[4]!r}); cron fires when either matches, this scheduler only when both do; "
            "restrict one of them and use '*' for the other"
        )
    return CronTrigger(**kwargs, timezone=zone)


def validate_cron(expr: str, tz: str) -> None:
    """Raise :class:`JobError` saying what is wrong with ``expr`` (or ``tz``); playbook loading calls it."""
    cron_trigger(expr, tz)


def describe_trigger(trigger: BaseTrigger) -> str:
    """``cron[0 9 * * mon-fri] Asia/Shanghai`` or ``every 10 s``."""
    if isinstance(trigger, CronTrigger):
        f = {field.name: str(field) for field in trigger.fields}
        expr = " ".join(f[k] for k in ("minute", "hour", "day", "month", "day_of_week"))
        return f"cron[{expr}] {trigger.timezone}"
    if isinstance(trigger, IntervalTrigger):
        return f"every {int(trigger.interval.total_seconds())} s"
    return str(trigger)


# -- the jobs the node asks for ------------------------------------------------------------------------
def _builtin_specs(node: Node) -> list[JobSpec]:
    s = node.settings
    specs = [
        JobSpec(
            "ledger.checkpoint",
            "sign a ledger checkpoint when the log grew",
            IntervalTrigger(seconds=s.ledger.checkpoint_interval_seconds, timezone=UTC),
        ),
        JobSpec(
            "outbox.deliver",
            "deliver due webhooks from the outbox",
            IntervalTrigger(seconds=s.proactive.delivery_interval_seconds, timezone=UTC),
        ),
        JobSpec(
            "triggers.release_deferred",
            "release triggers deferred by quiet hours",
            IntervalTrigger(seconds=RELEASE_EVERY_SECONDS, timezone=UTC),
        ),
    ]
    if s.anchor.chain != "none":
        specs.append(
            JobSpec(
                "ledger.anchor",
                f"anchor signed checkpoints to {s.anchor.chain} when due; follow their confirmations",
                IntervalTrigger(seconds=s.anchor.check_seconds, timezone=UTC),
            )
        )
    if node.witnesses.configured:
        specs.append(
            JobSpec(
                "ledger.witness",
                "push new signed checkpoints to the witnesses and keep their cosignatures",
                IntervalTrigger(seconds=s.witness.check_seconds, timezone=UTC),
            )
        )
    return specs


def job_specs(node: Node, playbooks: Mapping[str, PlaybookLike] | None = None) -> list[JobSpec]:
    """The fixed jobs from settings, and ``playbook.<name>`` for each enabled, scheduled playbook.

    Every playbook's schedule is checked, enabled or not, so a bad one is reported before it matters.
    """
    specs = _builtin_specs(node)
    tz = node.settings.proactive.timezone
    books = node.proactive.playbooks if playbooks is None else playbooks
    for name in sorted(books):
        pb = books[name]
        if not pb.schedule:
            continue
        try:
            trigger = cron_trigger(pb.schedule, tz)
        except JobError as exc:
            raise JobError(f"playbook {name}: {exc}; fix `schedule:` in its playbook file") from None
        if pb.enabled:
            summary = (pb.description or "").strip().splitlines()
            title = f"playbook {name}" + (f": {summary[0]}" if summary else "")
            specs.append(JobSpec(f"playbook.{name}", title[:160], trigger))
    return specs


# -- the scheduler ------------------------------------------------------------------------------------
class _NodeJobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store over the node's engine, which it must not dispose of."""

    def shutdown(self) -> None:
        pass  # the node closes its store


class _Scheduler(BackgroundScheduler):
    """APScheduler's background scheduler, minus one more look for due jobs after shutdown.

    APScheduler 3's loop wakes once more after ``shutdown()`` and, its state being "stopped" rather
    than "paused", hands due jobs to the executor it has just shut down: each fails to start, yet its
    next run time is advanced in the store, so the run is lost without a trace (agronholm/apscheduler
    #285, #985).
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        return super()._process_jobs()  # type: ignore[no-any-return]


class _ControlScheduler(BaseScheduler):
    """Reads and edits the job store for the CLI and HTTP workers; it has no loop, so it runs no job."""

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def wakeup(self) -> None:
        pass  # nothing to wake: the scheduler process notices changes on its next look at the store


def _jobstore(node: Node) -> _NodeJobStore:
    return _NodeJobStore(engine=node.store.engine, tablename=TABLE)


def _on_event(node: Node, event: JobEvent) -> None:
    """Runs that never started still belong in the history: misfired, or the previous run still going."""
    try:
        if event.code == EVENT_JOB_MISSED:
            scheduled = event.scheduled_run_time
            late = (datetime.now(UTC) - scheduled).total_seconds()
            grace = node.settings.proactive.misfire_grace_seconds
            reason = f"misfired: {late:.0f} s late (misfire grace {grace} s)"
            when = scheduled.astimezone(UTC).isoformat().replace("+00:00", "Z")
            record_skipped(node, event.job_id, "schedule", reason, scheduled=when)
            log.warning("job %s skipped: %s", event.job_id, reason)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            record_skipped(node, event.job_id, "schedule", "already running")
            log.warning("job %s skipped: its previous run is still going", event.job_id)
    except Exception:
        log.exception("recording a skipped run of job %s failed", event.job_id)


def _job_defaults(node: Node) -> dict[str, Any]:
    """The run policy; stored with each job when it is added (every start re-adds them)."""
    return {
        "coalesce": True,  # after downtime or a pause, one run instead of a burst
        "max_instances": 1,  # never two overlapping runs of one job (the file lock covers processes)
        "misfire_grace_time": node.settings.proactive.misfire_grace_seconds,  # later: skipped, recorded
    }


def build_scheduler(node: Node) -> BackgroundScheduler:
    """A scheduler over the node's job store, with the run policy; :func:`start_scheduler` starts it."""
    scheduler = _Scheduler(
        jobstores={"default": _jobstore(node)},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults=_job_defaults(node),
        timezone=UTC,
    )
    scheduler.add_listener(lambda event: _on_event(node, event), EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def sync_jobs(scheduler: BaseScheduler, specs: Sequence[JobSpec]) -> dict[str, list[str]]:
    """Make the stored jobs what ``specs`` say, keeping what an operator decided.

    ``scheduler`` must be started (paused is fine) so it reads the store. A paused job stays paused;
    a job whose trigger did not change keeps its next run time, so a run missed while the node was
    down meets the misfire policy (run late within the grace time, else recorded as skipped) rather
    than vanishing; a changed trigger takes effect; a job no longer asked for (a removed playbook) is
    removed.
    """
    existing: dict[str, Job] = {job.id: job for job in scheduler.get_jobs()}
    wanted = {spec.id for spec in specs}
    report: dict[str, list[str]] = {"added": [], "updated": [], "kept": [], "removed": [], "paused": []}
    for job_id in sorted(set(existing) - wanted):
        scheduler.remove_job(job_id)
        report["removed"].append(job_id)
    for spec in specs:
        old = existing.get(spec.id)
        kwargs: dict[str, Any] = {}
        if old is None:
            report["added"].append(spec.id)
        elif old.next_run_time is None:
            kwargs["next_run_time"] = None  # paused by an operator: stays paused
            report["paused"].append(spec.id)
        elif describe_trigger(old.trigger) == describe_trigger(spec.trigger):
            kwargs["next_run_time"] = old.next_run_time
            report["kept"].append(spec.id)
        else:
            report["updated"].append(spec.id)
        scheduler.add_job(
            RUN_JOB,
            trigger=spec.trigger,
            args=[spec.id],
            id=spec.id,
            name=spec.name,
            replace_existing=True,
            **kwargs,
        )
    return report


def start_scheduler(node: Node, specs: Sequence[JobSpec] | None = None) -> BackgroundScheduler:
    """Check the schedules, sync the stored jobs, and start running them (``specs``: default from settings).

    Schedules are checked before the store is touched, so a bad cron expression changes nothing.
    """
    global _node
    wanted = job_specs(node) if specs is None else list(specs)
    scheduler = build_scheduler(node)
    _node = node
    scheduler.start(paused=True)
    try:
        report = sync_jobs(scheduler, wanted)
    except BaseException:
        scheduler.shutdown(wait=False)
        raise
    log.info("jobs synced: %s", {k: v for k, v in report.items() if v})
    scheduler.resume()
    return scheduler


def _run_safely(node: Node, job_id: str, trigger: str) -> None:
    try:
        run = execute(node, job_id, trigger)
        log.info("job %s %s in %s ms", job_id, run["status"], run["duration_ms"])
    except JobBusy:
        log.warning("job %s skipped: it is running elsewhere", job_id)
    except Exception:
        log.exception("job %s could not be run or recorded", job_id)


def run_job(job_id: str) -> None:
    """What every stored job calls: run ``job_id`` on the scheduler process's node, never raising."""
    node = _node
    if node is None:
        log.error("job %s fired with no node: start the scheduler with start_scheduler()", job_id)
        return
    _run_safely(node, job_id, "schedule")


def run_scheduler(node: Node, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set)."""
    global _node
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    scheduler = start_scheduler(node)
    try:
        _run_safely(
            node, "ledger.checkpoint", "startup"
        )  # a tree head soon after start, whatever the interval
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
        _node = None


# -- control from other processes ------------------------------------------------------------------------
@contextmanager
def _control(node: Node) -> Iterator[BaseScheduler]:
    """A scheduler that only reads and edits the job store: started paused and loopless, it runs no job."""
    scheduler = _ControlScheduler(
        jobstores={"default": _jobstore(node)},
        job_defaults=_job_defaults(node),
        timezone=UTC,
        logger=_control_log,
    )
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _job_dict(node: Node, job_id: str, name: str, trigger: BaseTrigger, job: Job | None) -> dict[str, Any]:
    return {
        "id": job_id,
        "name": name,
        "trigger": describe_trigger(trigger),
        "next_run_time": _iso(job.next_run_time) if job is not None else None,
        "paused": job is not None and job.next_run_time is None,
        "scheduled": job is not None,
        "last_run": last_run(node, job_id),
    }


def ensure_job(node: Node, job_id: str) -> bool:
    """Store a fixed job that the node's configuration has just turned on (``appliance witness add``),
    so a running scheduler runs it from its next look at the store, without a restart. True if added."""
    for spec in _builtin_specs(node):
        if spec.id == job_id:
            with _control(node) as scheduler:
                if scheduler.get_job(job_id) is None:
                    scheduler.add_job(RUN_JOB, trigger=spec.trigger, args=[job_id], id=job_id, name=spec.name)
                    return True
    return False


def list_jobs(node: Node) -> list[dict[str, Any]]:
    """Every stored job (and the fixed ones not stored yet, ``scheduled: false``), with its last run."""
    with _control(node) as scheduler:
        stored = {job.id: job for job in scheduler.get_jobs()}
    out = [_job_dict(node, j.id, j.name, j.trigger, j) for j in stored.values()]
    out += [
        _job_dict(node, s.id, s.name, s.trigger, None) for s in _builtin_specs(node) if s.id not in stored
    ]
    return sorted(out, key=lambda j: j["id"])


def _spec(node: Node, job_id: str) -> JobSpec:
    for spec in _builtin_specs(node):
        if spec.id == job_id:
            return spec
    for spec in job_specs(node):
        if spec.id == job_id:
            return spec
    raise JobError(f"job {job_id} is not scheduled (its playbook is disabled or has no schedule)")


def _set_paused(node: Node, job_id: str, paused: bool, actor: str, request_id: str | None) -> dict[str, Any]:
    require_job(node, job_id)
    with _control(node) as scheduler:
        job = scheduler.get_job(job_id)
        if job is None and paused:
            # Not stored yet (the scheduler never ran with it): store it paused, for the scheduler to keep.
            spec = _spec(node, job_id)
            job = scheduler.add_job(
                RUN_JOB, trigger=spec.trigger, args=[job_id], id=job_id, name=spec.name, next_run_time=None
            )
            changed = True
        elif job is None:
            changed = False
        else:
            changed = (job.next_run_time is None) != paused
            if changed:
                job = scheduler.pause_job(job_id) if paused else scheduler.resume_job(job_id)
        if job is None:
            spec = _spec(node, job_id)
            result = _job_dict(node, job_id, spec.name, spec.trigger, None)
        else:
            result = _job_dict(node, job_id, job.name, job.trigger, job)
    if changed:
        action = "job.paused" if paused else "job.resumed"
        node.record(actor, action, details={"job": job_id}, request_id=request_id)
    return {**result, "changed": changed}


def pause_job(node: Node, job_id: str, *, actor: str, request_id: str | None = None) -> dict[str, Any]:
    """Stop a job from firing until resumed, across restarts; records ``job.paused`` when it changed.

    A run already going finishes; manual runs (``appliance jobs run``) still work on a paused job.
    """
    return _set_paused(node, job_id, True, actor, request_id)


def resume_job(node: Node, job_id: str, *, actor: str, request_id: str | None = None) -> dict[str, Any]:
    """Let a paused job fire again from its next scheduled time (missed runs are not caught up)."""
    return _set_paused(node, job_id, False, actor, request_id)
