"""Signing in and out, the language switch, and the landing page.

Sign-in takes a role's API key once, in a form post, and turns it into a session that remembers
the key's id and role, never the token. The sign-in form has its own CSRF token, bound to a random
cookie the form page sets (there is no session yet to bind it to), so another site cannot sign a
browser in under the attacker's key. Sign-in, sign-out and failed sign-ins are ledger entries.
"""

from __future__ import annotations

import logging
import re
import secrets
from urllib.parse import urlsplit

from flask import Response, g, request, url_for

from appliance.keys import ApiKey, AuthResult
from appliance.server.auth import verify_token
from appliance.server.console.blueprint import (
    SIGNIN_COOKIE,
    bp,
    console_state,
    current_lang,
    current_session,
    now,
    render,
    see_other,
)
from appliance.server.console.errors import BadFormValue, CsrfRejected, NotSignedIn
from appliance.server.console.i18n import LANGUAGES
from appliance.server.console.pages import nav_for
from appliance.server.context import current_node, request_id

__all__ = ["safe_next"]

log = logging.getLogger("appliance.server.console")

_FAILED_ACTOR = "system:console"


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path inside the console (so ``next=`` cannot send anyone elsewhere)."""
    if not value or len(value) > 512 or any(c in value for c in "\\\r\n\t") or "//" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not (parts.path == "/console" or parts.path.startswith("/console/")):
        return None
    if "/.." in parts.path or parts.path.startswith("/console/static/"):
        return None
    return value


def _home() -> str:
    return url_for("console.home")


@bp.get("/")
def home() -> Response | tuple[str, int]:
    """Each role lands on its first page; a role the console has nothing for gets a page saying so."""
    session = current_session()
    if session is None:
        raise NotSignedIn()
    pages = nav_for(session.role)
    if pages:
        return see_other(url_for(pages[0].endpoint))
    return render("console/home.html")


def _signin_page(status: int = 200, error: str | None = None) -> tuple[str, int]:
    nonce = request.cookies.get(SIGNIN_COOKIE)
    if not nonce or not re.fullmatch(r"[A-Za-z0-9_-]{43}", nonce):
        nonce = secrets.token_urlsafe(32)
        g.console_signin_nonce = nonce
    why = request.args.get("why")
    return render(
        "console/signin.html",
        status=status,
        signin_csrf=console_state().sessions.signin_token(nonce),
        why=why if why in ("expired", "ended", "revoked", "signed_out") else None,
        next=safe_next(request.values.get("next")),
        error=error,
    )


@bp.get("/signin")
def signin() -> Response | tuple[str, int]:
    if current_session() is not None:
        return see_other(_home())
    return _signin_page()


@bp.post("/signin")
def signin_post() -> Response | tuple[str, int]:
    state = console_state()
    if not state.sessions.check_signin_token(request.cookies.get(SIGNIN_COOKIE), request.form.get("csrf")):
        raise CsrfRejected("the sign-in form's CSRF token is missing or stale; reload the sign-in page")
    token = (request.form.get("api_key") or "").strip()
    key = _authenticate(token)
    if key is None:
        return _signin_page(401, "signin.failed")
    node = current_node()
    lang = request.form.get("lang")
    lang = lang if lang in LANGUAGES else current_lang()
    old = current_session()
    if old is not None:  # a new id on every sign-in: no session fixation
        state.sessions.delete(old)
    cookie, session = state.sessions.create(key.key_id, key.role, lang, now=now())
    try:
        node.record(
            key.actor,
            "console.signin",
            details={"key_id": key.key_id, "role": key.role},
            request_id=request_id(),
        )
    except BaseException:
        state.sessions.delete(session)  # no session without its ledger entry
        raise
    g.api_key = key
    g.console_session = session
    g.console_set_cookie = cookie
    g.console_clear_cookie = False
    log.info("console sign-in key=%s role=%s request_id=%s", key.key_id, key.role, request_id())
    g.console_clear_signin = True
    return see_other(safe_next(request.form.get("next")) or _home())


def _authenticate(token: str) -> ApiKey | None:
    """The key of a sign-in, throttled and recorded like the JSON API's authentication.

    The API's per-source guard is shared with it, so the form is no easier to guess keys through.
    """
    result = verify_token(token, None if token else AuthResult(None, "missing"), attempts="sign-ins")
    if result.key is None:
        _record_failure(result, request.remote_addr or "-")
    return result.key


def _record_failure(result: AuthResult, source: str) -> None:
    """A ``console.signin_failed`` entry for the first N failures per minute (never the token)."""
    admit, dropped = console_state().failed.admit(now())
    if not admit:
        return
    details: dict[str, object] = {"key_id": result.key_id, "reason": result.reason, "source": source}
    if dropped:
        details["unrecorded_previous_minute"] = dropped
    current_node().record(_FAILED_ACTOR, "console.signin_failed", details=details, request_id=request_id())


@bp.post("/signout")
def signout() -> Response:
    session = current_session()
    if session is None:  # the before_request hook redirects first; kept for clarity
        raise NotSignedIn()
    key = g.api_key
    current_node().record(
        key.actor,
        "console.signout",
        details={"key_id": key.key_id, "role": key.role},
        request_id=request_id(),
    )
    console_state().sessions.delete(session)
    g.console_session = None
    g.console_clear_cookie = True
    log.info("console sign-out key=%s request_id=%s", key.key_id, request_id())
    return see_other(url_for("console.signin", why="signed_out"))


@bp.post("/language")
def language() -> Response:
    session = current_session()
    if session is None:
        raise NotSignedIn()
    lang = request.form.get("lang")
    if lang not in LANGUAGES:
        raise BadFormValue(f"lang must be one of {', '.join(LANGUAGES)}")
    g.console_session = console_state().sessions.update(session, lang=lang)
    g.console_lang = lang
    return see_other(safe_next(request.form.get("next")) or _home())
