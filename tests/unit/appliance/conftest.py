"""A real node in a temporary directory, served by the real app through Flask's test client.

No mocks: the HTTP tests go through the node's key store and ledger, so what
they prove about auth, errors and proofs holds for the server as deployed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from appliance.node import Node
from appliance.server import create_app
from appliance.settings import Settings, load_settings

#: One customer in every test node (id 1), with identifiers of several types and a short chat.
CUSTOMER: dict[str, Any] = {
    "external_id": "C-0001",
    "region": "CN",
    "full_name": "张伟",
    "mobile": "13812345678",
    "cn_resident_id": "11010519491231002X",
    "bank_card": "6222021234567890128",
    "email": "zhang.wei@example.com",
    "date_of_birth": "1949-12-31",
    "notes": "客户来电，手机13812345678，邮箱zhang.wei@example.com",
    "segment": "affluent",
}
TRANSCRIPT: list[dict[str, Any]] = [
    {
        "ts": "2026-11-01T09:00:00Z",
        "speaker": "customer",
        "text": "你好，我的卡号6222021234567890128被扣了两次",
    },
    {"ts": "2026-11-01T09:00:30Z", "speaker": "agent", "text": "请提供身份证号核实身份"},
    {"ts": "2026-11-01T09:01:00Z", "speaker": "customer", "text": "11010519491231002X，手机13812345678"},
]


@dataclass
class ServerEnv:
    settings: Settings
    node: Node
    app: Flask
    client: FlaskClient
    tokens: dict[str, str]  # role -> API token

    def auth(self, role: str) -> dict[str, str]:
        """Headers that authenticate as ``role``."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @staticmethod
    def problem(resp: TestResponse, status: int, slug: str) -> dict[str, Any]:
        """Assert ``resp`` is the RFC 9457 problem ``slug``; return its body."""
        text = resp.get_data(as_text=True)
        assert resp.status_code == status, text
        assert resp.mimetype == "application/problem+json"
        body = json.loads(text)
        assert body["type"] == f"https://appliance.local/problems/{slug}"
        assert body["status"] == status
        assert {"title", "detail", "instance"} <= body.keys()
        assert body["request_id"] == resp.headers["X-Request-Id"]
        assert "Traceback" not in text
        return body


def make_env(path: Path) -> ServerEnv:
    settings = load_settings(node={"data_dir": path / "node"})
    tokens = dict(Node.init(settings).api_keys)
    node = Node.open(settings)
    (cid,) = node.store.add_customers([CUSTOMER])
    node.store.add_transcript(cid, TRANSCRIPT)
    app = create_app(settings, node)
    return ServerEnv(settings, node, app, app.test_client(), tokens)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ServerEnv]:
    """A fresh node per test, for tests that append or sign."""
    e = make_env(tmp_path)
    yield e
    e.node.close()


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerEnv]:
    """One node per module, for hypothesis and table-driven tests (function fixtures reset per example)."""
    e = make_env(tmp_path_factory.mktemp("server"))
    yield e
    e.node.close()
