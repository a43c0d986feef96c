"""Client-supplied names never become paths outside the node: every path parameter of every route (read
from the OpenAPI document, so new routes are covered without a line here) and the names the CLI and
the backup route take refuse traversal, absolute paths, NUL and very long names with a clear 4xx."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

HOSTILE = {
    "dotdot": "..",
    "traversal": "../../../../etc/passwd",
    "traversal-backslash": "..\\..\\..\\windows\\win.ini",
    "absolute": "/etc/passwd",
    "nul": "name\x00.json",
    "long": "a" * 5000,
    "double-encoded": "..%2F..%2Fetc%2Fpasswd",
    "dot-prefixed": ".hidden",
    "newline": "name\nX-Injected: 1",
}


@pytest.fixture(scope="module")
def node_env(shared_env: Any) -> Any:
    return shared_env


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _operations(env: Any) -> list[tuple[str, str, str]]:
    doc = env.client.get("/openapi.json").get_json()
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = [p["name"] for p in op["parameters"] if p["in"] == "path"]
            if params and op["x-roles"]:
                role = "admin" if "admin" in op["x-roles"] else op["x-roles"][0]
                out.append((method.upper(), path, role))
    return out


def test_every_path_parameter_refuses_hostile_names(node_env: Any) -> None:
    ops = _operations(node_env)
    assert len(ops) >= 15, "the document lists the routes with path parameters"
    data_dir = node_env.settings.data_dir
    before = _tree(data_dir.parent)
    failures = []
    for method, path, role in ops:
        for label, value in HOSTILE.items():
            url = path
            for name in [s.split("}")[0] for s in path.split("{")[1:]]:
                url = url.replace("{" + name + "}", quote(value, safe=""))
            resp = node_env.client.open(
                url,
                method=method,
                headers={**node_env.auth(role), "Content-Type": "application/json"},
                data="{}" if method in {"POST", "PUT", "PATCH"} else None,
            )
            ok = 400 <= resp.status_code < 500 and resp.mimetype == "application/problem+json"
            if not ok or "Traceback" in resp.get_data(as_text=True):
                failures.append(f"{method} {path} [{label}] -> {resp.status_code}")
    assert not failures, "\n".join(failures)
    # Nothing was written anywhere near the node for any of them (the ledger grows by reads only).
    created = {p for p in _tree(data_dir.parent) - before if not p.startswith(("node/ledger", "node/state"))}
    assert not created, created


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_backup_names_stay_in_the_backups_directory(node_env: Any, label: str) -> None:
    resp = node_env.client.post(
        "/v1/admin/backups", headers=node_env.auth("admin"), json={"name": HOSTILE[label]}
    )
    node_env.problem(resp, 422, "invalid-body")


@pytest.fixture(scope="module")
def cli_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from appliance.node import Node
    from appliance.settings import load_settings

    data = tmp_path_factory.mktemp("cli") / "node"
    Node.init(load_settings(node={"data_dir": data}))
    return data


@pytest.mark.parametrize("label", ["dotdot", "traversal", "absolute", "nul", "long", "dot-prefixed"])
@pytest.mark.parametrize(
    "command",
    [
        ["model", "publish", "{name}", "{dir}"],
        ["model", "rollback", "{name}", "0123456789abcdef"],
        ["privacy", "weights", "{name}", "{csv}"],
        ["playbooks", "run", "{name}"],
        ["jobs", "run", "{name}"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_cli_names_refuse_paths(cli_node: Path, tmp_path: Path, command: list[str], label: str) -> None:
    from appliance.cli import cli

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    csv = tmp_path / "w.csv"
    csv.write_text("id,weight\n1,1.0\n")
    args = [a.format(name=HOSTILE[label], dir=model_dir, csv=csv) for a in command]
    before = _tree(cli_node.parent)
    result = CliRunner().invoke(cli, args, env={"APPLIANCE_NODE__DATA_DIR": str(cli_node)})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    created = {p for p in _tree(cli_node.parent) - before if not p.startswith(("node/ledger", "node/state"))}
    assert not created, created
    assert not os.path.exists("/etc/passwd.npz")
