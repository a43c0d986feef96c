"""JSON log lines: one object per line, the request id of the response and the ledger entry, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from appliance import jobs, logs
from appliance.logs import configure_logging

if TYPE_CHECKING:
    from conftest import ServerEnv


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        text = self.stream.getvalue()
        assert text.endswith("\n") or not text
        return [json.loads(line) for line in text.splitlines()]  # each line is one JSON object

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def captured() -> Iterator[Captured]:
    root, node = logging.getLogger(), logging.getLogger("appliance")
    saved = root.level, node.level, node.propagate, list(root.handlers)
    out = Captured()
    configure_logging("INFO", stream=out.stream)
    yield out
    for handler in root.handlers[:]:
        if handler not in saved[3]:
            root.removeHandler(handler)
    root.setLevel(saved[0])
    node.setLevel(saved[1])
    node.propagate = saved[2]
    structlog.reset_defaults()
    logs.clear()


def test_a_request_logs_json_with_the_id_of_its_response_and_ledger_entry(
    env: ServerEnv, captured: Captured
) -> None:
    resp = env.client.get("/v1/customers/1", headers={**env.auth("agent"), "X-Request-Id": "trace-42.a"})
    assert resp.status_code == 200
    assert resp.headers["X-Request-Id"] == "trace-42.a"
    entry = env.node.ledger.entry(resp.get_json()["ledger_seq"])
    assert entry.request_id == "trace-42.a"
    (access,) = [ln for ln in captured.lines() if ln.get("status") is not None]
    key = env.node.keys.authenticate(env.tokens["agent"])
    assert key is not None
    assert access == {
        "time": access["time"],
        "level": "info",
        "logger": "appliance.server",
        "event": "GET /v1/customers/<customer_id> 200",
        "request_id": "trace-42.a",
        "route": "/v1/customers/<customer_id>",
        "method": "GET",
        "status": 200,
        "duration_ms": access["duration_ms"],
        "key_id": key.key_id,
    }
    assert access["time"].endswith("Z") and "T" in access["time"]
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0
    assert list(access)[:4] == ["time", "level", "logger", "event"]


def test_lines_logged_during_a_request_carry_its_id(env: ServerEnv, captured: Captured) -> None:
    """The failed-authentication warning is logged by the auth layer, not the access log: the id is
    bound in the context, not passed along."""
    resp = env.client.get("/v1/ledger/checkpoint", headers={"Authorization": "Bearer apl_0123456789ab_wrong"})
    assert resp.status_code == 401
    rid = resp.headers["X-Request-Id"]
    lines = captured.lines()
    assert len(lines) >= 2
    assert all(ln["request_id"] == rid for ln in lines)
    (warning,) = [ln for ln in lines if ln["level"] == "warning"]
    assert "authentication failed" in warning["event"] and "status" not in warning
    assert {ln["route"] for ln in lines} == {"/v1/ledger/checkpoint"}


def test_nothing_bound_for_one_request_leaks_into_the_next_line(env: ServerEnv, captured: Captured) -> None:
    env.client.get("/healthz")
    logging.getLogger("appliance.test").info("after the request")
    last = captured.lines()[-1]
    assert last["event"] == "after the request"
    assert "request_id" not in last and "route" not in last


def test_no_token_query_string_or_body_reaches_the_log(env: ServerEnv, captured: Captured) -> None:
    env.client.get("/v1/customers?external_id=C-0001", headers=env.auth("agent"))
    env.client.post(
        "/v1/policy/check-reply",
        headers=env.auth("agent"),
        json={"text": "call me on 13812345678", "region": "CN", "industry": "retail"},
    )
    env.client.get("/v1/ledger/checkpoint", headers={"X-API-Key": "apl_0123456789ab_notarealsecretvalue"})
    text = captured.text
    assert captured.lines()
    for secret in [*env.tokens.values(), "notarealsecretvalue", "C-0001", "external_id", "13812345678"]:
        assert secret not in text


def test_a_token_written_into_a_message_is_cut_to_its_key_id(env: ServerEnv, captured: Captured) -> None:
    token = env.tokens["admin"]
    logging.getLogger("appliance.test").warning("someone pasted %s into a field", token)
    (line,) = captured.lines()
    key_id = token.split("_")[1]
    assert token not in captured.text
    assert f"apl_{key_id}_[redacted]" in line["event"]


def test_other_loggers_and_exceptions_go_through_the_same_renderer(captured: Captured) -> None:
    logging.getLogger("gunicorn.error").warning("Worker timeout (pid: %s)", 1234)
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("appliance.test").exception("it failed")
    logging.getLogger("some.library").info("library chatter at INFO stays out")
    first, second = captured.lines()
    assert first["logger"] == "gunicorn.error" and first["event"] == "Worker timeout (pid: 1234)"
    assert second["level"] == "error" and "ValueError: bad value" in second["exception"]
    assert "Traceback" in second["exception"]


def test_structlog_loggers_render_the_same_way(captured: Captured) -> None:
    structlog.get_logger("appliance.test").info("structured", job_id="x.y", count=3)
    (line,) = captured.lines()
    assert line["logger"] == "appliance.test" and line["event"] == "structured"
    assert line["job_id"] == "x.y" and line["count"] == 3


def test_a_job_run_binds_its_id(env: ServerEnv, captured: Captured, monkeypatch: pytest.MonkeyPatch) -> None:
    def chatty(node: Any, trigger: str) -> dict[str, int]:
        logging.getLogger("appliance.test").info("working")
        return {"done": 1}

    monkeypatch.setitem(jobs.TARGETS, "test.chatty", chatty)
    run = jobs.run_job_now(env.node, "test.chatty")
    logging.getLogger("appliance.test").info("afterwards")
    working, afterwards = captured.lines()[-2:]
    assert working["job_id"] == "test.chatty" and working["job_run"] == run["id"]
    assert working["trigger"] == "manual"
    assert "job_id" not in afterwards


def test_configuring_twice_keeps_one_handler(captured: Captured) -> None:
    configure_logging("warning", stream=captured.stream)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_appliance_json", False)]
    assert len(ours) == 1
    logging.getLogger("appliance.test").info("hidden at WARNING")
    logging.getLogger("appliance.test").warning("shown")
    assert [ln["event"] for ln in captured.lines()] == ["shown"]
    with pytest.raises(ValueError, match="not a log level"):
        configure_logging("LOUD")
