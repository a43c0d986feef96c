"""Documents about the API itself."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from appliance.server.openapi import PUBLIC, build_document, operation

__all__ = ["bp"]

bp = Blueprint("meta", __name__)

_CACHE = "appliance.openapi"


@bp.get("/openapi.json")
@operation(
    summary="This API's OpenAPI 3.1 document", roles=PUBLIC, media={"application/json": {"type": "object"}}
)
def openapi_json() -> Response:
    """Public, so clients and tooling can discover the API before they hold a key; built once per app."""
    doc = current_app.extensions.get(_CACHE)
    if doc is None:
        doc = current_app.extensions[_CACHE] = build_document(current_app)
    return jsonify(doc)
