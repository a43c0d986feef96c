"""The OpenAPI document describes every route, resolves every reference, and matches what is enforced."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from pydantic import BaseModel

from appliance.server.openapi import PUBLIC, build_document, operation

if TYPE_CHECKING:
    from conftest import ServerEnv

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def doc(shared_env: ServerEnv) -> dict[str, Any]:
    resp = shared_env.client.get("/openapi.json")  # no key: public
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    return dict(resp.get_json())


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"external reference {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_top_level_structure(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"] and doc["info"]["version"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    json.dumps(doc)  # plain JSON all the way down


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    refs = set(_refs(doc))
    assert "#/components/schemas/Problem" in refs
    for ref in refs:
        assert isinstance(_resolve(doc, ref), dict)


def test_every_route_is_documented(shared_env: ServerEnv, doc: dict[str, Any]) -> None:
    for rule in shared_env.app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):  # HTML pages, not the API
            continue
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        assert path in doc["paths"], f"{rule.rule} is not documented"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"][path]


def test_operations_are_well_formed(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) == len(set(ids))
    for path, method, op in _operations(doc):
        assert method in METHODS
        assert op["summary"]
        assert isinstance(op["x-roles"], list)
        assert op["responses"], path
        for status, response in op["responses"].items():
            assert re.fullmatch(r"[1-5][0-9][0-9]", status)
            assert response["description"]
            if status.startswith("4"):
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}
        # Path parameters are declared, required, and match the template.
        declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert declared == set(re.findall(r"{([^}]+)}", path))
        assert all(p["required"] for p in op["parameters"] if p["in"] == "path")
        for p in op["parameters"]:
            assert p["in"] in {"path", "query", "header", "cookie"}
            assert "schema" in p


def test_security_matches_roles(doc: dict[str, Any]) -> None:
    for path, _, op in _operations(doc):
        if op["x-roles"]:
            assert op["security"] == [{"bearer": []}, {"apiKey": []}]
            assert {"401", "403"} <= op["responses"].keys()
        else:
            assert path in {"/healthz", "/openapi.json"}
            assert op["security"] == []


def test_parameters_and_bodies(doc: dict[str, Any]) -> None:
    inclusion = doc["paths"]["/v1/ledger/proofs/inclusion"]["get"]
    params = {p["name"]: p for p in inclusion["parameters"]}
    assert params["seq"]["required"] is True and params["size"]["required"] is False
    assert params["seq"]["schema"]["minimum"] == 0
    append = doc["paths"]["/v1/ledger/entries"]["post"]
    body = _resolve(doc, append["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert set(body["properties"]) == {"action", "subject", "details"}
    assert "201" in append["responses"] and {"413", "415", "422"} <= append["responses"].keys()
    checkpoint = doc["paths"]["/v1/ledger/checkpoint"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/plain"} <= checkpoint.keys()


def test_undecorated_routes_still_appear() -> None:
    app = Flask("t")

    @app.get("/plain")
    def plain() -> str:
        """A plain route."""
        return "x"

    doc = build_document(app)
    assert doc["paths"]["/plain"]["get"]["summary"] == "A plain route."


def test_unknown_roles_fail_at_declaration() -> None:
    with pytest.raises(ValueError, match="not roles"):
        operation(summary="x", roles=("auditer",))
    with pytest.raises(ValueError):
        operation(summary="x", roles=())


def test_a_new_blueprint_is_documented_from_its_models() -> None:
    class Echo(BaseModel):
        text: str

    app = Flask("t")

    @app.post("/echo")
    @operation(summary="Echo", roles=PUBLIC, body=Echo, response=Echo)
    def echo(body: Echo) -> Echo:
        return body

    doc = build_document(app)
    op = doc["paths"]["/echo"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Echo")
    assert _resolve(doc, "#/components/schemas/Echo")["required"] == ["text"]
