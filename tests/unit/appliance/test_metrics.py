"""Prometheus metrics: what is counted, who may scrape, and the aggregation over gunicorn workers.

Counters are per process and other tests in this process move them too, so every check here is a
difference across the action under test, read from the scrape itself (what Prometheus would see).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support.live_server import BIN, serve

from appliance import jobs, metrics
from appliance.store.tables import TRIGGER_STATUSES
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from conftest import ServerEnv


def _samples(text: str | bytes) -> list[tuple[str, dict[str, str], float]]:
    if isinstance(text, bytes):
        text = text.decode()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def value(text: str | bytes, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when there is none)."""
    return sum(v for n, lab, v in _samples(text) if n == name and labels.items() <= lab.items())


def scrape(env: ServerEnv, headers: dict[str, str] | None = None) -> str:
    resp = env.client.get("/metrics", headers=headers if headers is not None else env.auth("admin"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.content_type == "text/plain; version=0.0.4; charset=utf-8"
    return resp.get_data(as_text=True)


# -- who may scrape ------------------------------------------------------------------------------------
def test_scrape_needs_an_admin_key_or_the_scrape_token(env: ServerEnv) -> None:
    env.problem(env.client.get("/metrics"), 401, "unauthorized")
    body = env.problem(env.client.get("/metrics", headers=env.auth("auditor")), 403, "forbidden")
    assert "auditor" in body["detail"]
    assert "appliance_http_request_duration_seconds" in scrape(env)

    issued = metrics.issue_token(env.node, actor="admin:test")
    assert issued.path == env.settings.data_dir / "keys" / "metrics.token"
    assert issued.path.stat().st_mode & 0o777 == 0o600
    text = scrape(env, {"Authorization": f"Bearer {issued.token}"})
    assert "appliance_ledger_entries" in text
    # The token opens /metrics and nothing else.
    resp = env.client.get("/v1/ledger/checkpoint", headers={"Authorization": f"Bearer {issued.token}"})
    env.problem(resp, 401, "unauthorized")
    # Issuing it is a state change: it is in the ledger, without the token.
    entry = env.node.ledger.entry(env.node.ledger.size - 1)
    assert entry.action == "metrics.token_issued" and issued.token.encode() not in entry.raw


def test_a_wrong_token_is_a_counted_failed_authentication(env: ServerEnv) -> None:
    metrics.issue_token(env.node, actor="admin:test")
    before = value(scrape(env), "appliance_auth_failures_total")
    env.problem(
        env.client.get(
            "/metrics", headers={"Authorization": "Bearer metrics_not-the-token-0123456789abcdef"}
        ),
        401,
        "unauthorized",
    )
    assert value(scrape(env), "appliance_auth_failures_total") == before + 1


def test_rotation_takes_effect_at_the_next_scrape(env: ServerEnv) -> None:
    old = metrics.issue_token(env.node, actor="admin:test")
    scrape(env, {"Authorization": f"Bearer {old.token}"})
    with pytest.raises(metrics.MetricsError, match="--rotate"):
        metrics.issue_token(env.node, actor="admin:test")
    new = metrics.issue_token(env.node, actor="admin:test", rotate=True)
    assert new.rotated and new.token != old.token
    env.problem(
        env.client.get("/metrics", headers={"Authorization": f"Bearer {old.token}"}), 401, "unauthorized"
    )
    scrape(env, {"Authorization": f"Bearer {new.token}"})


def test_a_token_file_others_can_read_is_not_used(env: ServerEnv, caplog: pytest.LogCaptureFixture) -> None:
    issued = metrics.issue_token(env.node, actor="admin:test")
    issued.path.chmod(0o644)
    resp = env.client.get("/metrics", headers={"Authorization": f"Bearer {issued.token}"})
    env.problem(resp, 401, "unauthorized")
    assert "chmod 600" in caplog.text and issued.token not in caplog.text
    scrape(env)  # admin keys still work


def test_a_short_token_is_not_used(env: ServerEnv) -> None:
    path = env.settings.data_dir / "keys" / "metrics.token"
    path.write_text("short\n")
    path.chmod(0o600)
    env.problem(env.client.get("/metrics", headers={"Authorization": "Bearer short"}), 401, "unauthorized")


def test_metrics_is_documented_with_its_role(shared_env: ServerEnv) -> None:
    doc = shared_env.client.get("/openapi.json").get_json()
    op = doc["paths"]["/metrics"]["get"]
    assert op["x-roles"] == ["admin"]
    assert "text/plain" in op["responses"]["200"]["content"]


# -- what is counted -----------------------------------------------------------------------------------
def test_requests_are_labelled_by_route_template_never_by_path(shared_env: ServerEnv) -> None:
    env = shared_env
    name = "appliance_http_request_duration_seconds_count"
    route = "/v1/customers/<customer_id>"
    before = scrape(env)
    assert env.client.get("/v1/customers/1", headers=env.auth("agent")).status_code == 200
    env.client.get("/v1/customers/999999", headers=env.auth("agent"))
    env.client.get("/v1/no-such-thing/C-0001?external_id=C-0001", headers=env.auth("agent"))
    after = scrape(env)
    assert value(after, name, route=route, method="GET", status="2xx") == (
        value(before, name, route=route, method="GET", status="2xx") + 1
    )
    assert value(after, name, route=route, status="4xx") == value(before, name, route=route, status="4xx") + 1
    assert value(after, name, route="<unmatched>") == value(before, name, route="<unmatched>") + 1
    assert "C-0001" not in after and "999999" not in after and "/v1/customers/1" not in after
    # Histogram buckets around the 50 ms objective.
    assert value(after, "appliance_http_request_duration_seconds_bucket", route=route, le="0.05") >= 1


def test_an_invented_method_is_not_a_label(shared_env: ServerEnv) -> None:
    shared_env.client.open("/healthz", method="BREW")
    assert 'method="BREW"' not in scrape(shared_env)


def test_requests_in_flight_go_back_to_zero(shared_env: ServerEnv) -> None:
    shared_env.client.get("/healthz")
    # The scrape itself is in flight while it renders.
    assert value(scrape(shared_env), "appliance_http_requests_in_flight") == 1


def test_reply_decisions_by_action_and_region(shared_env: ServerEnv) -> None:
    env = shared_env
    name = "appliance_policy_decisions_total"
    before = scrape(env)
    cases = [("hello, how can I help?", "CN", "retail"), ("我们是国家级品牌", "CN", "retail")]
    decisions = []
    for text, region, industry in cases:
        resp = env.client.post(
            "/v1/policy/check-reply",
            headers=env.auth("agent"),
            json={"text": text, "region": region, "industry": industry},
        )
        decisions.append(resp.get_json()["decision"])
    assert decisions == ["allow", "block"]
    after = scrape(env)
    for action in ("allow", "block"):
        assert (
            value(after, name, action=action, region="CN")
            == value(before, name, action=action, region="CN") + 1
        )


def test_masked_reads_by_role_and_kind(shared_env: ServerEnv) -> None:
    env = shared_env
    name = "appliance_masked_reads_total"
    before = scrape(env)
    env.client.get("/v1/customers/1", headers=env.auth("supervisor"))
    env.client.get("/v1/customers/1/transcripts", headers=env.auth("agent"))
    env.client.get("/v1/customers/1", headers=env.auth("analyst"))  # 403: not a read
    after = scrape(env)
    assert value(after, name, role="supervisor", kind="record") == (
        value(before, name, role="supervisor", kind="record") + 1
    )
    assert value(after, name, role="agent", kind="transcript") == (
        value(before, name, role="agent", kind="transcript") + 1
    )
    assert value(after, name, role="analyst") == value(before, name, role="analyst")


def test_privacy_query_steps_by_status(env: ServerEnv) -> None:
    """The privacy service appends query.<status> entries through Node.record; each is counted."""
    before = scrape(env)
    env.node.record("analyst:ab12cd34", "query.submitted", details={"query": 1, "plan_sha256": "0" * 64})
    env.node.record("system:privacy", "query.refused", details={"query": 1, "reason": "GroupTooSmall"})
    after = scrape(env)
    for status in ("submitted", "refused"):
        name = "appliance_privacy_queries_total"
        assert value(after, name, status=status) == value(before, name, status=status) + 1


def test_ledger_appends_and_size(env: ServerEnv) -> None:
    before = scrape(env)
    env.client.post("/v1/ledger/entries", headers=env.auth("admin"), json={"action": "test.probed"})
    after = scrape(env)
    name = "appliance_ledger_append_duration_seconds_count"
    assert value(after, name) >= value(before, name) + 1
    # The size gauge is cached for state_cache_seconds (10 by default): the first scrape read it.
    assert value(before, "appliance_ledger_entries") == value(after, "appliance_ledger_entries")
    assert value(before, "appliance_ledger_entries") == env.node.ledger.size - 1


def test_a_failed_append_is_counted(env: ServerEnv) -> None:
    before = value(metrics.render(), "appliance_ledger_append_failures_total")
    env.node.ledger.close()
    with pytest.raises(LedgerError):
        env.node.record("admin:test", "test.after_close")
    assert value(metrics.render(), "appliance_ledger_append_failures_total") == before + 1


def test_state_gauges_are_cached_then_read_again(env: ServerEnv) -> None:
    now = [1000.0]
    state = metrics.NodeState(env.node, ttl=10, clock=lambda: now[0])
    first = value(metrics.render(state), "appliance_ledger_entries")
    assert first == env.node.ledger.size
    env.node.record("admin:test", "test.grow")
    now[0] += 9.9
    assert value(metrics.render(state), "appliance_ledger_entries") == first
    now[0] += 0.1
    assert value(metrics.render(state), "appliance_ledger_entries") == first + 1
    text = metrics.render(state).decode()
    for status in TRIGGER_STATUSES:  # zeros included
        assert f'appliance_triggers{{status="{status}"}}' in text


def test_job_runs_durations_and_outcomes(env: ServerEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(node: Any, trigger: str) -> None:
        raise RuntimeError("the test job fails")

    monkeypatch.setitem(jobs.TARGETS, "test.boom", boom)
    before = metrics.render().decode()
    assert jobs.run_job_now(env.node, "ledger.checkpoint")["status"] == "succeeded"
    assert jobs.run_job_now(env.node, "test.boom")["status"] == "failed"
    with jobs.job_lock(env.node, "test.boom"), pytest.raises(jobs.JobBusy):
        jobs.run_job_now(env.node, "test.boom")
    after = metrics.render().decode()
    for job, outcome in [
        ("ledger.checkpoint", "succeeded"),
        ("test.boom", "failed"),
        ("test.boom", "skipped"),
    ]:
        name = "appliance_job_runs_total"
        assert (
            value(after, name, job=job, outcome=outcome) == value(before, name, job=job, outcome=outcome) + 1
        )
    name = "appliance_job_duration_seconds_count"
    assert value(after, name, job="test.boom", outcome="failed") == (
        value(before, name, job="test.boom", outcome="failed") + 1
    )
    assert value(after, name, job="test.boom", outcome="skipped") == 0  # a skipped run has no duration


def test_label_values_fed_by_requests_are_bounded() -> None:
    m = metrics.Metrics()
    kept = [m.bounded("region", f"R{i}") for i in range(100)]
    assert kept[:64] == [f"R{i}" for i in range(64)]
    assert set(kept[64:]) == {"other"}
    assert m.bounded("region", "R3") == "R3"
    assert m.bounded("action", "x" * 65) == "other"


def test_the_failed_authentication_counter_is_exposed_for_the_auth_layer() -> None:
    before = value(metrics.render().decode(), "appliance_auth_failures_total", reason="probe")
    metrics.auth_failures.labels(reason="probe").inc()
    assert value(metrics.render().decode(), "appliance_auth_failures_total", reason="probe") == before + 1


# -- gunicorn: several workers and the scheduler, one scrape ---------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("served")
    data = root / "node"
    mpdir = root / "metrics"
    mpdir.mkdir()
    (mpdir / "counter_999999.db").write_bytes(b"left over from a previous run")
    env = dict(
        os.environ,
        APPLIANCE_NODE__DATA_DIR=str(data),
        APPLIANCE_LEDGER__CHECKPOINT_INTERVAL_SECONDS="1",
        APPLIANCE_METRICS__MULTIPROCESS_DIR=str(mpdir),
    )
    env.pop(metrics.ENV, None)
    init = subprocess.run([BIN / "appliance", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    # "  admin      apl_..." in the keys init shows once.
    token = next(ln.split()[1] for ln in init.stdout.splitlines() if ln.split()[:1] == ["admin"])
    scrape_token = subprocess.run(
        [BIN / "appliance", "metrics", "token"], env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    metrics_token = next(w for w in scrape_token if w.startswith("metrics_"))
    # The last test stops the server itself to read the whole log (stop is idempotent).
    with serve(env, log=root / "server.log", stop_timeout=30) as live:
        yield {
            "base": live.base,
            "admin": token,
            "metrics": metrics_token,
            "dir": mpdir,
            "log": live.log,
            "server": live,
        }


@pytest.mark.integration
@pytest.mark.slow
def test_one_scrape_adds_up_every_worker_and_the_scheduler(served: dict[str, Any]) -> None:
    assert not (served["dir"] / "counter_999999.db").exists(), "serve empties the directory at start"
    base, auth = served["base"], {"Authorization": f"Bearer {served['admin']}"}
    n = 60
    for _ in range(n):  # a connection each: the workers race to accept them
        assert requests.get(base + "/v1/ledger/checkpoint", headers=auth, timeout=10).status_code == 403
    deadline = time.monotonic() + 20
    while True:
        text = requests.get(
            base + "/metrics", headers={"Authorization": f"Bearer {served['metrics']}"}, timeout=10
        ).text
        # The scheduler process signs checkpoints (every second here): its runs show in a worker's scrape.
        jobs_seen = value(text, "appliance_job_runs_total", job="ledger.checkpoint", outcome="succeeded")
        if jobs_seen >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert jobs_seen >= 1, "the scheduler's job metrics are not in the scrape"
    count = value(
        text,
        "appliance_http_request_duration_seconds_count",
        route="/v1/ledger/checkpoint",
        method="GET",
        status="4xx",
    )
    assert count == n
    pids = {p.stem.rsplit("_", 1)[1] for p in served["dir"].glob("histogram_*.db")}
    assert len(pids) >= 3, f"samples from {len(pids)} processes; expected both workers and the scheduler"
    assert value(text, "appliance_ledger_entries") > 0


@pytest.mark.integration
@pytest.mark.slow
def test_served_logs_are_json_lines_gunicorns_included(served: dict[str, Any]) -> None:
    served["server"].stop()
    lines = [ln for ln in served["log"].read_text().splitlines() if ln.startswith("{")]
    parsed = [json.loads(ln) for ln in lines]
    assert any(p["logger"] == "gunicorn.error" and "Booting worker" in p["event"] for p in parsed)
    access = [p for p in parsed if p.get("route") == "/v1/ledger/checkpoint" and "status" in p]
    assert access and all(p["status"] == 403 and p["request_id"] for p in access)
    assert served["admin"] not in served["log"].read_text()
    assert served["metrics"] not in served["log"].read_text()
