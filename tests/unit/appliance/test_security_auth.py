"""The HTTP side of key security: rate limits, the failed-authentication limit and record, one opaque 401,
key administration over HTTP (and its ledger trail), revocation by another process, hash upgrades."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.server import create_app
from appliance.server.auth_failures import FailedAuthRecorder
from appliance.server.ratelimit import Limit, RateLimiter
from ledger import LedgerError

BIN = Path(sys.executable).parent
CHECKPOINT = "/v1/ledger/checkpoint"
BAD = "apl_0123456789ab_" + "A" * 43  # well-formed, names no key


def _app(env: Any, **server: Any) -> tuple[Flask, FlaskClient]:
    """Another app over the same node, with other server settings (limits are per app)."""
    from appliance.settings import ServerSettings

    merged = ServerSettings.model_validate({**env.settings.server.model_dump(), **server})
    settings = env.settings.model_copy(update={"server": merged})
    app = create_app(settings, env.node)
    return app, app.test_client()


def _get(client: FlaskClient, token: str | None, source: str = "192.0.2.1", url: str = CHECKPOINT) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(url, headers=headers, environ_base={"REMOTE_ADDR": source})


def _entries(env: Any, action: str) -> list[dict[str, Any]]:
    ledger = env.node.ledger
    entries = (json.loads(ledger.raw_entry(seq)) for seq in range(ledger.refresh()))
    return [e for e in entries if e["action"] == action]


@pytest.fixture(scope="module")
def module_env(shared_env: Any) -> Any:
    """The module's node (the apps these tests make share it; each has limits of its own)."""
    return shared_env


# -- rate limits ------------------------------------------------------------------------------------------
def test_a_key_over_its_rate_gets_429_with_retry_after(module_env: Any) -> None:
    _, client = _app(module_env, rate_limit_per_second=0.5, rate_limit_burst=3)
    auditor = module_env.tokens["auditor"]
    assert [_get(client, auditor).status_code for _ in range(3)] == [200] * 3
    resp = _get(client, auditor)
    body = module_env.problem(resp, 429, "rate-limited")
    assert resp.headers["Retry-After"] == "2"  # one token at 0.5/s, rounded up
    assert "0.5 requests/s (burst 3)" in body["detail"]
    # Per key: the admin key still has its own full bucket, from the same address.
    assert _get(client, module_env.tokens["admin"], url="/v1/jobs").status_code == 200


def test_per_role_overrides_and_a_rate_of_zero_turns_limits_off(module_env: Any) -> None:
    _, client = _app(
        module_env,
        rate_limit_per_second=0,
        rate_limit_burst=1,
        rate_limit_roles={"auditor": {"per_second": 1, "burst": 2}},
    )
    statuses = [_get(client, module_env.tokens["auditor"]).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    jobs = [_get(client, module_env.tokens["admin"], url="/v1/jobs").status_code for _ in range(20)]
    assert set(jobs) == {200}  # no default limit: other roles are not limited


def test_rate_limit_settings_are_validated() -> None:
    from appliance.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match=r"rate_limit_roles.*root are not roles"):
        load_settings(server={"rate_limit_roles": {"root": {"per_second": 1, "burst": 1}}})
    with pytest.raises(SettingsError, match="tls_cert_file and tls_key_file go together"):
        load_settings(server={"tls_cert_file": "/etc/cert.pem"})


def test_a_bucket_costs_microseconds() -> None:
    limiter = RateLimiter(Limit(1e9, 10**9))
    t0 = time.perf_counter()
    for i in range(100_000):
        limiter.hit(i % 50)
    per_hit = (time.perf_counter() - t0) / 100_000
    assert per_hit < 20e-6, f"{per_hit * 1e6:.1f} µs per check"


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(Limit(2.0, 2), clock=lambda: now[0])
    assert [limiter.hit("k") for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] = 0.25
    assert limiter.wait("k") == pytest.approx(0.25) and limiter.hit("k") == pytest.approx(0.25)
    now[0] = 0.5
    assert limiter.hit("k") == 0.0 and limiter.wait("k") == pytest.approx(0.5)
    now[0] = 100.0
    assert [limiter.hit("k") for _ in range(3)] == [0.0, 0.0, 0.5]  # never more than the burst


def test_many_sources_do_not_grow_the_limiter_without_bound() -> None:
    now = [0.0]
    limiter = RateLimiter(Limit(1.0, 1), max_entries=100, clock=lambda: now[0])
    for i in range(1000):
        now[0] = i * 2.0  # each source's bucket is full again by the time the next arrives
        limiter.hit(f"10.0.{i // 250}.{i % 250}")
    assert len(limiter) <= 100


# -- failed authentications -------------------------------------------------------------------------------
def test_every_failure_gets_the_same_opaque_401(env: Any) -> None:
    revoked, revoked_token = env.node.keys.issue("auditor")
    env.node.keys.revoke(revoked.key_id)
    _, token = env.node.keys.issue("auditor")
    mistyped = token[:-1] + ("B" if token[-1] != "B" else "C")
    details = set()
    for i, bad in enumerate([BAD, revoked_token, mistyped, "apl_" + "z" * 60]):
        body = env.problem(_get(env.client, bad, source=f"192.0.2.{i + 10}"), 401, "unauthorized")
        details.add(body["detail"])
    assert len(details) == 1 and "not valid" in details.pop()


def test_failed_authentications_are_logged_counted_and_recorded_aggregated(
    module_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, client = _app(module_env, failed_auth_per_minute=0)
    key, token = module_env.node.keys.issue("auditor", label="to mistype")
    mistyped = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    before = len(_entries(module_env, "auth.failed"))
    metrics = _metric_reader()
    counted = metrics("mismatch"), metrics("unknown"), metrics("missing")
    caplog.set_level(logging.INFO, logger="appliance.server")
    for _ in range(4):
        assert _get(client, mistyped, source="203.0.113.7").status_code == 401
    for _ in range(3):
        assert _get(client, BAD, source="203.0.113.8").status_code == 401
    assert _get(client, None, source="203.0.113.9").status_code == 401
    # The first failure after a quiet minute is written at once; the rest wait for the window to pass.
    first = _entries(module_env, "auth.failed")[before:]
    assert [(e["details"]["reason"], e["details"]["count"]) for e in first] == [("mismatch", 1)]
    recorder: FailedAuthRecorder = app.extensions["appliance.auth"].recorder
    assert recorder.pending == 7
    recorder.flush()  # what the first request after the window does
    assert recorder.pending == 0
    rows = sorted(
        (e["details"]["source"], e["details"]["key_id"], e["details"]["reason"], e["details"]["count"])
        for e in _entries(module_env, "auth.failed")[before:]
    )
    assert rows == [
        ("203.0.113.7", key.key_id, "mismatch", 1),
        ("203.0.113.7", key.key_id, "mismatch", 3),
        ("203.0.113.8", None, "unknown", 3),
        ("203.0.113.9", None, "missing", 1),
    ]
    entries = _entries(module_env, "auth.failed")[before:]
    assert all(e["actor"] == "system:auth" for e in entries)
    raw = json.dumps(entries)
    assert mistyped not in raw and BAD not in raw and token not in raw
    # Logged, one line per failure, without the token.
    lines = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(lines) == 8 and f"reason=mismatch source=203.0.113.7 key={key.key_id}" in lines[0]
    assert mistyped not in caplog.text and BAD not in caplog.text
    if metrics("mismatch") is not None:
        assert (metrics("mismatch"), metrics("unknown"), metrics("missing")) == (
            counted[0] + 4,
            counted[1] + 3,
            counted[2] + 1,
        )


def _metric_reader() -> Any:
    """``reason -> count`` of ``appliance_auth_failures`` in this process (None without metrics)."""
    try:
        from appliance import metrics
    except ImportError:
        return lambda reason: None

    def read(reason: str) -> float:
        value = metrics.get().registry.get_sample_value("appliance_auth_failures_total", {"reason": reason})
        return value or 0.0

    return read


def test_recorder_writes_each_group_at_most_once_a_window_and_keeps_counts_when_the_ledger_fails() -> None:
    now = [0.0]
    written: list[dict[str, Any]] = []
    broken = [False]

    def append(action: str, details: dict[str, Any]) -> None:
        if broken[0]:
            raise LedgerError("ledger closed")
        written.append({"action": action, **details})

    rec = FailedAuthRecorder(append, window_seconds=60, clock=lambda: now[0])
    rec.add("10.0.0.1", None, "unknown")
    assert [w["count"] for w in written] == [1]
    for _ in range(500):
        rec.add("10.0.0.1", None, "unknown")
    rec.add("10.0.0.2", "abcdef012345", "mismatch")
    now[0] = 59.0
    rec.flush_due()
    assert len(written) == 1 and rec.pending == 501
    broken[0] = True
    now[0] = 61.0
    rec.flush_due()  # the append fails: nothing is lost
    assert rec.pending == 501
    rec.add("10.0.0.1", None, "unknown")
    broken[0] = False
    now[0] = 130.0
    rec.flush_due()
    assert sorted((w["source"], w["count"]) for w in written[1:]) == [("10.0.0.1", 501), ("10.0.0.2", 1)]
    assert written[1]["action"] == "auth.failed" and rec.pending == 0


def test_too_many_failures_from_one_address_get_429_but_known_keys_pass(module_env: Any) -> None:
    _, client = _app(module_env, failed_auth_per_minute=6, failed_auth_burst=3)
    auditor = module_env.tokens["auditor"]
    assert _get(client, auditor, source="198.51.100.1").status_code == 200  # verified: cached by this app
    _, fresh_token = module_env.node.keys.issue("auditor", label="never used")
    assert [_get(client, BAD, source="198.51.100.1").status_code for _ in range(3)] == [401] * 3
    resp = _get(client, BAD, source="198.51.100.1")
    body = module_env.problem(resp, 429, "too-many-failed-authentications")
    assert resp.headers["Retry-After"] == "10" and "198.51.100.1" in body["detail"]
    # No key is checked for that address now, except one this worker verified before.
    assert _get(client, fresh_token, source="198.51.100.1").status_code == 429
    assert _get(client, auditor, source="198.51.100.1").status_code == 200
    # Other addresses are not affected.
    assert _get(client, BAD, source="198.51.100.2").status_code == 401
    assert _get(client, fresh_token, source="198.51.100.2").status_code == 200


def test_concurrent_guesses_cannot_slip_past_the_limit_while_argon2_runs(module_env: Any) -> None:
    """Each guess at an existing key costs an argon2 check (~30 ms); the attempt is taken before it."""
    _, client = _app(module_env, failed_auth_per_minute=1, failed_auth_burst=3)
    _, token = module_env.node.keys.issue("auditor", label="guessed at")
    guess = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: _get(client, guess, source="198.51.100.77").status_code, range(16))
        )
    assert sorted(statuses) == [401] * 3 + [429] * 13


# -- keys over HTTP ---------------------------------------------------------------------------------------
def test_admin_creates_rotates_lists_and_revokes_keys_over_http(env: Any) -> None:
    admin = env.auth("admin")
    resp = env.client.post("/v1/admin/keys", headers=admin, json={"role": "analyst", "label": "BI team"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    created = resp.get_json()
    token, key_id = created["token"], created["key_id"]
    assert (
        token.startswith(f"apl_{key_id}_") and created["state"] == "active" and created["hash"] == "argon2id"
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert env.client.get("/v1/privacy/budget", headers=headers).status_code == 200
    # The list has every key and no secret (no token, no hash).
    listed = env.client.get("/v1/admin/keys", headers=admin)
    assert listed.status_code == 200 and token not in listed.get_data(as_text=True)
    assert "$argon2" not in listed.get_data(as_text=True)
    rows = {k["key_id"]: k for k in listed.get_json()["keys"]}
    assert rows[key_id]["label"] == "BI team" and len(rows) == 8
    # Rotate with a grace period: both secrets open until it ends.
    rotated = env.client.post(f"/v1/admin/keys/{key_id}/rotate?grace_seconds=3600", headers=admin)
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    new = rotated.get_json()
    assert new["key_id"] == key_id and new["token"] != token and new["grace_until"] is not None
    assert env.client.get("/v1/privacy/budget", headers=headers).status_code == 200
    new_headers = {"Authorization": f"Bearer {new['token']}"}
    assert env.client.get("/v1/privacy/budget", headers=new_headers).status_code == 200
    # Revoke: both stop at once.
    gone = env.client.delete(f"/v1/admin/keys/{key_id}", headers=admin)
    assert gone.status_code == 200 and gone.get_json()["state"] == "revoked"
    for h in (headers, new_headers):
        env.problem(env.client.get("/v1/privacy/budget", headers=h), 401, "unauthorized")
    # Each change is a ledger entry with the key id, role and request id, never the token.
    for action, rid_of in (("apikey.created", resp), ("apikey.rotated", rotated), ("apikey.revoked", gone)):
        (entry,) = [e for e in _entries(env, action) if e["details"]["key_id"] == key_id]
        assert entry["details"]["role"] == "analyst" and entry["request_id"] == rid_of.headers["X-Request-Id"]
        assert entry["actor"].startswith("admin:")
        assert entry["seq"] == rid_of.get_json()["ledger_seq"]
    (rot,) = [e for e in _entries(env, "apikey.rotated") if e["details"]["key_id"] == key_id]
    assert rot["details"]["grace_seconds"] == 3600
    raw = json.dumps(_entries(env, "apikey.created") + _entries(env, "apikey.rotated"))
    assert token not in raw and new["token"] not in raw and "BI team" not in raw


def test_keys_with_an_expiry_stop_working(env: Any) -> None:
    resp = env.client.post(
        "/v1/admin/keys", headers=env.auth("admin"), json={"role": "auditor", "expires_in_seconds": 60}
    )
    assert resp.status_code == 201 and resp.get_json()["expires"] is not None
    (entry,) = [
        e for e in _entries(env, "apikey.created") if e["details"]["key_id"] == resp.get_json()["key_id"]
    ]
    assert entry["details"]["expires"] == resp.get_json()["expires"]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "slug"),
    [
        ("post", "/v1/admin/keys", {"role": "root"}, 422, "invalid-body"),
        ("post", "/v1/admin/keys", {"role": "agent", "secret": "x"}, 422, "invalid-body"),
        ("post", "/v1/admin/keys", {"role": "agent", "expires_in_seconds": 5}, 422, "invalid-body"),
        ("post", "/v1/admin/keys", {"role": "agent", "label": "a\nb"}, 422, "invalid-body"),
        ("post", "/v1/admin/keys/0123456789ab/rotate", None, 404, "unknown-api-key"),
        ("post", "/v1/admin/keys/XYZ/rotate", None, 400, "invalid-parameter"),
        ("post", "/v1/admin/keys/{admin}/rotate?grace_seconds=-1", None, 400, "invalid-parameter"),
        ("delete", "/v1/admin/keys/0123456789ab", None, 404, "unknown-api-key"),
        ("delete", "/v1/admin/keys/{admin}", None, 409, "api-key-conflict"),
    ],
)
def test_bad_key_requests_are_clear_4xx(
    env: Any, method: str, url: str, body: Any, status: int, slug: str
) -> None:
    admin_id = env.node.keys.authenticate(env.tokens["admin"]).key_id
    size = env.node.ledger.size
    resp = getattr(env.client, method)(url.format(admin=admin_id), headers=env.auth("admin"), json=body)
    problem = env.problem(resp, status, slug)
    if slug == "api-key-conflict":
        assert "last live admin key" in problem["detail"]
    assert env.node.ledger.size == size  # nothing recorded, nothing changed
    assert env.client.get("/v1/jobs", headers=env.auth("admin")).status_code == 200


def test_revocation_from_another_process_reaches_a_running_app(env: Any) -> None:
    key, token = env.node.keys.issue("auditor", label="revoked by the CLI")
    assert _get(env.client, token).status_code == 200  # verified and cached by this worker
    run_env = dict(os.environ, APPLIANCE_NODE__DATA_DIR=str(env.settings.data_dir))
    out = subprocess.run(
        [BIN / "appliance", "keys", "rotate", key.key_id, "--grace", "1h"],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    new = out.stdout.strip()
    assert new.startswith(f"apl_{key.key_id}_")
    assert _get(env.client, token).status_code == 200 and _get(env.client, new).status_code == 200
    out = subprocess.run(
        [BIN / "appliance", "keys", "revoke", key.key_id],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert _get(env.client, token).status_code == 401 and _get(env.client, new).status_code == 401
    actions = [e["action"] for e in _entries(env, "apikey.rotated") + _entries(env, "apikey.revoked")]
    assert actions == ["apikey.rotated", "apikey.revoked"]


def test_a_node_with_sha256_keys_serves_them_and_upgrades_each_on_first_use(env: Any) -> None:
    path = env.node.keys.path
    token = "apl_cafe0000cafe_" + "Q" * 43
    data = json.loads(path.read_text())
    data["format"] = "appliance-api-keys/1"
    data.pop("argon2")
    data["keys"].append(
        {
            "key_id": "cafe0000cafe",
            "role": "auditor",
            "label": "made by an older node",
            "created": "2025-01-01T00:00:00Z",
            "revoked": False,
            "sha256": hashlib.sha256(token.encode()).hexdigest(),
        }
    )
    tmp = path.with_suffix(".new")
    tmp.write_text(json.dumps(data))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    assert _get(env.client, token).status_code == 200
    (row,) = [r for r in json.loads(path.read_text())["keys"] if r["key_id"] == "cafe0000cafe"]
    assert row["hash"].startswith("$argon2id$") and "sha256" not in row
    assert _get(env.client, token).status_code == 200
    assert _get(env.client, token[:-1] + "R").status_code == 401
