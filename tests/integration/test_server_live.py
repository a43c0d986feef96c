"""The real thing: `appliance serve` (gunicorn, 2 workers, scheduler) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from support.live_server import BIN, serve

from ledger.verify import verify_ledger

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("live") / "node"
    env = dict(
        os.environ,
        APPLIANCE_NODE__DATA_DIR=str(data),
        APPLIANCE_LEDGER__CHECKPOINT_INTERVAL_SECONDS="1",
        APPLIANCE_SERVER__MAX_BODY_BYTES="65536",
    )
    subprocess.run([BIN / "appliance", "init", "--demo"], env=env, check=True, capture_output=True)
    keys = json.loads((data / "demo-api-keys.json").read_text())
    with serve(env, log=data.parent / "server.log") as live:
        yield {"base": live.base, "keys": keys, "data": data, "env": env, "proc": live.proc, "log": live.log}


def _h(server, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server['keys'][role]}"}


def test_health_and_openapi_are_public(server):
    r = requests.get(server["base"] + "/healthz", timeout=5)
    assert r.json()["status"] == "ok" and r.headers["X-Request-Id"]
    doc = requests.get(server["base"] + "/openapi.json", timeout=5).json()
    assert "/v1/ledger/proofs/inclusion" in doc["paths"]
    assert "appliance serving on http://127.0.0.1" in server["log"].read_text()
    assert server["keys"]["auditor"] in server["log"].read_text()  # make run prints the demo keys


def test_concurrent_appends_across_workers_are_all_recorded(server):
    def append(i: int) -> int:
        r = requests.post(
            server["base"] + "/v1/ledger/entries",
            headers=_h(server, "admin"),
            json={"action": "test.live", "subject": [], "details": {"i": i}},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return r.json()["seq"]

    with ThreadPoolExecutor(16) as pool:
        seqs = list(pool.map(append, range(200)))
    assert len(set(seqs)) == 200
    # The scheduler process signs a checkpoint covering them within a few seconds.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        cp = requests.get(
            server["base"] + "/v1/ledger/checkpoint", headers=_h(server, "auditor"), timeout=5
        ).json()
        if cp["tree_size"] > max(seqs):
            break
        time.sleep(0.5)
    assert cp["tree_size"] > max(seqs), "the scheduler did not sign a checkpoint"


def test_bundle_verifies_offline_and_tampering_fails(server, tmp_path):
    r = requests.get(server["base"] + "/v1/ledger/bundles/3", headers=_h(server, "auditor"), timeout=10)
    assert r.status_code == 200
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(r.content)
    pub = server["data"] / "ledger.pub"
    ok = subprocess.run(
        [BIN / "appliance-verify", "bundle", bundle, "--pubkey", pub], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = json.loads(r.content)
    doc["entries"][0]["entry"] = doc["entries"][0]["entry"].replace('"seq":3', '"seq":4')
    bundle.write_text(json.dumps(doc))
    bad = subprocess.run(
        [BIN / "appliance-verify", "bundle", bundle, "--pubkey", pub], capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stdout.startswith("INVALID")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/v1/ledger/entries/abc", {}, 400),
        ("get", "/v1/ledger/entries/999999999", {}, 404),
        ("get", "/v1/ledger/proofs/inclusion?seq=5&size=2", {}, 404),
        ("get", "/v1/ledger/proofs/consistency?first=9&second=2", {}, 400),
        ("get", "/v1/ledger/proofs/inclusion?seq=ff&size=1", {}, 400),
        (
            "post",
            "/v1/ledger/entries",
            {"data": b"x" * 70_000, "headers": {"Content-Type": "application/json"}},
            413,
        ),
        (
            "post",
            "/v1/ledger/entries",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        (
            "post",
            "/v1/ledger/entries",
            {"json": {"action": "x.y", "subject": ["13800138000"], "details": {}}},
            422,
        ),
    ],
)
def test_bad_input_gets_problem_json_from_the_real_server(server, method, path, kwargs, status):
    role = "admin" if method == "post" else "auditor"
    headers = {**_h(server, role), **kwargs.pop("headers", {})}
    r = getattr(requests, method)(server["base"] + path, headers=headers, timeout=10, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["request_id"] == r.headers["X-Request-Id"]
    assert "Traceback" not in r.text


def test_wrong_role_and_no_key_are_refused(server):
    assert requests.get(server["base"] + "/v1/ledger/checkpoint", timeout=5).status_code == 401
    r = requests.get(server["base"] + "/v1/ledger/checkpoint", headers=_h(server, "agent"), timeout=5)
    assert r.status_code == 403


def test_ledger_verifies_while_the_server_runs(server):
    report = verify_ledger(str(server["data"] / "ledger"))
    assert report.ok, report.problems
    out = subprocess.run(
        [BIN / "appliance", "ledger", "verify"], env=server["env"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("OK:")


def test_masked_reads_across_workers_are_each_recorded_once(server):
    """Two gunicorn workers, demo data: every masked read lands in the ledger exactly once."""

    def read(i: int) -> int:
        r = requests.get(
            server["base"] + f"/v1/customers/{i % 50 + 1}", headers=_h(server, "agent"), timeout=10
        )
        assert r.status_code == 200, r.text
        return r.json()["ledger_seq"]

    with ThreadPoolExecutor(8) as pool:
        seqs = list(pool.map(read, range(60)))
    assert len(set(seqs)) == 60
    text = "您好，我叫王芳，手机13812345678，卡号6222021234567890128"
    r = requests.post(
        server["base"] + "/v1/mask/text", headers=_h(server, "agent"), json={"text": text}, timeout=10
    )
    assert r.status_code == 200 and "13812345678" not in r.json()["text"]
    entry = requests.get(
        server["base"] + f"/v1/ledger/entries/{r.json()['ledger_seq']}",
        headers=_h(server, "auditor"),
        timeout=5,
    ).json()
    assert entry["entry"]["action"] == "text.masked"
    assert "13812345678" not in entry["raw"]
    # Both workers loaded the same profile version; it was recorded once.
    loaded = []
    for seq in range(0, 40):
        e = requests.get(
            server["base"] + f"/v1/ledger/entries/{seq}", headers=_h(server, "auditor"), timeout=5
        )
        if e.json()["entry"]["action"] == "masking.profiles_loaded":
            loaded.append(e.json()["entry"]["details"]["version"])
    assert len(loaded) == 1


def test_publishing_a_policy_under_load_fails_no_request(server, tmp_path):
    """Two workers answer check-reply continuously while the CLI publishes a new version."""
    import shutil
    import threading

    from appliance.node import DEFAULT_POLICIES

    lib = tmp_path / "lib"
    shutil.copytree(DEFAULT_POLICIES, lib)
    text = (lib / "library.yaml").read_text(encoding="utf-8")
    (lib / "library.yaml").write_text(text.replace("\nversion: 1.0.0\n", "\nversion: 1.0.1\n"), "utf-8")
    body = {"text": "保本保息，年化收益8%", "region": "CN", "industry": "finance"}
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                r = s.post(
                    server["base"] + "/v1/policy/check-reply",
                    headers=_h(server, "agent"),
                    json=body,
                    timeout=10,
                )
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.add(r.json()["policy_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        done = subprocess.run(
            [BIN / "appliance", "policy", "publish", str(lib)],
            env=server["env"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(v.startswith("1.0.1+") for v in versions):
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, statuses {set(statuses)}"
    assert any(v.startswith("1.0.0+") for v in versions) and any(v.startswith("1.0.1+") for v in versions)
