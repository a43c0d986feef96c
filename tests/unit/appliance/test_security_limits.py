"""Request size and shape limits: oversized bodies (declared or chunked) are 413 problem+json, bodies
that are not JSON are 400/415, and nothing is half-written when a body is refused."""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import pytest

LIMIT = 4096


@pytest.fixture(scope="module")
def small(shared_env: Any) -> Any:
    """The module's node behind an app that accepts bodies of at most 4 KiB."""
    from appliance.server import create_app

    server = shared_env.settings.server.model_copy(update={"max_body_bytes": LIMIT})
    app = create_app(shared_env.settings.model_copy(update={"server": server}), shared_env.node)
    return dataclasses.replace(shared_env, app=app, client=app.test_client())


def _entry(size: int) -> bytes:
    """A valid ledger-append body of exactly ``size`` bytes."""
    head, tail = b'{"action": "test.sized", "details": {"pad": "', b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _chunked(env: Any, body: bytes, **headers: str) -> Any:
    """POST as a server passes on a chunked body: no Content-Length, the stream ends with the body."""
    return env.client.post(
        "/v1/ledger/entries",
        headers={**env.auth("admin"), "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        | headers,
        input_stream=io.BytesIO(body),
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_declared_oversized_body_is_413(small: Any) -> None:
    size = small.node.ledger.size
    resp = small.client.post(
        "/v1/ledger/entries",
        headers={**small.auth("admin"), "Content-Type": "application/json"},
        data=_entry(LIMIT + 1),
    )
    body = small.problem(resp, 413, "body-too-large")
    assert str(LIMIT) in body["detail"] and "server.max_body_bytes" in body["detail"]
    assert small.node.ledger.size == size


def test_chunked_oversized_body_is_413_not_a_truncated_read(small: Any) -> None:
    size = small.node.ledger.size
    # The first LIMIT bytes of this body are valid JSON on their own: a server that read only up to the
    # limit would append an entry from a body it should have refused.
    body = _entry(LIMIT) + b" " * 10_000
    small.problem(_chunked(small, body), 413, "body-too-large")
    small.problem(_chunked(small, _entry(LIMIT * 10)), 413, "body-too-large")
    assert small.node.ledger.size == size


def test_chunked_body_within_the_limit_is_served(small: Any) -> None:
    resp = _chunked(small, _entry(LIMIT))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    entry = small.client.get(f"/v1/ledger/entries/{resp.get_json()['seq']}", headers=small.auth("auditor"))
    assert len(entry.get_json()["entry"]["details"]["pad"]) > LIMIT - 100


def test_transfer_encoding_wins_over_a_smaller_content_length(small: Any) -> None:
    # A body smuggled past a small Content-Length: the chunked framing is what counts.
    small.problem(_chunked(small, _entry(LIMIT * 2), **{"Content-Length": "10"}), 413, "body-too-large")


@pytest.mark.parametrize(
    ("content_type", "data", "status", "slug"),
    [
        ("application/json", b"{not json", 400, "invalid-json"),
        ("application/json", b'{"action": "test.x", "details": NaN}', 400, "invalid-json"),
        ("application/json", b"\xff\xfe{}", 400, "invalid-json"),
        ("application/json", b"", 400, "invalid-json"),
        ("text/plain", b'{"action": "test.x"}', 415, "unsupported-media-type"),
        ("application/x-www-form-urlencoded", b"action=test.x", 415, "unsupported-media-type"),
        ("multipart/form-data; boundary=x", b"--x--", 415, "unsupported-media-type"),
        ("application/json", b'["not", "an", "object"]', 422, "invalid-body"),
    ],
)
def test_bodies_that_are_not_json_objects_are_4xx(
    small: Any, content_type: str, data: bytes, status: int, slug: str
) -> None:
    size = small.node.ledger.size
    resp = small.client.post(
        "/v1/ledger/entries", headers={**small.auth("admin"), "Content-Type": content_type}, data=data
    )
    small.problem(resp, status, slug)
    assert small.node.ledger.size == size


def test_oversized_json_on_every_body_route_is_413(small: Any) -> None:
    """Every route that takes a body refuses one over the limit, whoever's route it is."""
    doc = small.client.get("/openapi.json").get_json()
    checked = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "requestBody" not in op or "{" in path or not op["x-roles"]:
                continue
            role = "admin" if "admin" in op["x-roles"] else op["x-roles"][0]
            resp = small.client.open(
                path,
                method=method.upper(),
                headers={**small.auth(role), "Content-Type": "application/json"},
                data=json.dumps({"pad": "x" * (LIMIT * 2)}),
            )
            small.problem(resp, 413, "body-too-large")
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("depth", [129, 5_000, LIMIT // 2 - 2])
def test_deeply_nested_json_is_400_even_with_a_raised_recursion_limit(small: Any, depth: int) -> None:
    """py_ecc (loaded with web3) raises the recursion limit to 100,000: the stdlib decoder would then
    overflow the C stack on a body of nested brackets and kill the worker."""
    import sys

    from appliance.server.bodylimit import MAX_JSON_DEPTH

    data = b"[" * depth + b"]" * depth
    if len(data) > LIMIT:
        data = b"[" * (LIMIT // 2) + b"]" * (LIMIT // 2 - 1)  # at the size limit, unbalanced
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 100_000))
    try:
        resp = small.client.post(
            "/v1/ledger/entries",
            headers={**small.auth("admin"), "Content-Type": "application/json"},
            data=data,
        )
    finally:
        sys.setrecursionlimit(old)
    body = small.problem(resp, 400, "invalid-json")
    assert str(MAX_JSON_DEPTH) in body["detail"]


def test_nesting_depth_is_counted_outside_strings_only() -> None:
    from appliance.server.bodylimit import MAX_JSON_DEPTH, json_too_deep

    assert not json_too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert not json_too_deep(b'{"text": "' + b"[" * 10_000 + b'"}')
    assert not json_too_deep(b'{"text": "\\"' + b"{" * 10_000 + b'"}')  # an escaped quote inside a string
    assert not json_too_deep(b"[" + b'{"a": [1]},' * 10_000 + b"{}]")  # many, but shallow
