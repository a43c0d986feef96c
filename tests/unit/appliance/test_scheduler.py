"""The scheduler's jobs on a real node: persistent job store, pause, cron checks, overlap, misfire, failure.

Jobs of the tests' own (``test.*`` in ``appliance.jobs.TARGETS``) stand in for playbook runs, so the
job mechanics are tested on the real scheduler, store, lock files and ledger without a trained model.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import event

from appliance import jobs
from appliance import scheduler as sch
from appliance.jobs import JobBusy, JobError, UnknownJob, job_history, run_job_now, stored_job_ids
from appliance.node import Node
from appliance.scheduler import JobSpec, cron_trigger, job_specs, list_jobs, pause_job, resume_job
from appliance.settings import Settings, load_settings

HOUR = 3600


@dataclass(frozen=True)
class Book:
    """The fields of a playbook that scheduling reads."""

    name: str
    schedule: str | None
    enabled: bool = True
    description: str = ""


def _settings(data_dir: Path) -> Settings:
    # Long intervals: the fixed jobs never fire on their own during a test.
    return load_settings(
        node={"data_dir": data_dir},
        ledger={"checkpoint_interval_seconds": HOUR},
        proactive={"delivery_interval_seconds": HOUR, "timezone": "Asia/Shanghai"},
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised node, copied per test (init takes most of a second)."""
    data_dir = tmp_path_factory.mktemp("template") / "node"
    Node.init(_settings(data_dir))
    return data_dir


@pytest.fixture
def node(template: Path, tmp_path: Path) -> Iterator[Node]:
    data_dir = tmp_path / "node"
    shutil.copytree(template, data_dir)
    n = Node.open(_settings(data_dir))
    yield n
    n.close()


class Calls:
    """A test job: counts its runs, can fail, can block until released."""

    def __init__(self) -> None:
        self.count = 0
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.fail: str | None = None

    def __call__(self, node: Node, trigger: str) -> Mapping[str, Any]:
        self.count += 1
        self.started.set()
        self.release.wait(10)
        if self.fail:
            raise ValueError(self.fail)
        time.sleep(0.02)
        return {"count": self.count, "trigger": trigger}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Calls]:
    made = {name: Calls() for name in ("test.ok", "test.fail", "test.slow", "test.yearly")}
    made["test.fail"].fail = "the receiver said no\nsecond line"
    for name, fn in made.items():
        monkeypatch.setitem(jobs.TARGETS, name, fn)
    return made


def _entries(node: Node, action: str) -> list[Any]:
    node.ledger.refresh()
    return [e for e in (node.ledger.entry(i) for i in range(node.ledger.size)) if e.action == action]


def _wait_for_run(node: Node, job_id: str, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in job_history(node, job_id) if r["status"] != "running"]
        if len(runs) >= n:
            return runs
        time.sleep(0.02)
    raise AssertionError(f"no finished run of {job_id} within {timeout} s: {job_history(node, job_id)}")


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _hourly(job_id: str) -> JobSpec:
    return JobSpec(job_id, job_id, IntervalTrigger(seconds=HOUR, timezone=UTC))


# -- the persistent job store ----------------------------------------------------------------------------
def test_jobs_synced_into_the_store_survive_a_new_scheduler(node: Node) -> None:
    books = {
        "churn": Book("churn", "0 9 * * *"),
        "winback": Book("winback", "30 20 * * 1-5", description="d"),
    }
    scheduler = sch.start_scheduler(node, job_specs(node, books))
    scheduler.shutdown()
    expected = [
        "ledger.checkpoint",
        "outbox.deliver",
        "playbook.churn",
        "playbook.winback",
        "triggers.release_deferred",
    ]
    assert stored_job_ids(node) == expected
    listed = {j["id"]: j for j in list_jobs(node)}
    assert listed["playbook.churn"]["trigger"] == "cron[0 9 * * *] Asia/Shanghai"
    assert listed["playbook.winback"]["trigger"] == "cron[30 20 * * mon-fri] Asia/Shanghai"
    assert listed["outbox.deliver"]["trigger"] == f"every {HOUR} s"
    assert listed["triggers.release_deferred"]["trigger"] == "every 60 s"
    # 09:00 in Shanghai is 01:00 UTC.
    assert listed["playbook.churn"]["next_run_time"].endswith("T01:00:00Z")
    assert all(j["scheduled"] and not j["paused"] and j["last_run"] is None for j in listed.values())

    # Next start: churn's schedule changed, winback's playbook file is gone, a disabled one is not scheduled.
    books = {"churn": Book("churn", "15 7 * * *"), "off": Book("off", "0 1 * * *", enabled=False)}
    scheduler = sch.start_scheduler(node, job_specs(node, books))
    scheduler.shutdown()
    listed = {j["id"]: j for j in list_jobs(node)}
    assert "playbook.winback" not in listed and "playbook.off" not in listed
    assert listed["playbook.churn"]["trigger"] == "cron[15 7 * * *] Asia/Shanghai"
    assert listed["playbook.churn"]["next_run_time"].endswith("T23:15:00Z")


def test_list_shows_fixed_jobs_before_the_scheduler_ever_ran(node: Node) -> None:
    listed = list_jobs(node)
    assert [j["id"] for j in listed] == ["ledger.checkpoint", "outbox.deliver", "triggers.release_deferred"]
    assert all(not j["scheduled"] and j["next_run_time"] is None for j in listed)


def test_pause_persists_across_scheduler_instances_and_is_recorded(node: Node) -> None:
    books = {"churn": Book("churn", "0 9 * * *")}
    scheduler = sch.start_scheduler(node, job_specs(node, books))
    try:
        # Paused from "another process" (a control scheduler) while this one runs.
        state = pause_job(node, "playbook.churn", actor="admin:test")
        assert state["paused"] and state["changed"] and state["next_run_time"] is None
        assert scheduler.get_job("playbook.churn").next_run_time is None
    finally:
        scheduler.shutdown()
    scheduler = sch.start_scheduler(node, job_specs(node, books))
    try:
        assert scheduler.get_job("playbook.churn").next_run_time is None
        assert scheduler.get_job("ledger.checkpoint").next_run_time is not None
    finally:
        scheduler.shutdown()
    assert pause_job(node, "playbook.churn", actor="admin:test")["changed"] is False
    paused = _entries(node, "job.paused")
    assert [(e.actor, dict(e.details)) for e in paused] == [("admin:test", {"job": "playbook.churn"})]

    state = resume_job(node, "playbook.churn", actor="admin:test")
    assert state["changed"] and not state["paused"] and state["next_run_time"].endswith("T01:00:00Z")
    assert len(_entries(node, "job.resumed")) == 1
    scheduler = sch.start_scheduler(node, job_specs(node, books))
    scheduler.shutdown()
    assert {j["id"]: j["paused"] for j in list_jobs(node)}["playbook.churn"] is False


def test_a_job_paused_before_the_scheduler_first_ran_stays_paused(node: Node) -> None:
    assert pause_job(node, "outbox.deliver", actor="admin:test")["changed"]
    assert stored_job_ids(node) == ["outbox.deliver"]
    scheduler = sch.start_scheduler(node, job_specs(node, {}))
    try:
        assert scheduler.get_job("outbox.deliver").next_run_time is None
        assert scheduler.get_job("ledger.checkpoint").next_run_time is not None
    finally:
        scheduler.shutdown()


def test_pause_of_an_unknown_job_lists_the_known_ones(node: Node) -> None:
    with pytest.raises(UnknownJob, match=r"no job 'ledger\.nope'; known jobs: ledger\.checkpoint, "):
        pause_job(node, "ledger.nope", actor="admin:test")
    assert _entries(node, "job.paused") == []


# -- cron expressions ---------------------------------------------------------------------------------------
def test_a_bad_cron_in_a_playbook_is_refused_with_the_playbook_and_the_expression(node: Node) -> None:
    books = {"churn_retention": Book("churn_retention", "61 * * * *")}
    with pytest.raises(JobError) as err:
        sch.start_scheduler(node, job_specs(node, books))
    assert str(err.value) == (
        "playbook churn_retention: schedule '61 * * * *' is not a cron expression: minute '61' is not valid: "
        "minute must be 0-59 (a value, a range a-b, a list a,b or a step */n); fix `schedule:` in its "
        "playbook file"
    )
    assert stored_job_ids(node) == []  # nothing was touched
    # Disabled playbooks are checked too: a bad schedule is bad before anyone enables it.
    with pytest.raises(JobError, match="playbook later: schedule 'every day'"):
        job_specs(node, {"later": Book("later", "every day", enabled=False)})


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 9 * *", "it has 4 fields, a cron expression has 5 (minute hour day-of-month month day-of-week)"),
        ("0 24 * * *", "hour '24' is not valid: hour must be 0-23"),
        ("0 9 0 * *", "day of month '0' is not valid: day of month must be 1-31"),
        ("0 9 * 13 *", "month '13' is not valid: month must be 1-12 or jan-dec"),
        ("0 9 * * 8", "day of week '8' is not valid: day of week must be 0-7 or sun-sat"),
        ("0 9 * * mon-", "day of week 'mon-' is not valid"),
        ("*/0 9 * * *", "minute '*/0' is not valid"),
        ("0 9 1 * mon", "restricts both day of month ('1') and day of week ('mon')"),
    ],
)
def test_cron_errors_say_which_field_is_wrong(expr: str, message: str) -> None:
    with pytest.raises(JobError) as err:
        sch.validate_cron(expr, "UTC")
    assert str(err.value).startswith(f"schedule {expr!r} is not a cron expression")
    assert message in str(err.value)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(
        JobError, match=r"'Mars/Olympus' is not an IANA time zone name; set proactive\.timezone"
    ):
        sch.validate_cron("0 9 * * *", "Mars/Olympus")


@pytest.mark.parametrize(
    ("expr", "weekdays"),
    [
        ("0 9 * * 0", {6}),  # crontab: 0 is Sunday (APScheduler 3 alone would say Monday)
        ("0 9 * * 7", {6}),
        ("0 9 * * 1-5", {0, 1, 2, 3, 4}),
        ("0 9 * * 5-7", {4, 5, 6}),
        ("0 9 * * sat-sun", {5, 6}),
        ("0 9 * * */2", {6, 1, 3, 5}),  # 0,2,4,6: Sun, Tue, Thu, Sat
        ("0 9 * * SUN,wed", {6, 2}),
        ("0 9 * * *", set(range(7))),
    ],
)
def test_day_of_week_means_what_crontab_means(expr: str, weekdays: set[int]) -> None:
    trigger = cron_trigger(expr, "UTC")
    t = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, after 09:00
    fired = set()
    for _ in range(14):
        t = trigger.get_next_fire_time(None, t + timedelta(minutes=1))
        assert (t.hour, t.minute) == (9, 0)
        fired.add(t.weekday())
    assert fired == weekdays


# -- overlap -----------------------------------------------------------------------------------------------
def test_a_second_run_while_one_is_going_is_skipped_and_recorded(node: Node, calls: dict[str, Calls]) -> None:
    slow = calls["test.slow"]
    slow.release.clear()
    results: list[dict[str, Any]] = []
    first = threading.Thread(target=lambda: results.append(run_job_now(node, "test.slow")))
    first.start()
    assert slow.started.wait(5)
    try:
        with pytest.raises(JobBusy, match=r"job test\.slow is already running"):
            run_job_now(node, "test.slow")
    finally:
        slow.release.set()
        first.join(10)
    assert slow.count == 1
    assert results[0]["status"] == "succeeded"
    history = job_history(node, "test.slow")
    assert [r["status"] for r in history] == ["skipped", "succeeded"]  # newest (started last) first
    assert history[0]["detail"] == {"reason": "already running"}


def test_a_run_held_by_another_process_is_skipped_by_the_scheduler_too(
    node: Node, calls: dict[str, Calls], monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = node.paths(node.settings.data_dir)["state"] / "jobs" / "test.ok.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(JobBusy):
            run_job_now(node, "test.ok")
        monkeypatch.setattr(sch, "_node", node)
        sch.run_job("test.ok")  # the scheduler's entry point: records, logs, never raises
    finally:
        holder.communicate("", timeout=10)
    assert calls["test.ok"].count == 0
    assert [(r["status"], r["trigger"]) for r in job_history(node, "test.ok")] == [
        ("skipped", "schedule"),
        ("skipped", "manual"),
    ]
    # Released when the holder exits: the next run goes ahead.
    assert run_job_now(node, "test.ok")["status"] == "succeeded"


# -- misfire, failure, history -------------------------------------------------------------------------------
def test_a_run_missed_beyond_the_grace_time_is_recorded_as_skipped(
    node: Node, calls: dict[str, Calls]
) -> None:
    yearly = cron_trigger("0 0 1 1 *", "UTC")
    missed = datetime.now(UTC) - timedelta(days=1)
    # As if the node had been down when the job was due: its stored next run is a day ago.
    # (Regression: APScheduler's own shutdown looked for due jobs once more and lost this run.)
    before = sch.build_scheduler(node)
    before.start(paused=True)
    before.add_job(sch.RUN_JOB, trigger=yearly, args=["test.yearly"], id="test.yearly", next_run_time=missed)
    before.shutdown()
    # Nor do the CLI's and HTTP workers' reads and edits of the job store touch it.
    list_jobs(node)
    pause_job(node, "ledger.checkpoint", actor="admin:test")
    assert {j["id"]: j["next_run_time"] for j in list_jobs(node)}["test.yearly"] == _iso(missed)

    scheduler = sch.start_scheduler(
        node, [JobSpec("test.yearly", "yearly", cron_trigger("0 0 1 1 *", "UTC"))]
    )
    try:
        (run,) = _wait_for_run(node, "test.yearly")
        next_run = scheduler.get_job("test.yearly").next_run_time
    finally:
        scheduler.shutdown()
    assert calls["test.yearly"].count == 0
    assert run["status"] == "skipped" and run["trigger"] == "schedule"
    assert run["detail"]["reason"].startswith("misfired: 864")  # ~86400 s late
    assert run["detail"]["reason"].endswith(" s late (misfire grace 300 s)")
    assert run["detail"]["scheduled"] == _iso(missed)
    assert (next_run.month, next_run.day) == (1, 1) and next_run > datetime.now(UTC)
    assert {j["id"]: j for j in list_jobs(node)}["test.yearly"]["last_run"]["reason"] == run["detail"][
        "reason"
    ]


def test_a_failing_job_is_recorded_and_the_scheduler_keeps_running(
    node: Node, calls: dict[str, Calls]
) -> None:
    scheduler = sch.start_scheduler(node, [_hourly("test.fail"), _hourly("test.ok")])
    try:
        scheduler.modify_job("test.fail", next_run_time=datetime.now(UTC))
        (failed,) = _wait_for_run(node, "test.fail")
        scheduler.modify_job("test.ok", next_run_time=datetime.now(UTC))
        (ok,) = _wait_for_run(node, "test.ok")
        assert scheduler.running
    finally:
        scheduler.shutdown()
    assert failed["status"] == "failed" and failed["trigger"] == "schedule"
    assert failed["error"] == "ValueError: the receiver said no"
    assert ok["status"] == "succeeded" and ok["detail"] == {"count": 1, "trigger": "schedule"}
    (entry,) = _entries(node, "job.failed")
    assert entry.actor == "system:scheduler"
    assert dict(entry.details) == {
        "job": "test.fail",
        "error": "ValueError: the receiver said no",
        "trigger": "schedule",
    }
    assert _entries(node, "job.succeeded") == []  # successes are recorded by what the job does


def test_history_has_status_and_duration(node: Node, calls: dict[str, Calls]) -> None:
    run = run_job_now(node, "test.ok")
    assert run["status"] == "succeeded" and run["trigger"] == "manual"
    assert run["duration_ms"] >= 20  # the job sleeps 20 ms
    assert run["started"] <= run["finished"]
    failed = run_job_now(node, "test.fail", trigger="api")
    assert failed["status"] == "failed" and failed["error"] == "ValueError: the receiver said no"
    history = job_history(node)
    assert [(r["job_id"], r["status"]) for r in history] == [
        ("test.fail", "failed"),
        ("test.ok", "succeeded"),
    ]
    assert job_history(node, "test.ok", limit=1) == [run]


def test_the_checkpoint_job_signs_when_the_log_grew(node: Node) -> None:
    node.record("admin:test", "test.probed")
    run = run_job_now(node, "ledger.checkpoint")
    assert run["status"] == "succeeded"
    assert run["detail"]["tree_size"] == node.ledger.size
    assert node.ledger.latest_checkpoint().checkpoint.tree_size == node.ledger.size


def test_unknown_and_malformed_job_ids_are_refused(node: Node) -> None:
    with pytest.raises(UnknownJob, match=r"no job 'ledger\.nope'; known jobs: ledger\.checkpoint, outbox"):
        run_job_now(node, "ledger.nope")
    for bad in ("../etc", "Ledger.Checkpoint", "nodot", "a." + "b" * 100):
        with pytest.raises(UnknownJob):
            run_job_now(node, bad)
    assert job_history(node) == []


def test_run_scheduler_registers_the_shipped_playbooks_signs_at_start_and_stops(node: Node) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=sch.run_scheduler, args=(node, stop))
    thread.start()
    try:
        (run,) = _wait_for_run(node, "ledger.checkpoint")
        assert run["status"] == "succeeded" and run["trigger"] == "startup"
        listed = {j["id"]: j for j in list_jobs(node)}
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and sch._node is None
    # config/playbooks: churn_retention at 08:00 on Mondays, in proactive.timezone.
    assert listed["playbook.churn_retention"]["trigger"] == "cron[0 8 * * mon] Asia/Shanghai"
    assert listed["playbook.churn_retention"]["name"].startswith("playbook churn_retention: ")
    assert all(j["scheduled"] for j in listed.values())


def test_a_history_write_outlives_a_concurrent_commit(node: Node, calls: dict[str, Calls]) -> None:
    """Regression: SQLite refuses ``finish_run`` (read, then write) at once when another connection
    committed in between, as the scheduler does when it advances a job's next run time."""
    engine = node.store._engine
    interposed: list[int] = []

    def commit_elsewhere(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not interposed and statement.startswith("SELECT job_runs.started"):
            interposed.append(node.store.proactive.start_run("test.other", "manual"))

    event.listen(engine, "after_cursor_execute", commit_elsewhere)
    try:
        run = run_job_now(node, "test.ok")
    finally:
        event.remove(engine, "after_cursor_execute", commit_elsewhere)
    assert interposed and run["status"] == "succeeded"
