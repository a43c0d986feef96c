"""The console's blueprint: its headers, its per-request session, and its HTML error pages.

The JSON API answers every error with problem+json; the console is for people, so inside
``/console`` errors are pages (in the reader's language) with the request id to quote, never a
traceback. The blueprint's error handlers take precedence over the app's for its own requests, and
its ``after_request`` sets a CSP that lets the console load its own scripts and styles (the app's
stricter defaults are applied with ``setdefault`` and so leave these alone).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from appliance.errors import UnknownApiKey
from appliance.keys import ApiKey
from appliance.server.console.errors import (
    BadDownloadName,
    BadFormValue,
    ConsoleError,
    CsrfRejected,
    NotSignedIn,
    PageForbidden,
    SessionExpired,
)
from appliance.server.console.i18n import LANGUAGES, negotiate, translator
from appliance.server.console.session import ConsoleSession, SessionStore, console_key
from appliance.server.context import current_node, request_id
from appliance.server.errors import ERRORS, HTTPProblem, Kind

__all__ = [
    "CONSOLE_HEADERS",
    "COOKIE",
    "PAGE_ERRORS",
    "ConsoleState",
    "bp",
    "console_state",
    "current_session",
    "render",
]

log = logging.getLogger("appliance.server.console")

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: The console's own pages may load its own scripts, styles and images, and nothing else: no inline
#: script or style (so an injected tag does nothing), no framing, forms post only back to the node.
CONSOLE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
COOKIE = "appliance_console"
SIGNIN_COOKIE = "appliance_console_signin"
_EXTENSION = "appliance.console"
_STATE_LOCK = threading.Lock()

#: The console's own refusals → status and the catalogue key of the page title.
PAGE_ERRORS: Mapping[type[ConsoleError], tuple[int, str]] = {
    CsrfRejected: (400, "error.csrf"),
    BadDownloadName: (400, "error.download_name"),
    BadFormValue: (400, "error.form_value"),
    PageForbidden: (403, "error.forbidden"),
}


@dataclass
class FailedSignins:
    """How many failed sign-ins this worker recorded in the current minute (the ledger gets a capped
    number; the log gets them all), so a flood of guesses cannot flood the ledger."""

    limit: int
    minute: int = -1
    recorded: int = 0
    suppressed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, now: float) -> tuple[bool, int]:
        """(record this one?, how many went unrecorded in the previous minute)."""
        with self.lock:
            minute = int(now // 60)
            dropped = 0
            if minute != self.minute:
                dropped, self.minute, self.recorded, self.suppressed = self.suppressed, minute, 0, 0
            if self.recorded < self.limit:
                self.recorded += 1
                return True, dropped
            self.suppressed += 1
            return False, dropped


@dataclass
class ConsoleState:
    sessions: SessionStore
    failed: FailedSignins


def console_state() -> ConsoleState:
    """The console's per-app state, made on the first console request (so the JSON API alone never
    creates the console key or the sessions directory)."""
    state: ConsoleState | None = current_app.extensions.get(_EXTENSION)
    if state is None:
        with _STATE_LOCK:
            state = current_app.extensions.get(_EXTENSION)
            if state is None:
                settings = current_node().settings
                data_dir = settings.data_dir
                secret = console_key(data_dir / "keys" / "console.key")
                store = SessionStore(
                    data_dir / "state" / "console-sessions",
                    secret,
                    idle=settings.console.session_minutes * 60,
                    lifetime=settings.console.session_max_hours * 3600,
                )
                store.sweep()
                state = ConsoleState(
                    store, FailedSignins(settings.console.failed_signins_recorded_per_minute)
                )
                current_app.extensions[_EXTENSION] = state
    return state


def current_session() -> ConsoleSession | None:
    session: ConsoleSession | None = g.get("console_session")
    return session


def current_lang() -> str:
    lang: str | None = g.get("console_lang")
    return lang or "en"


def _live_key(key_id: str, role: str) -> ApiKey | None:
    """The session's key if it still opens the door: not revoked, not expired, same role."""
    try:
        key = current_node().keys.get(key_id)
    except UnknownApiKey:
        return None
    if key.revoked or key.expired() or key.role != role:
        return None
    return key


@bp.before_request
def _load_session() -> None:
    settings = current_node().settings.console
    request.max_content_length = settings.max_form_bytes
    request.max_form_memory_size = settings.max_form_bytes
    if request.endpoint == "console.static":
        return
    state = console_state()
    session = None
    try:
        session = state.sessions.load(request.cookies.get(COOKIE))
    except SessionExpired as exc:
        g.console_expired = exc.reason
        g.console_clear_cookie = True
    if session is not None:
        key = _live_key(session.key_id, session.role)
        if key is None:  # revoked (or its role changed) since sign-in: the session ends here
            state.sessions.delete(session)
            g.console_expired = "revoked"
            g.console_clear_cookie = True
            session = None
        else:
            g.api_key = key  # the access log and the ledger name the key, as for the JSON API
    g.console_session = session
    asked = request.args.get("lang")
    g.console_lang = (
        session.lang
        if session is not None
        else asked
        if asked in LANGUAGES
        else negotiate(request.accept_languages)
    )
    if request.method == "POST" and request.endpoint != "console.signin_post":
        if session is None:
            raise SessionExpired(g.get("console_expired", "ended"))
        if not state.sessions.check_csrf(session, request.form.get("csrf")):
            raise CsrfRejected("the form's CSRF token is missing or does not belong to this session")


@bp.after_request
def _headers(response: Response) -> Response:
    """The console's headers, and its cookies: HttpOnly, SameSite=Strict, Secure over TLS, /console only."""
    for name, value in CONSOLE_HEADERS.items():
        response.headers[name] = value
    flags: dict[str, Any] = {
        "path": "/console",
        "secure": request.is_secure,
        "httponly": True,
        "samesite": "Strict",
    }
    if g.get("console_clear_cookie"):
        response.delete_cookie(COOKIE, **flags)
    cookie = g.get("console_set_cookie")
    if cookie is not None:
        response.set_cookie(COOKIE, cookie, **flags)
    nonce = g.get("console_signin_nonce")
    if nonce is not None:
        response.set_cookie(SIGNIN_COOKIE, nonce, **flags)
    if g.get("console_clear_signin"):
        response.delete_cookie(SIGNIN_COOKIE, **flags)
    return response


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    from appliance.server.console.pages import nav_for

    session = current_session()
    return {
        "_": translator(current_lang()),
        "lang": current_lang(),
        "languages": LANGUAGES,
        "session": session,
        "csrf": session.csrf if session is not None else "",
        "nav": nav_for(session.role) if session is not None else [],
        "request_id": request_id(),
    }


@bp.app_template_filter("brief")
def brief(value: Any) -> str:
    """A mapping as ``key=value, ...`` on one line (gate verdicts, job summaries)."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={brief(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(brief(v) for v in value) + "]"
    return str(value)


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render a console page; a one-shot notice left by the previous post is shown once, then dropped."""
    session = current_session()
    notice = None
    if session is not None and session.notice is not None:
        notice = (session.notice_kind, session.notice)
        g.console_session = console_state().sessions.update(session, notice=None, notice_kind="ok")
    return render_template(template, notice=notice, **context), status


def notify(message: str, kind: str = "ok") -> None:
    """Leave ``message`` for the page the browser is redirected to next."""
    session = current_session()
    if session is not None:
        g.console_session = console_state().sessions.update(session, notice=message, notice_kind=kind)


def see_other(url: str) -> Response:
    """303: after a post, the browser GETs the page (post/redirect/get, no resubmission on reload)."""
    return Response("", 303, headers={"Location": url})


# -- errors -------------------------------------------------------------------------------------------
def _signin_redirect(reason: str | None) -> Response:
    from flask import url_for

    args = {}
    if reason:
        args["why"] = reason
    if (
        request.method == "GET"
        and request.path.startswith("/console/")
        and request.endpoint != "console.home"
    ):
        args["next"] = request.full_path.rstrip("?")
    return see_other(url_for("console.signin") + ("?" + urlencode(args) if args else ""))


def _error_page(
    status: int, title_key: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    body, _ = render(
        "console/error.html", status=status, status_code=status, title_key=title_key, detail=detail
    )
    response = Response(body, status, mimetype="text/html")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def domain_kind(exc: BaseException) -> Kind | None:
    for cls in type(exc).__mro__:
        kind = ERRORS.get(cls)
        if kind is not None:
            return kind
    return None


def _handle(exc: Exception) -> Response:
    """One handler for every error inside /console: a page, never problem+json or a traceback."""
    try:
        return _handle_inner(exc)
    except Exception as inner:
        log.error("console error page failed, request_id=%s", request_id(), exc_info=inner)
        return Response(
            f"<!doctype html><title>500</title><p>Internal error. Request id: {request_id()}</p>",
            500,
            mimetype="text/html",
        )


def _handle_inner(exc: Exception) -> Response:
    t = translator(current_lang())
    if isinstance(exc, NotSignedIn):
        reason = exc.reason if isinstance(exc, SessionExpired) else g.get("console_expired")
        return _signin_redirect(reason)
    for cls in type(exc).__mro__:
        if cls in PAGE_ERRORS:
            status, title = PAGE_ERRORS[cls]  # type: ignore[index]
            log.info("console %s %s request_id=%s", status, cls.__name__, request_id())
            return _error_page(status, title, t(f"{title}.detail", detail=str(exc)))
    if isinstance(exc, HTTPProblem):  # raised by app-wide hooks (rate limits, ...)
        log.info("console %s %s request_id=%s", exc.kind.status, exc.kind.slug, request_id())
        return _error_page(exc.kind.status, "error.http", exc.detail, exc.headers)
    if isinstance(exc, HTTPException) and not isinstance(exc, InternalServerError) and exc.code:
        code = exc.code
        log.info("console %s request_id=%s", code, request_id())
        detail = t(f"error.http.{code}") if f"error.http.{code}" in _known_http else (exc.description or "")
        if code == 413:
            detail = t("error.http.413", limit=current_node().settings.console.max_form_bytes)
        headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")}
        return _error_page(code, "error.http", detail, headers)
    original = getattr(exc, "original_exception", None) if isinstance(exc, InternalServerError) else exc
    kind = domain_kind(original) if original is not None else None
    if kind is not None:
        if kind.expose:
            log.info("console %s %s request_id=%s", kind.status, kind.slug, request_id())
            return _error_page(kind.status, "error.refused", str(original))
        log.error("console %s request_id=%s", kind.slug, request_id(), exc_info=original)
        return _error_page(kind.status, "error.unavailable", t("error.unavailable.detail"))
    log.error("console: unexpected error, request_id=%s", request_id(), exc_info=original or exc)
    return _error_page(500, "error.internal", t("error.internal.detail"))


_known_http = {f"error.http.{c}" for c in (400, 404, 405, 413)}

bp.register_error_handler(Exception, _handle)
# The app registers a 500 handler by code, which Flask would prefer to a blueprint's class handler.
bp.register_error_handler(InternalServerError, _handle)


@bp.route("/<path:rest>", methods=["GET", "POST"])
def not_found(rest: str) -> Response:
    """Routing 404s never reach a blueprint's handlers; this catch-all makes them console pages."""
    raise NotFound()


def now() -> float:
    return time.time()
