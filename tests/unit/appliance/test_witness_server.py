"""The witness over real HTTP: the c2sp.org/tlog-witness status codes, bodies and media types; the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from click.testing import CliRunner
from support.live_server import free_port
from support.witness_server import RunningWitness, start_witness

from appliance.cli import cli
from ledger import merkle
from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint
from ledger.witness import WitnessVerifier, format_add_checkpoint, verify_cosignature

ROOT_DIR = Path(__file__).resolve().parents[3]
ORIGIN = "appliance.example/served"
LEAVES = [merkle.leaf_hash(bytes([i])) for i in range(30)]
HTTP = urllib3.PoolManager(retries=False, timeout=10)


def note(log: NoteSigner, size: int, leaves: list[bytes] = LEAVES) -> str:
    cp = Checkpoint(log.name, size, merkle.root_hash(leaves[:size]), 1_767_225_600_000 + size)
    return sign_checkpoint(cp, log).text


@pytest.fixture
def log() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture
def served(tmp_path: Path, log: NoteSigner) -> Iterator[RunningWitness]:
    w = start_witness(tmp_path / "w", "witness.example/w1", [NoteVerifier.from_vkey(log.vkey())])
    yield w
    w.close()


def post(url: str, body: bytes) -> urllib3.BaseHTTPResponse:
    return HTTP.request("POST", url + "/add-checkpoint", body=body)


def problem(resp: urllib3.BaseHTTPResponse, status: int, slug: str) -> dict[str, object]:
    assert resp.status == status, resp.data
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = resp.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status
    assert "Traceback" not in resp.data.decode()
    return body  # type: ignore[no-any-return]


def test_add_checkpoint_cosigns_and_follows_the_log(served: RunningWitness, log: NoteSigner) -> None:
    text = note(log, 8)
    resp = post(served.url, format_add_checkpoint(0, [], text))
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    body = resp.data.decode()
    assert body.startswith("\u2014 witness.example/w1 ") and body.endswith("\n")
    assert verify_cosignature(text + body, served.vkey) > 0
    grown = note(log, 20)
    resp = post(served.url, format_add_checkpoint(8, merkle.consistency_proof(LEAVES[:20], 8), grown))
    assert resp.status == 200
    assert verify_cosignature(grown + resp.data.decode(), WitnessVerifier.from_vkey(served.vkey)) > 0
    info = HTTP.request("GET", served.url + "/").json()
    assert info["logs"] == [{"origin": ORIGIN, "tree_size": 20}] and info["vkey"] == served.vkey


def test_conflict_answers_the_witness_size_as_text(served: RunningWitness, log: NoteSigner) -> None:
    post(served.url, format_add_checkpoint(0, [], note(log, 8)))
    resp = post(served.url, format_add_checkpoint(0, [], note(log, 12)))
    assert resp.status == 409
    assert resp.headers["Content-Type"] == "text/x.tlog.size"
    assert resp.data == b"8\n"
    forked = [merkle.leaf_hash(b"other"), *LEAVES[1:]]
    resp = post(served.url, format_add_checkpoint(8, [], note(log, 8, forked)))
    assert (resp.status, resp.data) == (409, b"8\n")
    assert (served.witness._path.parent / "conflicts.jsonl").read_text().count("\n") == 1


def test_refusals_have_the_protocol_statuses(served: RunningWitness, log: NoteSigner) -> None:
    text = note(log, 8)
    problem(
        post(served.url, format_add_checkpoint(0, [], note(NoteSigner.generate("x.example/l"), 8))),
        404,
        "unknown-log",
    )
    problem(
        post(served.url, format_add_checkpoint(0, [], note(NoteSigner.generate(ORIGIN), 8))),
        403,
        "log-signature-invalid",
    )
    post(served.url, format_add_checkpoint(0, [], text))
    bad = problem(
        post(served.url, format_add_checkpoint(8, merkle.consistency_proof(LEAVES[:9], 7), note(log, 9))),
        422,
        "consistency-unproven",
    )
    assert "prefix" in str(bad["detail"])
    problem(post(served.url, b"old 8\n\n" + note(log, 5).encode()), 400, "bad-witness-request")
    problem(post(served.url, b"old eight\n\n" + text.encode()), 400, "bad-witness-request")
    problem(post(served.url, b"old 0\n\nnot a checkpoint\n"), 400, "bad-witness-request")
    problem(post(served.url, b"old 0\n\n" + b"x" * 70_000), 413, "body-too-large")
    assert HTTP.request("GET", served.url + "/add-checkpoint").status == 405
    assert served.witness.heads()[ORIGIN].tree_size == 8


# -- the CLI: init and serve --------------------------------------------------------------------------------
def test_witness_init_makes_a_private_key_once(tmp_path: Path) -> None:
    runner = CliRunner()
    state = tmp_path / "w"
    result = runner.invoke(
        cli, ["witness", "init", "--state-dir", str(state), "--name", "witness.example/w9"]
    )
    assert result.exit_code == 0, result.output
    vkey = result.stdout.strip()
    assert WitnessVerifier.from_vkey(vkey).name == "witness.example/w9"
    assert (state / "witness.key").stat().st_mode & 0o777 == 0o600
    assert (state / "witness.vkey").read_text().strip() == vkey
    again = runner.invoke(cli, ["witness", "init", "--state-dir", str(state), "--name", "witness.example/w9"])
    assert again.exit_code == 2 and "exists already" in again.output
    bad = runner.invoke(cli, ["witness", "init", "--state-dir", str(tmp_path / "x"), "--name", "has space"])
    assert bad.exit_code == 2 and "--name" in bad.output


def test_witness_serve_refuses_unusable_keys(tmp_path: Path, log: NoteSigner) -> None:
    runner = CliRunner()
    (tmp_path / "log.vkey").write_text("not a key\n")
    no_key = runner.invoke(
        cli,
        ["witness", "serve", "--state-dir", str(tmp_path / "none"), "--log-key", str(tmp_path / "log.vkey")],
    )
    assert no_key.exit_code == 2 and "witness init" in no_key.output
    runner.invoke(cli, ["witness", "init", "--state-dir", str(tmp_path / "w"), "--name", "w.example/1"])
    bad = runner.invoke(
        cli, ["witness", "serve", "--state-dir", str(tmp_path / "w"), "--log-key", str(tmp_path / "log.vkey")]
    )
    assert bad.exit_code == 2 and "--log-key" in bad.output


@pytest.mark.slow
def test_witness_serve_runs_under_gunicorn(tmp_path: Path, log: NoteSigner) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}
    state = tmp_path / "w"
    init = subprocess.run(
        [sys.executable, "-m", "appliance", "witness", "init", "--state-dir", state, "--name", "w.example/g"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    vkey = init.stdout.strip()
    (tmp_path / "log.vkey").write_text(log.vkey() + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance",
            "witness",
            "serve",
            "--state-dir",
            state,
            "--port",
            str(port),
            "--log-key",
            tmp_path / "log.vkey",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = HTTP.request(
                    "POST",
                    f"http://127.0.0.1:{port}/add-checkpoint",
                    body=format_add_checkpoint(0, [], note(log, 3)),
                )
                break
            except urllib3.exceptions.HTTPError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the witness did not start"
                time.sleep(0.2)
        assert resp.status == 200, resp.data
        assert verify_cosignature(note(log, 3) + resp.data.decode(), vkey) > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
