"""Route declarations that both enforce and document: roles, parameters, bodies, responses.

:func:`operation` wraps a view so that what the OpenAPI document says is what
the server does: the roles it lists are the roles it checks, the models that
describe parameters and bodies are the ones that validate them, and a view
returning a response model is serialised through it. :func:`build_document`
walks ``app.url_map``, so a route cannot be served without being described.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Flask, Response, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from appliance.server.auth import authorize, check_roles
from appliance.server.bodylimit import MAX_JSON_DEPTH, json_too_deep
from appliance.server.errors import PROBLEM_MEDIA_TYPE, HTTPProblem, Problem

__all__ = ["PUBLIC", "Operation", "build_document", "operation"]

#: ``roles=PUBLIC``: no API key needed. Spelled out so that reviewers notice.
PUBLIC = None
_REF = "#/components/schemas/{model}"
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
#: Where a value failed validation → (status, slug, title) of the problem.
_INVALID = {
    "path": (400, "invalid-parameter", "Invalid parameter"),
    "query": (400, "invalid-parameter", "Invalid parameter"),
    "body": (422, "invalid-body", "Invalid body"),
}


@dataclass(frozen=True)
class Operation:
    summary: str
    roles: tuple[str, ...] | None
    path: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    media: Mapping[str, Any] = field(default_factory=dict)  # other response media types → schema
    problems: Mapping[int, str] = field(default_factory=dict)  # statuses of the view's own domain errors


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": [where, *e["loc"]], "msg": e["msg"]} for e in exc.errors(include_input=False)]
        raise HTTPProblem(*_INVALID[where], f"the {where} does not fit the schema", errors=errors) from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_body() -> Any:
    if not request.is_json:
        detail = "send the body as JSON with 'Content-Type: application/json'"
        raise HTTPProblem(415, "unsupported-media-type", "Unsupported media type", detail)
    body = request.get_data(cache=True)
    if json_too_deep(body):
        detail = f"the body nests arrays/objects deeper than {MAX_JSON_DEPTH} levels"
        raise HTTPProblem(400, "invalid-json", "Invalid JSON", detail)
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise HTTPProblem(400, "invalid-json", "Invalid JSON", "the body is not valid JSON") from None


def _query() -> dict[str, str]:
    repeated = [k for k in request.args if len(request.args.getlist(k)) > 1]
    if repeated:
        errors = [{"loc": ["query", k], "msg": "given more than once"} for k in repeated]
        raise HTTPProblem(*_INVALID["query"], "a query parameter is repeated", errors=errors)
    return request.args.to_dict()


def operation(
    *,
    summary: str,
    roles: Sequence[str] | None,
    path: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    media: Mapping[str, Any] | None = None,
    problems: Mapping[int, str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view: checks roles, then validates and passes ``path=``, ``query=``, ``body=`` models."""
    checked = None if roles is None else check_roles(roles)
    op = Operation(
        summary, checked, path, query, body, response, status, dict(media or {}), dict(problems or {})
    )

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def view(**url_args: str) -> Any:
            if op.roles is not None:
                authorize(op.roles)
            # In this order: the path names the resource, the body is read last (it may be large).
            sources = {"path": lambda: url_args, "query": _query, "body": _json_body}
            models = {"path": op.path, "query": op.query, "body": op.body}
            kwargs = {k: _validate(m, sources[k](), k) for k, m in models.items() if m is not None}
            result = fn(**kwargs) if op.path is not None else fn(**url_args, **kwargs)
            if isinstance(result, BaseModel):
                # pydantic's own serializer, straight to bytes: the same JSON as model_dump(mode="json")
                # through the json module, at a fraction of the cost on the hot read paths.
                return Response(result.model_dump_json(), op.status, mimetype="application/json")
            return result

        view.openapi = op  # type: ignore[attr-defined]
        return view

    return decorate


def _version() -> str:
    try:
        return version("appliance")
    except PackageNotFoundError:
        return "0"


def _problems(op: Operation) -> dict[int, str]:
    codes = {503: "Ledger or storage unavailable"}
    # Domain errors reach the client through the one table in errors.py, whichever view raised them, so
    # every operation lists the statuses that table and werkzeug use; more specific texts follow.
    codes |= {
        400: "Invalid request",
        404: "Not found",
        409: "Conflicts with the node's current state",
        413: "Body too large",
        422: "Request refused",
    }
    if op.roles is not None:
        codes |= {401: "Missing, unknown or revoked API key", 403: "Role not allowed"}
        codes |= {429: "Over the key's rate limit, or too many failed authentications (see Retry-After)"}
    if op.path is not None or op.query is not None:
        codes |= {400: "Invalid parameter", 404: "Not found or not in the log"}
    if op.body is not None:
        codes |= {400: "Invalid JSON", 413: "Body too large", 415: "Body is not JSON", 422: "Invalid body"}
    return codes | dict(op.problems)


#: Endpoints (or blueprints, before the dot) that are not the API: Flask's static files, the HTML console.
_UNDOCUMENTED = frozenset({"static", "console"})


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in ``app`` (routes without :func:`operation` get a stub).

    The web console's pages (``console.*``, HTML for people) are not part of the API it documents.
    """
    documented = (r for r in app.url_map.iter_rules() if r.endpoint.partition(".")[0] not in _UNDOCUMENTED)
    rules = sorted(documented, key=lambda r: r.rule)
    ops = {r.endpoint: getattr(app.view_functions[r.endpoint], "openapi", None) for r in rules}
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(Problem, "serialization")}
    for op in filter(None, ops.values()):
        wanted |= {(m, "validation") for m in (op.path, op.query, op.body) if m is not None}
        wanted |= {(op.response, "serialization")} if op.response is not None else set()
    refs, defs = models_json_schema(sorted(wanted, key=lambda w: (w[0].__name__, w[1])), ref_template=_REF)
    schemas = defs.get("$defs", {})

    def params(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
        if model is None:
            return []
        schema = schemas[refs[(model, "validation")]["$ref"].rsplit("/", 1)[1]]
        required = set(schema.get("required", ()))
        return [
            {
                "name": name,
                "in": where,
                "required": where == "path" or name in required,
                "schema": {k: v for k, v in prop.items() if k != "description"},
                "description": prop.get("description", ""),
            }
            for name, prop in schema["properties"].items()
        ]

    problem = {PROBLEM_MEDIA_TYPE: {"schema": refs[(Problem, "serialization")]}}
    paths: dict[str, dict[str, Any]] = {}
    for rule in rules:
        op = ops[rule.endpoint] or Operation((app.view_functions[rule.endpoint].__doc__ or "").strip(), None)
        url = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            content = (
                {"application/json": {"schema": refs[(op.response, "serialization")]}} if op.response else {}
            )
            content |= {media: {"schema": schema} for media, schema in op.media.items()}
            entry: dict[str, Any] = {
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "summary": op.summary,
                "x-roles": list(op.roles or ()),
                "security": _SECURITY if op.roles is not None else [],
                "parameters": params(op.path, "path") + params(op.query, "query"),
                "responses": {
                    str(op.status): {"description": op.summary, **({"content": content} if content else {})}
                }
                | {str(c): {"description": d, "content": problem} for c, d in sorted(_problems(op).items())},
            }
            if op.body is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
                }
            paths.setdefault(url, {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Appliance API",
            "version": _version(),
            "description": "Errors are application/problem+json (RFC 9457); x-roles lists who may call.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key as a bearer token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
