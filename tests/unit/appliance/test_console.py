"""The web console's front door: sign-in and sessions, CSRF, expiry, revocation, language, headers,
and how bad input looks (pages with a 4xx, never problem+json or a traceback).

Also home of :class:`Browser`, the signed-in test client the other console tests import.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from appliance.keys import ROLES

if TYPE_CHECKING:
    from conftest import ServerEnv
    from flask import Flask
    from werkzeug.test import TestResponse

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


# -- helpers (imported by test_console_pages.py) ---------------------------------------------------------
def csrf_of(resp: TestResponse) -> str:
    m = _CSRF.search(resp.get_data(as_text=True))
    assert m is not None, "the page has no form with a CSRF token"
    return m[1]


class Browser:
    """One browser: its own cookie jar, signed in (or not) with one API key."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()
        self.csrf = ""

    def signin(self, token: str, *, lang: str | None = None, next: str | None = None) -> TestResponse:
        page = self.client.get("/console/signin" + (f"?lang={lang}" if lang else ""))
        assert page.status_code == 200, page.get_data(as_text=True)
        data = {"csrf": csrf_of(page), "api_key": token}
        if lang:
            data["lang"] = lang
        if next:
            data["next"] = next
        resp = self.client.post("/console/signin", data=data)
        if resp.status_code == 303:
            home = self.client.get("/console/", follow_redirects=True)
            assert home.status_code == 200, home.get_data(as_text=True)
            self.csrf = csrf_of(home)
        return resp

    def get(self, url: str, **kw: Any) -> TestResponse:
        return self.client.get(url, **kw)

    def post(self, url: str, data: dict[str, str] | None = None, **kw: Any) -> TestResponse:
        return self.client.post(url, data={"csrf": self.csrf, **(data or {})}, **kw)


def assert_page(resp: TestResponse, status: int) -> str:
    """An HTML console page with ``status``: never problem+json, never a traceback."""
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, text[:3000]
    assert resp.mimetype == "text/html", resp.mimetype
    assert "Traceback" not in text
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
    return text


def session_files(env: ServerEnv) -> list[Path]:
    return sorted((env.settings.data_dir / "state" / "console-sessions").glob("*.json"))


def age_sessions(env: ServerEnv, *, idle: float = 0.0, since_signin: float = 0.0) -> None:
    """Pretend every session was last used ``idle`` seconds ago and began ``since_signin`` ago."""
    for path in session_files(env):
        record = json.loads(path.read_text())
        record["last_seen"] -= idle
        record["created"] -= since_signin
        path.write_text(json.dumps(record))


def entries(env: ServerEnv, action: str) -> list[dict[str, Any]]:
    ledger = env.node.ledger
    ledger.refresh()
    out = []
    for seq in range(ledger.size):
        e = ledger.entry(seq)
        if e.action == action:
            out.append(e.as_dict())
    return out


def signed_in(env: ServerEnv, role: str, **kw: Any) -> Browser:
    b = Browser(env.app)
    resp = b.signin(env.tokens[role], **kw)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return b


# -- sign-in -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_every_role_signs_in_and_the_session_names_its_key_not_its_token(env: ServerEnv, role: str) -> None:
    b = Browser(env.app)
    resp = b.signin(env.tokens[role])
    assert resp.status_code == 303
    cookie = resp.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookie if c.startswith("appliance_console="))
    assert (
        "HttpOnly" in session_cookie
        and "SameSite=Strict" in session_cookie
        and "Path=/console" in session_cookie
    )
    assert "Secure" not in session_cookie  # plain HTTP in the test client; Secure over TLS (below)
    key = env.node.keys.authenticate(env.tokens[role])
    assert key is not None
    (path,) = session_files(env)
    stored = path.read_text()
    assert env.tokens[role] not in stored and env.tokens[role].split("_", 2)[2] not in stored
    record = json.loads(stored)
    assert record["key_id"] == key.key_id and record["role"] == role
    assert path.stat().st_mode & 0o077 == 0
    (signin,) = entries(env, "console.signin")
    assert signin["actor"] == key.actor and signin["details"] == {"key_id": key.key_id, "role": role}
    home = b.get("/console/", follow_redirects=True)
    text = assert_page(home, 200)
    assert f'data-role="{role}"' in text


def test_session_cookie_is_secure_over_tls(env: ServerEnv) -> None:
    client = env.app.test_client()
    page = client.get("/console/signin", base_url="https://localhost")
    resp = client.post(
        "/console/signin",
        data={"csrf": csrf_of(page), "api_key": env.tokens["auditor"]},
        base_url="https://localhost",
    )
    assert resp.status_code == 303
    session_cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("appliance_console="))
    assert "Secure" in session_cookie


@pytest.mark.parametrize(
    "token",
    ["", "nope", "apl_000000000000_notarealkeynotarealkeynotarealkey", "x" * 300],
    ids=["empty", "malformed", "unknown", "huge"],
)
def test_a_wrong_key_is_refused_logged_and_recorded_without_the_token(
    env: ServerEnv, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    b = Browser(env.app)
    resp = b.signin(token)
    text = assert_page(resp, 401)
    assert "unknown, malformed or revoked" in text
    assert "appliance_console=" not in "".join(resp.headers.getlist("Set-Cookie"))
    assert session_files(env) == []
    (failed,) = entries(env, "console.signin_failed")
    assert failed["actor"] == "system:console"
    assert failed["details"]["reason"] in ("missing", "malformed", "unknown")
    if token.startswith("apl_0"):
        assert failed["details"]["key_id"] is None  # no such key: nothing to attribute
    raw = json.dumps(failed)
    if token:
        assert token not in raw and token not in caplog.text


def test_a_revoked_key_cannot_sign_in(env: ServerEnv) -> None:
    key, token = env.node.keys.issue("auditor", label="to revoke")
    env.node.keys.revoke(key.key_id)
    resp = Browser(env.app).signin(token)
    assert_page(resp, 401)
    (failed,) = entries(env, "console.signin_failed")
    assert failed["details"]["key_id"] == key.key_id and failed["details"]["reason"] == "revoked"


def test_failed_signins_in_the_ledger_are_capped_per_minute(env: ServerEnv) -> None:
    from appliance.server.console.blueprint import console_state

    with env.app.test_request_context("/console/signin"):
        limit = console_state().failed.limit
    b = Browser(env.app)
    for _ in range(limit + 5):
        page = b.get("/console/signin")
        b.client.post("/console/signin", data={"csrf": csrf_of(page), "api_key": "nope"})
    assert len(entries(env, "console.signin_failed")) == limit


def test_guessing_keys_through_the_form_is_throttled_like_the_api(env: ServerEnv) -> None:
    """The sign-in form shares the API's per-source limit on failed attempts: past it, a 429 page."""
    b = Browser(env.app)
    burst = env.settings.server.failed_auth_burst
    statuses = []
    for i in range(burst + 3):
        page = b.get("/console/signin")
        resp = b.client.post(
            "/console/signin",
            data={"csrf": csrf_of(page), "api_key": f"apl_{i:012x}_guessguessguessguessguess"},
        )
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            assert int(resp.headers["Retry-After"]) >= 1
            assert "too many failed sign-ins" in assert_page(resp, 429)
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
    # The API refuses that source too: one limit, whichever door is knocked on.
    env.problem(
        env.client.get(
            "/v1/ledger/checkpoint",
            headers={"Authorization": "Bearer apl_000000000001_nopenopenopenopenopenope"},
        ),
        429,
        "too-many-failed-authentications",
    )


def test_signin_without_its_csrf_token_is_refused(env: ServerEnv) -> None:
    client = env.app.test_client()
    resp = client.post("/console/signin", data={"api_key": env.tokens["admin"]})
    text = assert_page(resp, 400)
    assert "CSRF" in text
    page = client.get("/console/signin")
    forged = csrf_of(page)[:-2] + "xx"
    assert_page(client.post("/console/signin", data={"csrf": forged, "api_key": env.tokens["admin"]}), 400)
    other = env.app.test_client()  # a token from another browser's sign-in page does not fit this one
    other_token = csrf_of(other.get("/console/signin"))
    assert_page(
        client.post("/console/signin", data={"csrf": other_token, "api_key": env.tokens["admin"]}), 400
    )
    assert session_files(env) == [] and entries(env, "console.signin") == []


@pytest.mark.parametrize(
    ("next_url", "lands"),
    [
        ("/console/compliance", "/console/compliance"),
        ("https://evil.example/console/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/console/../v1/ledger/checkpoint", "/console/"),
        ("/v1/ledger/checkpoint", "/console/"),
    ],
)
def test_next_only_leads_inside_the_console(env: ServerEnv, next_url: str, lands: str) -> None:
    resp = Browser(env.app).signin(env.tokens["admin"], next=next_url)
    assert resp.status_code == 303
    assert resp.headers["Location"] == lands


def test_a_page_asked_for_without_a_session_redirects_to_signin_and_back(env: ServerEnv) -> None:
    b = Browser(env.app)
    resp = b.get("/console/audit?action=apikey.created&search=1")
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/console/signin?")
    assert "next=%2Fconsole%2Faudit" in resp.headers["Location"]
    page = b.get(resp.headers["Location"])
    text = assert_page(page, 200)
    assert 'name="next" value="/console/audit?action=apikey.created&amp;search=1"' in text


def test_signout_ends_the_session_everywhere_and_is_recorded(env: ServerEnv) -> None:
    b = signed_in(env, "auditor")
    cookie = b.client.get_cookie("appliance_console", path="/console")
    assert cookie is not None
    resp = b.post("/console/signout")
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/signin?why=signed_out"
    assert session_files(env) == []
    key = env.node.keys.authenticate(env.tokens["auditor"])
    assert key is not None
    (out,) = entries(env, "console.signout")
    assert out["actor"] == key.actor and out["details"] == {"key_id": key.key_id, "role": "auditor"}
    # The old cookie, replayed from elsewhere, opens nothing.
    thief = env.app.test_client()
    thief.set_cookie("appliance_console", cookie.value, path="/console")
    resp = thief.get("/console/audit")
    assert resp.status_code == 303 and "why=ended" in resp.headers["Location"]


def test_a_forged_session_cookie_is_ignored(env: ServerEnv) -> None:
    b = signed_in(env, "auditor")
    cookie = b.client.get_cookie("appliance_console", path="/console")
    assert cookie is not None
    sid, mac = cookie.value.split(".")
    other = "B" if sid[-1] == "A" else "A"
    for forged in (f"{sid}.{'0' * 64}", f"{sid[:-1]}{other}.{mac}", "garbage", ""):
        c = env.app.test_client()
        c.set_cookie("appliance_console", forged, path="/console")
        resp = c.get("/console/audit")
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/console/signin")


# -- expiry and revocation ----------------------------------------------------------------------------------
def test_an_idle_session_expires(env: ServerEnv) -> None:
    b = signed_in(env, "auditor")
    minutes = env.settings.console.session_minutes
    age_sessions(env, idle=minutes * 60 - 30)
    assert b.get("/console/audit").status_code == 200  # not yet; and this request renews it
    age_sessions(env, idle=minutes * 60 + 1)
    resp = b.get("/console/audit")
    assert resp.status_code == 303 and "why=expired" in resp.headers["Location"]
    assert session_files(env) == []
    text = assert_page(b.get(resp.headers["Location"]), 200)
    assert "Your session expired" in text


def test_an_active_session_still_ends_at_its_absolute_lifetime(env: ServerEnv) -> None:
    b = signed_in(env, "auditor")
    age_sessions(env, since_signin=env.settings.console.session_max_hours * 3600 + 1)
    resp = b.get("/console/audit")
    assert resp.status_code == 303 and "why=expired" in resp.headers["Location"]


def test_a_post_with_an_expired_session_goes_to_signin_and_changes_nothing(env: ServerEnv) -> None:
    b = signed_in(env, "admin")
    before = len(env.node.keys.list())
    age_sessions(env, idle=env.settings.console.session_minutes * 60 + 1)
    resp = b.post("/console/admin/keys", {"role": "auditor", "label": "late"})
    assert resp.status_code == 303 and "why=expired" in resp.headers["Location"]
    assert len(env.node.keys.list()) == before


def test_revoking_the_key_ends_its_session_on_the_next_request(env: ServerEnv) -> None:
    key, token = env.node.keys.issue("auditor", label="short-lived")
    b = Browser(env.app)
    assert b.signin(token).status_code == 303
    assert b.get("/console/audit").status_code == 200
    env.node.keys.revoke(key.key_id)  # from the CLI, say: not through the console
    resp = b.get("/console/audit")
    assert resp.status_code == 303 and "why=revoked" in resp.headers["Location"]
    assert session_files(env) == []


# -- CSRF on every post ------------------------------------------------------------------------------------
POSTS = [
    "/console/signout",
    "/console/language",
    "/console/admin/keys",
    "/console/admin/jobs/ledger.checkpoint/run",
]


@pytest.mark.parametrize("url", POSTS)
@pytest.mark.parametrize("token", [None, "", "forged-token"], ids=["missing", "empty", "forged"])
def test_posts_without_the_sessions_csrf_token_are_refused(
    env: ServerEnv, url: str, token: str | None
) -> None:
    b = signed_in(env, "admin")
    keys_before = len(env.node.keys.list())
    size = env.node.ledger.refresh()
    data = {"role": "auditor", "lang": "zh"}
    if token is not None:
        data["csrf"] = token
    text = assert_page(b.client.post(url, data=data), 400)
    assert "CSRF" in text
    assert len(env.node.keys.list()) == keys_before
    assert env.node.ledger.refresh() == size  # nothing recorded, nothing done
    assert len(session_files(env)) == 1  # still signed in


def test_another_sessions_csrf_token_does_not_fit(env: ServerEnv) -> None:
    mine, theirs = signed_in(env, "admin"), signed_in(env, "admin")
    assert mine.csrf != theirs.csrf
    resp = mine.client.post("/console/admin/keys", data={"csrf": theirs.csrf, "role": "auditor"})
    assert_page(resp, 400)


# -- language ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("accept", "expect"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "登录"),
        ("zh-TW", "登录"),
        ("en-US,en;q=0.5", "Sign in"),
        ("de", "Sign in"),
    ],
)
def test_the_signin_page_follows_accept_language(env: ServerEnv, accept: str, expect: str) -> None:
    text = assert_page(env.app.test_client().get("/console/signin", headers={"Accept-Language": accept}), 200)
    assert f"<h1>{expect}</h1>" in text


def test_lang_parameter_overrides_accept_language_and_carries_into_the_session(env: ServerEnv) -> None:
    b = Browser(env.app)
    page = b.get("/console/signin?lang=zh", headers={"Accept-Language": "en"})
    assert "<h1>登录</h1>" in assert_page(page, 200)
    assert b.signin(env.tokens["auditor"], lang="zh").status_code == 303
    text = assert_page(b.get("/console/audit", headers={"Accept-Language": "en"}), 200)
    assert "审计账本" in text and '<html lang="zh-CN">' in text


def test_the_language_switch_is_kept_in_the_session(env: ServerEnv) -> None:
    b = signed_in(env, "auditor")
    assert "Audit ledger" in assert_page(b.get("/console/audit"), 200)
    resp = b.post("/console/language", {"lang": "zh", "next": "/console/audit"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/audit"
    assert "审计账本" in assert_page(b.get("/console/audit", headers={"Accept-Language": "en"}), 200)
    assert json.loads(session_files(env)[0].read_text())["lang"] == "zh"
    assert_page(b.post("/console/language", {"lang": "fr"}), 400)
    b.post("/console/language", {"lang": "en"})
    assert "Audit ledger" in assert_page(b.get("/console/audit"), 200)


def test_both_catalogues_have_every_message_the_templates_use() -> None:
    from appliance.server.console.i18n import MESSAGES
    from appliance.server.console.pages import NAV

    en, zh = MESSAGES["en"], MESSAGES["zh"]
    assert en.keys() == zh.keys()
    assert all(v.strip() for v in [*en.values(), *zh.values()])
    templates = Path(__file__).resolve().parents[3] / "appliance/server/console/templates/console"
    used = set()
    for t in templates.glob("*.html"):
        used |= set(re.findall(r"""_\(["']([a-z0-9_.]+)["']""", t.read_text()))
    prefixes = {k for k in used if k.endswith(".") or k.endswith("_")}
    assert not (used - prefixes) - en.keys()
    for prefix in prefixes:  # keys completed at render time ("role." ~ role) exist for some value
        assert any(k.startswith(prefix) for k in en), prefix
    assert {f"role.{r}" for r in ROLES} <= en.keys()
    assert set(NAV) <= en.keys()
    # Placeholders agree, so a translation never drops or invents a value.
    fields = re.compile(r"\{(\w+)\}")
    for k in en:
        assert set(fields.findall(en[k])) == set(fields.findall(zh[k])), k


# -- headers, static files, errors --------------------------------------------------------------------------
def test_console_pages_carry_their_own_csp_and_the_api_keeps_its_stricter_one(env: ServerEnv) -> None:
    from appliance.server import SECURITY_HEADERS
    from appliance.server.console import CONSOLE_HEADERS

    b = signed_in(env, "auditor")
    for url in ("/console/signin", "/console/audit", "/console/static/js/proof.js", "/console/nothing-here"):
        resp = b.get(url)
        resp.close()  # static files are streamed from an open file
        for name, value in CONSOLE_HEADERS.items():
            assert resp.headers[name] == value, (url, name)
    csp = CONSOLE_HEADERS["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "frame-ancestors 'none'" in csp
    api = env.client.get("/v1/ledger/checkpoint", headers=env.auth("auditor"))
    assert api.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'none'" in api.headers["Content-Security-Policy"]


def test_templates_have_no_inline_script_or_style() -> None:
    templates = Path(__file__).resolve().parents[3] / "appliance/server/console/templates/console"
    for t in templates.glob("*.html"):
        text = t.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), t.name
        assert "<style" not in text and " style=" not in text, t.name
        assert not re.search(r"\son[a-z]+=", text), t.name  # no onclick= and the like


def test_static_files_are_served_and_missing_ones_are_a_404_page(env: ServerEnv) -> None:
    client = env.app.test_client()
    js = client.get("/console/static/vendor/chart.umd.min.js")
    js.close()
    assert js.status_code == 200 and js.mimetype in ("text/javascript", "application/javascript")
    assert_page(client.get("/console/static/js/nothing.js"), 404)
    assert_page(client.get("/console/static/../templates/console/base.html"), 404)


def test_the_vendored_chart_library_is_the_recorded_one() -> None:
    import hashlib

    vendor = Path(__file__).resolve().parents[3] / "appliance/server/console/static/vendor"
    digest = hashlib.sha256((vendor / "chart.umd.min.js").read_bytes()).hexdigest()
    readme = (vendor / "README.md").read_text()
    assert digest in readme and "4.6.1" in readme and "MIT" in readme
    assert (vendor / "LICENSE-chart.js.md").read_text().startswith("The MIT License")


def test_unknown_pages_are_a_404_page_signed_in_or_not(env: ServerEnv) -> None:
    assert_page(env.app.test_client().get("/console/no/such/page"), 404)
    b = signed_in(env, "auditor", lang="zh")
    text = assert_page(b.get("/console/no/such/page"), 404)
    assert "控制台中没有这个页面" in text
    assert_page(b.get("/console/audit/entries/999999"), 404)
    # The JSON API's own 404s stay problem+json.
    env.problem(env.client.get("/v1/no-such"), 404, "not-found")


def test_an_oversized_form_is_a_413_page(env: ServerEnv) -> None:
    b = signed_in(env, "analyst")
    limit = env.settings.console.max_form_bytes
    size = env.node.ledger.refresh()
    text = assert_page(b.post("/console/queries", {"sql": "x" * (limit + 10)}), 413)
    assert str(limit) in text
    assert env.node.ledger.refresh() == size


def test_an_unexpected_error_is_a_500_page_with_the_request_id(
    env: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.server.console import views_admin

    def broken(*args: Any, **kwargs: Any) -> list[Any]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views_admin, "run_checks", broken)
    b = signed_in(env, "admin")
    resp = b.get("/console/admin/health")
    text = assert_page(resp, 500)
    assert "secret internals" not in text and resp.headers["X-Request-Id"] in text


def test_console_routes_are_not_in_the_api_document(env: ServerEnv) -> None:
    doc = env.client.get("/openapi.json").get_json()
    assert not [p for p in doc["paths"] if p.startswith("/console")]


def test_sessions_of_others_are_swept_when_they_time_out(env: ServerEnv) -> None:
    from appliance.server.console.session import SessionStore

    signed_in(env, "auditor")
    signed_in(env, "ops")
    assert len(session_files(env)) == 2
    store = SessionStore(session_files(env)[0].parent, b"k" * 32, idle=60, lifetime=3600)
    assert store.sweep(now=time.time()) == 0
    assert store.sweep(now=time.time() + 61) == 2
    assert session_files(env) == []
