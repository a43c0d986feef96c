"""Every way a request can fail answers with problem+json, a request id, and no internals."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ChainBroken, CheckpointInvalid, LedgerCorrupt

if TYPE_CHECKING:
    from conftest import ServerEnv

HUGE = str(2**63)

#: (url, status, slug) for an auditor's GETs on the node as `Node.init` leaves it (8 entries).
BAD_GETS = [
    ("/v1/ledger/entries/abc", 400, "invalid-parameter"),
    ("/v1/ledger/entries/-1", 400, "invalid-parameter"),
    ("/v1/ledger/entries/1.0", 400, "invalid-parameter"),
    ("/v1/ledger/entries/+1", 400, "invalid-parameter"),
    ("/v1/ledger/entries/1_0", 400, "invalid-parameter"),
    ("/v1/ledger/entries/%EF%BC%91", 400, "invalid-parameter"),  # fullwidth digit one
    (f"/v1/ledger/entries/{HUGE}", 400, "invalid-parameter"),
    ("/v1/ledger/entries/" + "9" * 5000, 400, "invalid-parameter"),
    ("/v1/ledger/entries/1000000", 404, "not-in-log"),
    ("/v1/ledger/bundles/x", 400, "invalid-parameter"),
    ("/v1/ledger/bundles/1000000", 404, "not-in-log"),
    ("/v1/ledger/proofs/inclusion", 400, "invalid-parameter"),
    ("/v1/ledger/proofs/inclusion?seq=", 400, "invalid-parameter"),
    ("/v1/ledger/proofs/inclusion?seq=x", 400, "invalid-parameter"),
    ("/v1/ledger/proofs/inclusion?seq=-3", 400, "invalid-parameter"),
    (f"/v1/ledger/proofs/inclusion?seq={HUGE}", 400, "invalid-parameter"),
    (f"/v1/ledger/proofs/inclusion?seq=0&size={HUGE}", 400, "invalid-parameter"),
    ("/v1/ledger/proofs/inclusion?seq=0&seq=1", 400, "invalid-parameter"),
    ("/v1/ledger/proofs/inclusion?seq=0&sise=1", 400, "invalid-parameter"),
    ("/v1/ledger/proofs/inclusion?seq=100", 404, "not-in-log"),
    ("/v1/ledger/proofs/inclusion?seq=3&size=3", 404, "not-in-log"),
    ("/v1/ledger/proofs/inclusion?seq=0&size=0", 404, "not-in-log"),
    ("/v1/ledger/proofs/inclusion?seq=0&size=1000", 404, "not-in-log"),
    (f"/v1/ledger/proofs/inclusion?seq=0&size={2**63 - 1}", 404, "not-in-log"),
    ("/v1/ledger/proofs/consistency", 400, "invalid-parameter"),
    ("/v1/ledger/proofs/consistency?first=5&second=2", 400, "invalid-parameter"),
    ("/v1/ledger/proofs/consistency?first=1000", 400, "invalid-parameter"),  # > the default second
    ("/v1/ledger/proofs/consistency?first=1&second=1000", 404, "not-in-log"),
    (f"/v1/ledger/proofs/consistency?first=0&second={HUGE}", 400, "invalid-parameter"),
    ("/nope", 404, "not-found"),
    ("/v1/ledger/entries/1/extra", 404, "not-found"),
]


@pytest.mark.parametrize(("url", "status", "slug"), BAD_GETS, ids=[u for u, _, _ in BAD_GETS])
def test_bad_requests_are_problems(shared_env: ServerEnv, url: str, status: int, slug: str) -> None:
    body = shared_env.problem(shared_env.client.get(url, headers=shared_env.auth("auditor")), status, slug)
    assert body["instance"] == url.split("?")[0].replace("%EF%BC%91", "\uff11")
    if slug == "invalid-parameter":
        assert body["errors"], "a validation problem lists what failed"
        assert all({"loc", "msg"} == e.keys() for e in body["errors"])


def test_validation_errors_do_not_echo_input(shared_env: ServerEnv) -> None:
    resp = shared_env.client.get(
        "/v1/ledger/proofs/inclusion?seq=secretvalue", headers=shared_env.auth("auditor")
    )
    shared_env.problem(resp, 400, "invalid-parameter")
    assert "secretvalue" not in resp.get_data(as_text=True)


def test_wrong_method_is_405_with_allow(shared_env: ServerEnv) -> None:
    resp = shared_env.client.delete("/v1/ledger/checkpoint", headers=shared_env.auth("auditor"))
    shared_env.problem(resp, 405, "method-not-allowed")
    assert "GET" in resp.headers["Allow"]


def _post(env: ServerEnv, **kwargs: Any) -> Any:
    return env.client.post("/v1/ledger/entries", headers=env.auth("admin"), **kwargs)


def test_non_json_body_is_415(shared_env: ServerEnv) -> None:
    resp = _post(shared_env, data="action=test.done", content_type="application/x-www-form-urlencoded")
    shared_env.problem(resp, 415, "unsupported-media-type")
    shared_env.problem(_post(shared_env, data=b'{"action": "a.b"}'), 415, "unsupported-media-type")


@pytest.mark.parametrize(
    "data", [b"{", b'{"action": }', b'{"action": "a.b", "details": {"x": NaN}}', b"\xff\xfe{", b"[" * 100_000]
)
def test_invalid_json_is_400(shared_env: ServerEnv, data: bytes) -> None:
    shared_env.problem(_post(shared_env, data=data, content_type="application/json"), 400, "invalid-json")


def test_body_over_the_limit_is_413(shared_env: ServerEnv) -> None:
    limit = shared_env.settings.server.max_body_bytes
    assert shared_env.app.config["MAX_CONTENT_LENGTH"] == limit
    data = b'{"action": "a.b", "details": {"pad": "' + b"x" * limit + b'"}}'
    shared_env.problem(_post(shared_env, data=data, content_type="application/json"), 413, "body-too-large")


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "a.b",
        {"action": 5},
        {"action": "a.b", "subject": "cust:00112233445566778899"},
        {"action": "a.b", "details": []},
        {"action": "a.b", "actor": "admin:someone-else"},
        {"action": "a.b", "request_id": "forged"},
    ],
    ids=[
        "empty",
        "array",
        "string",
        "int-action",
        "subject-not-list",
        "details-not-object",
        "actor",
        "req-id",
    ],
)
def test_body_not_fitting_the_schema_is_422(shared_env: ServerEnv, body: Any) -> None:
    problem = shared_env.problem(_post(shared_env, json=body), 422, "invalid-body")
    assert problem["errors"]
    assert all(e["loc"][0] == "body" for e in problem["errors"])


@pytest.mark.parametrize(
    "body",
    [
        {"action": "call.made", "subject": ["+1 415 555 0100"]},
        {"action": "call.made", "subject": ["jane.doe@example.com"]},
        {"action": "score.computed", "details": {"score": 0.75}},
        {"action": "score.computed", "details": {"n": 2**60}},
        {"action": "Not An Action"},
    ],
    ids=["phone-subject", "email-subject", "float", "big-int", "bad-action"],
)
def test_entries_the_ledger_refuses_are_422(env: ServerEnv, body: Any) -> None:
    size = env.node.ledger.size
    problem = env.problem(_post(env, json=body), 422, "invalid-entry")
    assert problem["detail"]  # says what to fix
    assert env.node.ledger.size == size, "nothing was recorded"


@pytest.mark.parametrize("exc", [LedgerCorrupt, ChainBroken, CheckpointInvalid, OSError])
def test_server_side_failures_are_503_without_internals(
    env: ServerEnv, monkeypatch: pytest.MonkeyPatch, exc: type[Exception]
) -> None:
    def broken(seq: int) -> Any:
        raise exc("/srv/secret/path/segments/seg-0.log at offset 42 is damaged")

    monkeypatch.setattr(env.node.ledger, "entry", broken)
    resp = env.client.get("/v1/ledger/entries/0", headers=env.auth("auditor"))
    slug = "storage-unavailable" if exc is OSError else "ledger-unavailable"
    env.problem(resp, 503, slug)
    assert "/srv/secret" not in resp.get_data(as_text=True)


def test_closed_ledger_is_503(env: ServerEnv) -> None:
    env.node.close()
    env.problem(env.client.get("/healthz"), 503, "ledger-unavailable")
    assert env.client.get("/v1/ledger/entries/0", headers=env.auth("auditor")).status_code == 503
    resp = env.client.post("/v1/ledger/entries", headers=env.auth("admin"), json={"action": "a.b"})
    assert resp.status_code == 503


def test_unexpected_exception_is_a_generic_500(env: ServerEnv, caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("internal detail: password=hunter2")

    env.app.add_url_rule("/boom", view_func=boom)
    with caplog.at_level(logging.ERROR, logger="appliance.server"):
        resp = env.client.get("/boom", headers={"X-Request-Id": "trace-me"})
    body = env.problem(resp, 500, "internal-error")
    assert body["request_id"] == "trace-me"
    assert "hunter2" not in resp.get_data(as_text=True)
    assert "RuntimeError" not in resp.get_data(as_text=True)
    assert any(r.exc_info and "trace-me" in r.getMessage() for r in caplog.records), "logged with traceback"


_values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", " ", "0", "00", "1e3", "0x1", "nan", "-0", "\x00", "%", "1 ", str(2**64)]),
)


@settings(max_examples=150, deadline=None)
@given(
    seq=_values,
    size=st.none() | _values,
    route=st.sampled_from(["inclusion", "consistency", "entry", "bundle"]),
)
def test_random_parameters_never_yield_5xx(
    shared_env: ServerEnv, seq: str, size: str | None, route: str
) -> None:
    if route in ("entry", "bundle"):
        url = f"/v1/ledger/{'entries' if route == 'entry' else 'bundles'}/{quote(seq, safe='')}"
        resp = shared_env.client.get(url, headers=shared_env.auth("auditor"))
    else:
        names = ("seq", "size") if route == "inclusion" else ("first", "second")
        query = {names[0]: seq} | ({names[1]: size} if size is not None else {})
        resp = shared_env.client.get(
            f"/v1/ledger/proofs/{route}", query_string=query, headers=shared_env.auth("auditor")
        )
    assert resp.status_code < 500, resp.get_data(as_text=True)
    assert resp.headers["X-Request-Id"]
    if resp.status_code >= 400:
        assert resp.mimetype == "application/problem+json"
