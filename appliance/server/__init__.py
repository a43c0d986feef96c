"""The HTTP layer: a Flask app factory over one :class:`~appliance.node.Node`.

Only this package imports Flask. It authenticates, validates and maps errors;
everything it does is a call on the node, so the node stays usable from Python
(and the CLI) without it. Under gunicorn each worker calls :func:`create_app`
and opens its own node; tests pass their own settings and node.
"""

from __future__ import annotations

import atexit

from flask import Flask, Response

from appliance.node import Node
from appliance.server.auth import init_auth
from appliance.server.bodylimit import init_body_limit
from appliance.server.context import EXTENSION, init_request_context
from appliance.server.errors import register_error_handlers
from appliance.server.routes import BLUEPRINTS
from appliance.settings import Settings, load_settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, node: Node | None = None) -> Flask:
    """Build the app; opens (and at exit closes) a node only if none is given: a given one is the caller's."""
    if settings is None:
        settings = node.settings if node is not None else load_settings()
    owned = node is None
    if node is None:
        node = Node.open(settings)
        atexit.register(node.close)
    app = Flask("appliance.server")
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.extensions[EXTENSION] = node
    app.extensions["appliance.owns_node"] = owned
    init_request_context(app)
    init_auth(app, settings)
    init_body_limit(app)
    app.after_request(_security_headers)
    register_error_handlers(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    # The web console (HTML, its own CSP and session); imported here so the JSON API alone needs no Jinja.
    from appliance.server.console import bp as console

    app.register_blueprint(console)
    return app


#: Every answer is JSON (or problem+json) for programs: nothing in it may run, frame or be sniffed as
#: something else, and no cache in between may keep customer data.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


_SECURITY_HEADERS = [(name.lower(), name, value) for name, value in SECURITY_HEADERS.items()]


def _security_headers(response: Response) -> Response:
    """Add the headers a view did not set itself (the console sets its own CSP), in one pass."""
    present = {name.lower() for name in response.headers.keys()}
    response.headers.extend([(name, value) for low, name, value in _SECURITY_HEADERS if low not in present])
    return response
