"""The scheduler's jobs over HTTP: listing, history, run now, pause and resume, refusals as problem+json.

Real node and store, real lock files: a run the API is asked for while the job's lock is held must
answer 409 and leave a ``skipped`` run in the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from appliance.jobs import job_lock
from appliance.keys import ROLES

if TYPE_CHECKING:
    from conftest import ServerEnv


def _last_entry(env: ServerEnv) -> dict:
    env.node.ledger.refresh()
    return env.node.ledger.entry(env.node.ledger.size - 1).as_dict()


def test_list_shows_the_jobs_with_their_last_run(env: ServerEnv) -> None:
    resp = env.client.get("/v1/jobs", headers=env.auth("auditor"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    jobs = {j["id"]: j for j in resp.get_json()["jobs"]}
    assert list(jobs) == ["ledger.checkpoint", "outbox.deliver", "triggers.release_deferred"]
    assert jobs["ledger.checkpoint"]["trigger"] == "every 60 s"
    assert jobs["ledger.checkpoint"]["last_run"] is None and not jobs["ledger.checkpoint"]["scheduled"]

    run = env.client.post("/v1/jobs/ledger.checkpoint/run", headers=env.auth("admin"))
    assert run.status_code == 200, run.get_data(as_text=True)
    body = run.get_json()
    assert (
        body["status"] == "succeeded" and body["trigger"] == "api" and body["job_id"] == "ledger.checkpoint"
    )
    assert body["detail"]["tree_size"] == env.node.ledger.size

    jobs = {j["id"]: j for j in env.client.get("/v1/jobs", headers=env.auth("admin")).get_json()["jobs"]}
    last = jobs["ledger.checkpoint"]["last_run"]
    assert last["status"] == "succeeded" and last["started"] == body["started"]
    assert last["duration_ms"] == body["duration_ms"] and last["error"] is None

    runs = env.client.get("/v1/jobs/ledger.checkpoint/runs?limit=5", headers=env.auth("auditor"))
    assert runs.status_code == 200
    assert runs.get_json()["runs"] == [body]


def test_a_run_while_the_job_is_running_elsewhere_is_409_and_recorded(env: ServerEnv) -> None:
    with job_lock(env.node, "ledger.checkpoint") as held:
        assert held
        resp = env.client.post("/v1/jobs/ledger.checkpoint/run", headers=env.auth("admin"))
    body = env.problem(resp, 409, "job-running")
    assert "job ledger.checkpoint is already running" in body["detail"]
    runs = env.client.get("/v1/jobs/ledger.checkpoint/runs", headers=env.auth("admin")).get_json()["runs"]
    assert [(r["status"], r["trigger"], r["detail"]) for r in runs] == [
        ("skipped", "api", {"reason": "already running"})
    ]


def test_pause_and_resume_are_recorded_with_the_callers_key(env: ServerEnv) -> None:
    resp = env.client.post("/v1/jobs/outbox.deliver/pause", headers=env.auth("admin"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    state = resp.get_json()
    assert state["paused"] and state["changed"] and state["scheduled"] and state["next_run_time"] is None
    entry = _last_entry(env)
    assert entry["action"] == "job.paused" and entry["details"] == {"job": "outbox.deliver"}
    assert entry["actor"].startswith("admin:") and entry["request_id"] == resp.headers["X-Request-Id"]

    again = env.client.post("/v1/jobs/outbox.deliver/pause", headers=env.auth("admin")).get_json()
    assert again["paused"] and not again["changed"]
    assert _last_entry(env)["seq"] == entry["seq"]  # nothing changed, nothing recorded

    listed = {j["id"]: j for j in env.client.get("/v1/jobs", headers=env.auth("auditor")).get_json()["jobs"]}
    assert listed["outbox.deliver"]["paused"]

    resp = env.client.post("/v1/jobs/outbox.deliver/resume", headers=env.auth("admin"))
    state = resp.get_json()
    assert state["changed"] and not state["paused"] and state["next_run_time"] is not None
    assert _last_entry(env)["action"] == "job.resumed"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/v1/jobs/ledger.nope/run"),
        ("POST", "/v1/jobs/ledger.nope/pause"),
        ("POST", "/v1/jobs/ledger.nope/resume"),
        ("GET", "/v1/jobs/ledger.nope/runs"),
        ("POST", "/v1/jobs/playbook.no_such_playbook/run"),
    ],
)
def test_an_unknown_job_is_a_404_problem_naming_the_known_ones(env: ServerEnv, method: str, url: str) -> None:
    resp = env.client.open(url, method=method, headers=env.auth("admin"))
    body = env.problem(resp, 404, "unknown-job")
    assert "ledger.checkpoint" in body["detail"] or "GET /v1/jobs" in body["detail"]
    assert env.node.store.proactive.job_runs() == []


@pytest.mark.parametrize("job_id", ["Ledger.Checkpoint", "nodot", "a..b", "ledger.checkpoint.", "..%2e.lock"])
def test_a_malformed_job_id_is_a_400_problem(shared_env: ServerEnv, job_id: str) -> None:
    resp = shared_env.client.post(f"/v1/jobs/{job_id}/run", headers=shared_env.auth("admin"))
    body = shared_env.problem(resp, 400, "invalid-parameter")
    assert body["errors"][0]["loc"] == ["path", "job_id"]


def test_a_slash_in_a_job_id_matches_no_route(shared_env: ServerEnv) -> None:
    resp = shared_env.client.post("/v1/jobs/x.y%2F..%2Fz/run", headers=shared_env.auth("admin"))
    shared_env.problem(resp, 404, "not-found")


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "+5", "1.0"])
def test_history_limit_is_checked(shared_env: ServerEnv, limit: str) -> None:
    resp = shared_env.client.get(
        f"/v1/jobs/ledger.checkpoint/runs?limit={limit}", headers=shared_env.auth("admin")
    )
    shared_env.problem(resp, 400, "invalid-parameter")


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("GET", "/v1/jobs", {"admin", "auditor"}),
        ("GET", "/v1/jobs/ledger.checkpoint/runs", {"admin", "auditor"}),
        ("POST", "/v1/jobs/ledger.checkpoint/run", {"admin"}),
        ("POST", "/v1/jobs/triggers.release_deferred/pause", {"admin"}),
        ("POST", "/v1/jobs/triggers.release_deferred/resume", {"admin"}),
    ],
)
@pytest.mark.parametrize("role", ROLES)
def test_roles(shared_env: ServerEnv, method: str, url: str, allowed: set[str], role: str) -> None:
    resp = shared_env.client.open(url, method=method, headers=shared_env.auth(role))
    if role in allowed:
        assert resp.status_code == 200, resp.get_data(as_text=True)
    else:
        body = shared_env.problem(resp, 403, "forbidden")
        assert role in body["detail"]


def test_the_openapi_document_describes_the_routes_and_their_roles(shared_env: ServerEnv) -> None:
    doc = shared_env.client.get("/openapi.json").get_json()
    assert set(doc["paths"]["/v1/jobs"]["get"]["x-roles"]) == {"admin", "auditor"}
    assert set(doc["paths"]["/v1/jobs/{job_id}/run"]["post"]["x-roles"]) == {"admin"}
    assert set(doc["paths"]["/v1/jobs/{job_id}/runs"]["get"]["x-roles"]) == {"admin", "auditor"}
    assert {"/v1/jobs/{job_id}/pause", "/v1/jobs/{job_id}/resume"} <= set(doc["paths"])
