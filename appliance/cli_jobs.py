"""``appliance jobs``: the scheduler's jobs from the command line (list, run now, pause, resume, history).

These act on the job store in the node's database, which the running scheduler process reads, so a
pause here holds there (within a minute) and across restarts. ``run`` executes the job in this
process under the same per-job lock as the scheduler, so it never overlaps a scheduled run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from appliance.cli_base import CLI_ACTOR, CliError, echo_json, echo_table, node_from
from appliance.jobs import JobBusy, JobError, job_history, known_job, run_job_now

__all__ = ["jobs"]


def _duration(ms: int | None) -> str:
    if ms is None:
        return ""
    return f"{ms} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _outcome(run: dict[str, Any] | None) -> str:
    if run is None:
        return "never ran"
    why = run.get("error") or run.get("reason")
    return f"{run['status']} {run['started']}" + (f" ({why})" if why else "")


@contextmanager
def _job_traceback(shown: bool) -> Iterator[None]:
    """A failed job's traceback goes to the log (the scheduler's, a worker's); here, only if asked."""
    logger = logging.getLogger("appliance.jobs")
    if shown:
        yield
        return
    handler, propagate = logging.NullHandler(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


@click.group()
def jobs() -> None:
    """The scheduler's jobs: checkpoints, webhook delivery, deferred triggers, one per playbook."""


@jobs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def jobs_list(ctx: click.Context, as_json: bool) -> None:
    """Jobs with their schedule, next run, paused state and last run."""
    from appliance.scheduler import list_jobs

    with node_from(ctx, readonly=True) as node:
        try:
            rows = list_jobs(node)
        except JobError as exc:
            raise CliError(str(exc)) from None
    if as_json:
        echo_json(rows)
        return
    echo_table(
        "jobs",
        ["id", "schedule", "next run (UTC)", "state", "last run", "took"],
        [
            [
                r["id"],
                r["trigger"],
                r["next_run_time"],
                "paused" if r["paused"] else "scheduled" if r["scheduled"] else "not registered yet",
                _outcome(r["last_run"]),
                _duration(r["last_run"]["duration_ms"]) if r["last_run"] else "",
            ]
            for r in rows
        ],
    )


@jobs.command("run")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@click.option("--traceback", "traceback", is_flag=True, help="Show the traceback of a failure.")
@click.pass_context
def jobs_run(ctx: click.Context, job_id: str, as_json: bool, traceback: bool) -> None:
    """Run JOB_ID now, in this process; exit 1 if it failed, 2 if unknown or running elsewhere."""
    with node_from(ctx) as node, _job_traceback(traceback):
        try:
            run = run_job_now(node, job_id, trigger="manual")
        except JobBusy as exc:
            raise CliError(f"not run: {exc}") from None
        except JobError as exc:
            raise CliError(str(exc)) from None
    if as_json:
        echo_json(run)
    else:
        click.echo(f"{job_id}: {run['status']} in {_duration(run['duration_ms'])} (run {run['id']})")
        if run["detail"]:
            for key, value in run["detail"].items():
                click.echo(f"  {key}: {value}")
        if run["error"]:
            click.echo(f"  error: {run['error']}", err=True)
    if run["status"] == "failed":
        ctx.exit(1)


def _set_state(ctx: click.Context, job_id: str, paused: bool) -> None:
    from appliance.scheduler import pause_job, resume_job

    change = pause_job if paused else resume_job
    with node_from(ctx) as node:
        try:
            state = change(node, job_id, actor=CLI_ACTOR)
        except JobError as exc:
            raise CliError(str(exc)) from None
    word = "paused" if paused else "resumed"
    if not state["changed"]:
        click.echo(f"{job_id} was already {'paused' if paused else 'running on schedule'}; nothing changed")
        return
    nxt = f"; next run {state['next_run_time']}" if state["next_run_time"] else ""
    click.echo(f"{job_id} {word}{nxt} (recorded in the ledger as job.{word})")


@jobs.command("pause")
@click.argument("job_id")
@click.pass_context
def jobs_pause(ctx: click.Context, job_id: str) -> None:
    """Stop JOB_ID from firing (the running scheduler notices within a minute; survives restarts)."""
    _set_state(ctx, job_id, True)


@jobs.command("resume")
@click.argument("job_id")
@click.pass_context
def jobs_resume(ctx: click.Context, job_id: str) -> None:
    """Let a paused JOB_ID fire again from its next scheduled time."""
    _set_state(ctx, job_id, False)


@jobs.command("history")
@click.argument("job_id", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def jobs_history(ctx: click.Context, job_id: str | None, limit: int, as_json: bool) -> None:
    """Recent runs (of JOB_ID, or of every job), newest first, with status and duration."""
    with node_from(ctx, readonly=True) as node:
        try:
            runs = job_history(node, job_id, limit)
            if job_id is not None and not runs and not known_job(node, job_id):
                raise CliError(f"no job {job_id!r} and no runs under that id; see `appliance jobs list`")
        except JobError as exc:
            raise CliError(str(exc)) from None
    if as_json:
        echo_json(runs)
        return
    echo_table(
        f"runs of {job_id}" if job_id else "job runs",
        ["run", "job", "trigger", "started (UTC)", "status", "took", "error / reason"],
        [
            [
                r["id"],
                r["job_id"],
                r["trigger"],
                r["started"],
                r["status"],
                _duration(r["duration_ms"]),
                r["error"] or ((r["detail"] or {}).get("reason") if r["status"] == "skipped" else None),
            ]
            for r in runs
        ],
    )
