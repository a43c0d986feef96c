"""API keys and roles: who may call what, from one table, and how refusals look."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from appliance.keys import ROLES

if TYPE_CHECKING:
    from conftest import ServerEnv
    from flask import Flask
    from werkzeug.test import TestResponse


@dataclass(frozen=True)
class Route:
    method: str
    url: str | Callable[[ServerEnv], str]
    rule: str  # as in app.url_map, to check the table covers every route
    allowed: frozenset[str]
    json: dict[str, Any] | Callable[[ServerEnv], dict[str, Any]] | None = field(default=None)


MASKED = frozenset({"agent", "supervisor", "auditor", "ops"})
REPLY = frozenset({"agent", "supervisor", "ops", "admin"})


OPS = frozenset({"ops", "admin"})
REPORT = frozenset({"ops", "admin", "auditor", "analyst"})
PRIVACY = frozenset({"analyst", "custodian", "auditor", "admin"})


def _version(env: ServerEnv) -> dict[str, Any]:
    """The one version of the tiny model published into the shared node (see ``proactive_state``)."""
    live = env.node.proactive.registry.live("tiny")
    assert live is not None
    return {"version": live.version}


@pytest.fixture(scope="module", autouse=True)
def proactive_state(shared_env: ServerEnv, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A trigger (id 1) and a published model, so that every proactive route has something to act on."""
    import numpy as np
    import pandas as pd

    from predictors.training import train

    node = shared_env.node
    now = datetime.now(UTC)
    node.store.proactive.insert_triggers(
        [
            {
                "run_id": "0" * 16,
                "playbook": "tire_pressure_service",
                "customer_id": 1,
                "score": 1.0,
                "rank": 1,
                "treated": 1,
                "status": "pending",
                "suppressed_by": None,
                "reasons": {"gates": [], "model": []},
                "model_version": None,
                "channel": "sms",
                "created": now,
                "not_before": None,
            }
        ]
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(
        y=(x[:, 0] + rng.normal(size=300) > 0).astype(int)
    )
    out = tmp_path_factory.mktemp("tiny") / "model"
    train(frame, "y", folds=2, threads=1, max_rounds=50, patience=10).save(out)
    node.proactive.publish_model("tiny", out, actor="admin:test")


@pytest.fixture(scope="module", autouse=True)
def privacy_state(shared_env: ServerEnv) -> None:
    """Keys, a column encrypted over 13 customers, and the analyst's query 1 waiting for approval."""
    node = shared_env.node
    node.store.add_customers(
        [
            {"external_id": f"P-{i}", "region": "CN", "full_name": f"客户{i}", "balance": 100.0 * i}
            for i in range(1, 13)
        ]
    )
    node.privacy.keygen(actor="custodian:test")
    node.privacy.encrypt("customers", "balance", actor="admin:test")
    analyst = node.keys.authenticate(shared_env.tokens["analyst"])
    assert analyst is not None
    row = node.privacy.submit(actor=analyst.actor, sql="SELECT SCORE(2 * balance) FROM customers")
    assert (row.id, row.status) == (1, "awaiting_approval")


@pytest.fixture(scope="module", autouse=True)
def anchor_state(shared_env: ServerEnv) -> None:
    """Anchoring to an in-process Ethereum chain, so POST /v1/ledger/anchors has a chain to anchor to."""
    from support.eth_chain import in_process_chain

    from appliance.anchoring import AnchorService

    shared_env.node._anchoring = AnchorService(shared_env.node, in_process_chain().anchor)


#: Ids of the keys the admin-keys rows rotate and revoke (made by ``key_targets``).
KEY_TARGETS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def key_targets(shared_env: ServerEnv) -> None:
    for purpose in ("rotate", "revoke"):
        key, _ = shared_env.node.keys.issue("ops", label=f"to {purpose} in the role matrix")
        KEY_TARGETS[purpose] = key.key_id


def _erasable(env: ServerEnv) -> int:
    """A customer of its own for every call of the erase row (the admin's call erases it)."""
    import secrets

    (cid,) = env.node.store.add_customers(
        [{"external_id": f"E-{secrets.token_hex(6)}", "region": "CN", "full_name": "测试"}]
    )
    return cid


def _token(env: ServerEnv) -> dict[str, Any]:
    token = env.node.masking.mask_text("卡号6222021234567890128", role="supervisor").text[2:]
    return {"token": token, "reason": "escalation 42: identity check"}


def _witness(env: ServerEnv | None = None) -> dict[str, str]:
    """A new witness (name and key) for every call of the add row; the node does not contact it."""
    import secrets

    from ledger.witness import WitnessSigner

    vkey = WitnessSigner.generate(f"probe.example/{secrets.token_hex(4)}").vkey()
    return {"url": "http://127.0.0.1:9/witness", "vkey": vkey}


def _witness_to_remove(env: ServerEnv) -> str:
    """A witness of its own for every call of the remove row (the admin's call removes it)."""
    added = env.node.witnesses.add(**_witness(), actor="admin:test")
    return f"/v1/ledger/witnesses/{added['key_id']}"


#: THE access table of the API. A route added to the server must be added here.
ROUTES = (
    Route("GET", "/v1/ledger/checkpoint", "/v1/ledger/checkpoint", frozenset({"auditor"})),
    Route("POST", "/v1/ledger/checkpoints", "/v1/ledger/checkpoints", frozenset({"auditor", "admin"})),
    Route("GET", "/v1/ledger/entries/0", "/v1/ledger/entries/<seq>", frozenset({"auditor"})),
    Route(
        "POST", "/v1/ledger/entries", "/v1/ledger/entries", frozenset({"admin"}), {"action": "test.probed"}
    ),
    Route("GET", "/v1/ledger/proofs/inclusion?seq=0", "/v1/ledger/proofs/inclusion", frozenset({"auditor"})),
    Route(
        "GET",
        "/v1/ledger/proofs/consistency?first=1",
        "/v1/ledger/proofs/consistency",
        frozenset({"auditor"}),
    ),
    Route("GET", "/v1/ledger/bundles/0", "/v1/ledger/bundles/<seq>", frozenset({"auditor"})),
    Route("GET", "/v1/ledger/bundles?action=node.initialised", "/v1/ledger/bundles", frozenset({"auditor"})),
    Route("GET", "/v1/ledger/witnesses", "/v1/ledger/witnesses", frozenset({"auditor", "admin"})),
    Route("POST", "/v1/ledger/witnesses", "/v1/ledger/witnesses", frozenset({"admin"}), _witness),
    Route("DELETE", _witness_to_remove, "/v1/ledger/witnesses/<key_id>", frozenset({"admin"})),
    Route("POST", "/v1/mask/text", "/v1/mask/text", MASKED, {"text": "手机13812345678"}),
    Route("POST", "/v1/mask/records", "/v1/mask/records", MASKED, {"records": [{"mobile": "13812345678"}]}),
    Route("GET", "/v1/customers/1", "/v1/customers/<customer_id>", MASKED),
    Route("GET", "/v1/customers?external_id=C-0001", "/v1/customers", MASKED),
    Route("GET", "/v1/customers/1/transcripts", "/v1/customers/<customer_id>/transcripts", MASKED),
    Route(
        "POST", "/v1/tokens/detokenize", "/v1/tokens/detokenize", frozenset({"supervisor", "admin"}), _token
    ),
    Route(
        "POST",
        "/v1/policy/check-reply",
        "/v1/policy/check-reply",
        REPLY,
        {"text": "hello", "region": "CN", "industry": "retail"},
    ),
    Route(
        "POST",
        "/v1/policy/filter-recommendations",
        "/v1/policy/filter-recommendations",
        REPLY,
        {"customer": {}, "items": [], "region": "CN", "industry": "retail"},
    ),
    Route("GET", "/v1/policy/versions", "/v1/policy/versions", frozenset({"admin", "auditor"})),
    Route("GET", "/v1/jobs", "/v1/jobs", frozenset({"admin", "auditor"})),
    Route(
        "GET", "/v1/jobs/ledger.checkpoint/runs", "/v1/jobs/<job_id>/runs", frozenset({"admin", "auditor"})
    ),
    Route("POST", "/v1/jobs/ledger.checkpoint/run", "/v1/jobs/<job_id>/run", frozenset({"admin"})),
    Route("POST", "/v1/jobs/outbox.deliver/pause", "/v1/jobs/<job_id>/pause", frozenset({"admin"})),
    Route("POST", "/v1/jobs/outbox.deliver/resume", "/v1/jobs/<job_id>/resume", frozenset({"admin"})),
    Route("GET", "/v1/triggers", "/v1/triggers", OPS),
    Route("GET", "/v1/triggers/1", "/v1/triggers/<trigger_id>", OPS),
    Route(
        "POST", "/v1/triggers/1/outcome", "/v1/triggers/<trigger_id>/outcome", OPS, {"outcome": "contacted"}
    ),
    Route("GET", "/v1/triggers/report", "/v1/triggers/report", REPORT),
    Route("GET", "/v1/playbooks", "/v1/playbooks", REPORT),
    Route(
        "POST", "/v1/playbooks/tire_pressure_service/run", "/v1/playbooks/<name>/run", frozenset({"admin"})
    ),
    Route(
        "POST",
        "/v1/consents",
        "/v1/consents",
        frozenset({"agent", "supervisor", "admin"}),
        {"customer_id": 1, "channel": "sms", "status": "opt_in"},
    ),
    Route(
        "POST",
        "/v1/suppressions",
        "/v1/suppressions",
        frozenset({"supervisor", "ops", "admin"}),
        {"customer_id": 1, "reason": "asked not to be called"},
    ),
    Route("DELETE", "/v1/suppressions/1", "/v1/suppressions/<customer_id>", frozenset({"admin"})),
    Route(
        "POST",
        "/v1/events",
        "/v1/events",
        frozenset({"admin"}),
        {"events": [{"customer_id": 1, "ts": "2026-11-01T09:00:00Z", "kind": "login", "channel": "app"}]},
    ),
    Route("GET", "/v1/models", "/v1/models", frozenset({"admin", "auditor", "analyst"})),
    Route("POST", "/v1/models/tiny/rollback", "/v1/models/<name>/rollback", frozenset({"admin"}), _version),
    Route(
        "POST",
        "/v1/queries",
        "/v1/queries",
        frozenset({"analyst"}),
        {"sql": "SELECT SUM(balance) FROM customers"},
    ),
    Route("GET", "/v1/queries", "/v1/queries", PRIVACY),
    Route("GET", "/v1/queries/1", "/v1/queries/<query_id>", PRIVACY),
    Route("POST", "/v1/queries/1/approve", "/v1/queries/<query_id>/approve", frozenset({"custodian"})),
    Route("GET", "/v1/privacy/columns", "/v1/privacy/columns", PRIVACY),
    Route("POST", "/v1/privacy/columns", "/v1/privacy/columns", frozenset({"admin"}), {"column": "balance"}),
    Route("GET", "/v1/privacy/budget", "/v1/privacy/budget", frozenset({"analyst"})),
    Route(
        "PUT",
        "/v1/privacy/budget/key:ab12cd34",
        "/v1/privacy/budget/<analyst>",
        frozenset({"admin"}),
        {"epsilon": 5, "delta": 1e-5},
    ),
    Route("GET", "/v1/privacy/keys", "/v1/privacy/keys", PRIVACY),
    Route(
        "PUT",
        "/v1/privacy/weights/risk",
        "/v1/privacy/weights/<name>",
        frozenset({"analyst", "admin"}),
        {"ids": list(range(1, 14)), "weights": [1.0] * 13},
    ),
    Route("GET", "/v1/privacy/weights", "/v1/privacy/weights", PRIVACY),
    Route("GET", "/v1/ledger/anchors", "/v1/ledger/anchors", frozenset({"auditor", "admin"})),
    Route("POST", "/v1/ledger/anchors", "/v1/ledger/anchors", frozenset({"admin"})),
    Route("POST", "/v1/admin/backups", "/v1/admin/backups", frozenset({"admin"}), {"include_secrets": False}),
    Route("GET", "/v1/admin/backups", "/v1/admin/backups", frozenset({"admin"})),
    Route("GET", "/v1/admin/keys", "/v1/admin/keys", frozenset({"admin"})),
    Route("POST", "/v1/admin/keys", "/v1/admin/keys", frozenset({"admin"}), {"role": "auditor"}),
    Route(
        "POST",
        lambda env: f"/v1/admin/keys/{KEY_TARGETS['rotate']}/rotate",
        "/v1/admin/keys/<key_id>/rotate",
        frozenset({"admin"}),
    ),
    Route(
        "DELETE",
        lambda env: f"/v1/admin/keys/{KEY_TARGETS['revoke']}",
        "/v1/admin/keys/<key_id>",
        frozenset({"admin"}),
    ),
    Route(
        "POST",
        lambda env: f"/v1/subjects/{_erasable(env)}/erase",
        "/v1/subjects/<customer_id>/erase",
        frozenset({"admin"}),
        {"reason": "role matrix probe"},
    ),
    # Also opened by the metrics scrape token (tests/unit/appliance/test_metrics.py), not by other keys.
    Route("GET", "/metrics", "/metrics", frozenset({"admin"})),
)
PUBLIC_ROUTES = ("/healthz", "/openapi.json")
#: Routes that authenticate with something other than API keys and test that themselves (console sessions).
OWN_AUTH_PREFIXES = ("/console",)


def _call(env: ServerEnv, route: Route, headers: dict[str, str], source: str = "127.0.0.1") -> TestResponse:
    body = route.json(env) if callable(route.json) else route.json
    url = route.url(env) if callable(route.url) else route.url
    return env.client.open(
        url, method=route.method, headers=headers, json=body, environ_base={"REMOTE_ADDR": source}
    )


_SOURCES = iter(f"198.18.{i // 250}.{i % 250 + 1}" for i in range(60_000))


def _fresh_source() -> str:
    """A source address of its own, so the failed-authentication limit per address never kicks in."""
    return next(_SOURCES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.rule}")
def test_role_matrix(shared_env: ServerEnv, route: Route, role: str) -> None:
    resp = _call(shared_env, route, shared_env.auth(role))
    if role in route.allowed:
        assert 200 <= resp.status_code < 300, resp.get_data(as_text=True)
    else:
        body = shared_env.problem(resp, 403, "forbidden")
        assert role in body["detail"]


def _unlisted(app: Flask) -> set[tuple[str, str]]:
    """Routes the app serves that no table here lists (the console's pages have their own tests)."""
    listed = {(r.rule, r.method) for r in ROUTES} | {(u, "GET") for u in PUBLIC_ROUTES}
    served = {
        (r.rule, m)
        for r in app.url_map.iter_rules()
        if r.endpoint != "static" and not r.rule.startswith(OWN_AUTH_PREFIXES)
        for m in (r.methods or set()) - {"HEAD", "OPTIONS"}
    }
    return served - listed


def test_table_covers_every_route_and_matches_the_document(shared_env: ServerEnv) -> None:
    assert not _unlisted(shared_env.app), "routes without a row in ROUTES (or PUBLIC_ROUTES)"
    served = {(r.rule, m) for r in shared_env.app.url_map.iter_rules() for m in r.methods or ()}
    assert not {(r.rule, r.method) for r in ROUTES} - served, "rows for routes the app does not serve"
    assert len({(r.rule, r.method) for r in ROUTES}) == len(ROUTES), "a route has two rows"
    assert all(r.allowed and r.allowed <= set(ROLES) for r in ROUTES)
    doc = shared_env.client.get("/openapi.json").get_json()
    for r in ROUTES:
        path = re.sub(r"<(\w+)>", r"{\1}", r.rule)
        assert set(doc["paths"][path][r.method.lower()]["x-roles"]) == r.allowed
    # And the other way round: what the document calls public is exactly PUBLIC_ROUTES.
    public = {
        (path, method.upper())
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if not op["x-roles"] and not path.startswith(OWN_AUTH_PREFIXES)
    }
    assert public == {(u, "GET") for u in PUBLIC_ROUTES}


def test_a_route_added_without_a_row_is_caught(shared_env: ServerEnv) -> None:
    from flask import Blueprint

    from appliance.server import create_app
    from appliance.server.openapi import operation

    extra = Blueprint("extra", __name__, url_prefix="/v1")

    @extra.get("/unlisted/<name>")
    @operation(summary="a route nobody put in the table", roles=("admin",))
    def unlisted(name: str) -> dict[str, str]:
        return {"name": name}

    app = create_app(shared_env.settings, shared_env.node)
    app.register_blueprint(extra)
    assert _unlisted(app) == {("/v1/unlisted/<name>", "GET")}
    assert not _unlisted(shared_env.app)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.rule}")
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer apl_000000000000_notarealkeynotarealkeynotarealkey"},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer "},
        {"X-API-Key": "garbage"},
    ],
    ids=["missing", "unknown", "malformed", "basic-scheme", "empty-bearer", "bad-x-api-key"],
)
def test_missing_or_invalid_key_is_401(shared_env: ServerEnv, route: Route, headers: dict[str, str]) -> None:
    resp = _call(shared_env, route, headers, source=_fresh_source())
    shared_env.problem(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_401(env: ServerEnv) -> None:
    key, token = env.node.keys.issue("auditor", label="to revoke")
    headers = {"Authorization": f"Bearer {token}"}
    assert env.client.get("/v1/ledger/checkpoint", headers=headers).status_code == 200
    env.node.keys.revoke(key.key_id)
    env.problem(env.client.get("/v1/ledger/checkpoint", headers=headers), 401, "unauthorized")


def test_x_api_key_header_authenticates(shared_env: ServerEnv) -> None:
    resp = shared_env.client.get("/v1/ledger/checkpoint", headers={"X-API-Key": shared_env.tokens["auditor"]})
    assert resp.status_code == 200


def test_scheme_is_case_insensitive(shared_env: ServerEnv) -> None:
    headers = {"Authorization": f"bearer {shared_env.tokens['auditor']}"}
    assert shared_env.client.get("/v1/ledger/checkpoint", headers=headers).status_code == 200


def test_two_different_keys_are_refused(shared_env: ServerEnv) -> None:
    headers = {**shared_env.auth("auditor"), "X-API-Key": shared_env.tokens["admin"]}
    shared_env.problem(shared_env.client.get("/v1/ledger/checkpoint", headers=headers), 401, "unauthorized")


@pytest.mark.parametrize("url", PUBLIC_ROUTES)
def test_public_routes_need_no_key(shared_env: ServerEnv, url: str) -> None:
    assert shared_env.client.get(url).status_code == 200


def test_actor_of_appended_entry_is_the_key_not_the_token(env: ServerEnv) -> None:
    resp = env.client.post("/v1/ledger/entries", headers=env.auth("admin"), json={"action": "test.done"})
    seq = resp.get_json()["seq"]
    entry = env.client.get(f"/v1/ledger/entries/{seq}", headers=env.auth("auditor")).get_json()
    key = env.node.keys.authenticate(env.tokens["admin"])
    assert key is not None
    assert entry["entry"]["actor"] == key.actor
    assert env.tokens["admin"] not in entry["raw"]


def test_tokens_never_reach_the_log(env: ServerEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env.client.get("/v1/ledger/checkpoint", headers=env.auth("auditor"))
    env.client.get("/v1/ledger/checkpoint", headers=env.auth("ops"))
    env.client.get("/v1/ledger/checkpoint", headers={"Authorization": "Bearer apl_abc_leakedtoken"})
    assert caplog.records, "the server logs requests"
    for token in [*env.tokens.values(), "apl_abc_leakedtoken"]:
        assert token not in caplog.text


@pytest.mark.parametrize(
    ("url", "headers", "status"),
    [
        ("/healthz", {}, 200),
        ("/v1/ledger/checkpoint", {}, 401),
        ("/v1/nothing-here", {}, 404),
    ],
)
def test_every_answer_carries_the_security_headers(
    shared_env: ServerEnv, url: str, headers: dict[str, str], status: int
) -> None:
    from appliance.server import SECURITY_HEADERS

    resp = shared_env.client.get(url, headers=headers)
    assert resp.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, name
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
