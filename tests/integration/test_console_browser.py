"""The web console in a real browser: Debian's chromium, driven by Playwright, against a real server.

The server is the app on werkzeug's threaded server in this process (127.0.0.1, a free port) over a
real node; the browser runs headless with ``--no-sandbox --disable-background-networking``. These
tests prove what only a browser can: the CSP lets the console's own scripts run and nothing breaks
under it, the charts draw, and the inclusion proof is checked by the page's JavaScript with
WebCrypto: "verified" for the real proof, "FAILED" when the proof or the entry it is given is
tampered with on the way.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")


@dataclass
class Live:
    base: str
    tokens: dict[str, str]
    node: Any
    data_dir: Path
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A node with some of everything (customers, HE keys, a trigger, reply checks), served on a port."""
    from werkzeug.serving import make_server

    from appliance.node import Node
    from appliance.server import create_app
    from appliance.settings import load_settings
    from appliance.store.demo import load_demo

    data = tmp_path_factory.mktemp("console") / "node"
    settings = load_settings(node={"data_dir": data})
    tokens = dict(Node.init(settings).api_keys)
    node = Node.open(settings)
    load_demo(node.store, 200, seed=5)
    node.privacy.keygen(actor="custodian:test")
    node.privacy.encrypt("customers", "balance", actor="admin:test")
    node.store.proactive.insert_triggers(
        [
            {
                "run_id": "1" * 16,
                "playbook": "tire_pressure_service",
                "customer_id": cid,
                "score": 0.9 - cid / 100,
                "rank": cid,
                "treated": 1,
                "status": "pending",
                "suppressed_by": None,
                "reasons": {"gates": [], "model": [{"feature": "days_since_service", "contribution": 0.3}]},
                "model_version": None,
                "channel": "sms",
                "created": datetime.now(UTC),
                "not_before": None,
            }
            for cid in (1, 2, 3)
        ]
    )
    evaluator = node.policy.evaluator()
    for text, region in (
        ("本产品保本保息", "CN"),
        ("您好，请问有什么可以帮您", "CN"),
        ("Risk-free returns!", "US"),
    ):
        result = evaluator.check_reply(text, region=region, industry="finance", channel="chat")
        node.record_reply_check("agent:test", text, result, region=region, industry="finance", channel="chat")
    app = create_app(settings, node)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", tokens, node, data)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        node.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking"],
            headless=True,
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    """A fresh browser context (no cookies) that fails the test on any script error or CSP violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    pg.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    pg.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    yield pg
    context.close()
    assert not problems, problems


def signin(page: Any, live: Live, role: str) -> None:
    page.goto(live.base + "/console/signin")
    page.fill("#api_key", live.tokens[role])
    page.click("#signin")
    page.wait_for_selector("#whoami")
    assert page.get_attribute("#whoami", "data-role") == role


# -- sign-in ----------------------------------------------------------------------------------------------
def test_signin_with_a_wrong_key_then_the_right_one_then_signout(page: Any, live: Live) -> None:
    page.goto(live.base + "/console/audit")
    assert "/console/signin" in page.url  # redirected, with the page to come back to
    page.fill("#api_key", "apl_000000000000_not-a-real-key-not-a-real-key-xx")
    page.click("#signin")
    assert page.is_visible("#signin-error")
    page.fill("#api_key", live.tokens["auditor"])
    page.click("#signin")
    page.wait_for_url("**/console/audit")
    assert page.get_attribute("#whoami", "data-role") == "auditor"
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["appliance_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/console"
    assert live.tokens["auditor"] not in session["value"]
    page.click("#signout")
    page.wait_for_url("**/console/signin?why=signed_out")
    page.goto(live.base + "/console/audit")
    assert "/console/signin" in page.url


def test_the_language_switch_turns_the_console_chinese(page: Any, live: Live) -> None:
    signin(page, live, "auditor")
    page.click("#language button[value=zh]")
    page.wait_for_selector("html[lang=zh-CN]")
    assert "审计账本" in page.inner_text("h1")
    page.goto(live.base + "/console/compliance")
    assert "合规" in page.inner_text("h1")


# -- auditor --------------------------------------------------------------------------------------------
def test_auditor_searches_and_the_browser_verifies_a_real_proof(page: Any, live: Live) -> None:
    signin(page, live, "auditor")
    page.fill("input[name=action]", "reply.checked")
    page.click("#search-submit")
    page.wait_for_selector("#results a.seq")
    seqs = [int(s) for s in page.locator("#results a.seq").all_inner_texts()]
    assert len(seqs) == 3 and seqs == sorted(seqs, reverse=True)
    page.click(f"#results a.seq >> text='{seqs[-1]}'")
    page.wait_for_selector("#proof-status[data-result=verified]", timeout=15_000)
    assert page.inner_text("#proof-status") == "verified"
    for step in ("leaf", "root", "checkpoint", "signature"):
        assert page.get_attribute(f"[data-step={step}]", "data-ok") == "true", step
    # The leaf hash the browser computed is the ledger's.
    leaf = page.inner_text("[data-out=leaf]")
    assert leaf == live.node.ledger.leaf_hash(seqs[-1]).hex()


def _tamper(page: Any, change: Any) -> None:
    def handle(route: Any) -> None:
        response = route.fetch()
        data = response.json()
        change(data)
        route.fulfill(response=response, body=json.dumps(data), content_type="application/json")

    page.route("**/proof.json", handle)


def _flip(hexstr: str) -> str:
    return ("0" if hexstr[0] != "0" else "1") + hexstr[1:]


@pytest.mark.parametrize(
    ("what", "change", "failed_step"),
    [
        (
            "path",
            lambda d: d["bundle"]["entries"][0]["inclusion_path"].__setitem__(
                0, _flip(d["bundle"]["entries"][0]["inclusion_path"][0])
            ),
            "root",
        ),
        (
            "entry",
            lambda d: d["bundle"]["entries"][0].__setitem__(
                "entry", d["bundle"]["entries"][0]["entry"].replace('"seq":', '"seq": ')
            ),
            "root",
        ),
        ("short path", lambda d: d["bundle"]["entries"][0]["inclusion_path"].pop(), "root"),
        (
            "checkpoint root",
            lambda d: d["bundle"].__setitem__("checkpoint", _swap_root(d["bundle"]["checkpoint"])),
            "signature",
        ),
    ],
    ids=["path", "entry", "short-path", "checkpoint-root"],
)
def test_the_browser_fails_a_tampered_proof(
    page: Any, live: Live, what: str, change: Any, failed_step: str
) -> None:
    signin(page, live, "auditor")
    _tamper(page, change)
    page.goto(live.base + "/console/audit/entries/4")
    page.wait_for_selector("#proof-status[data-result=failed]", timeout=15_000)
    assert page.inner_text("#proof-status") == "FAILED"
    assert page.get_attribute(f"[data-step={failed_step}]", "data-ok") == "false", what
    assert page.inner_text("#proof-detail")


def _swap_root(note: str) -> str:
    """The checkpoint with another root: the path no longer leads to it and its signature breaks."""
    lines = note.split("\n")
    lines[2] = "A" * 43 + "="
    return "\n".join(lines)


def test_the_browser_fails_a_checkpoint_signed_by_another_key(page: Any, live: Live) -> None:
    from ledger.checkpoint import NoteSigner

    other = NoteSigner.generate(live.node.origin)

    def change(d: dict[str, Any]) -> None:
        d["vkey"] = other.vkey()  # a key that did not sign the checkpoint

    signin(page, live, "auditor")
    _tamper(page, change)
    page.goto(live.base + "/console/audit/entries/4")
    page.wait_for_selector("#proof-status[data-result=failed]", timeout=15_000)
    assert page.get_attribute("[data-step=root]", "data-ok") == "true"
    assert page.get_attribute("[data-step=signature]", "data-ok") == "false"


def test_auditor_downloads_a_bundle_that_verifies_offline(page: Any, live: Live, tmp_path: Path) -> None:
    from ledger.bundle import verify_bundle
    from ledger.checkpoint import load_verifier

    signin(page, live, "auditor")
    page.goto(live.base + "/console/audit/entries/2")
    with page.expect_download() as info:
        page.click("#bundle-link")
    download = info.value
    assert download.suggested_filename == "bundle-2.json"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    report = verify_bundle(json.loads(target.read_text()), load_verifier(live.node.vkey))
    assert report.ok, report.reason


# -- compliance, analyst, custodian, ops, admin ----------------------------------------------------------
def test_compliance_draws_its_charts(page: Any, live: Live) -> None:
    signin(page, live, "admin")
    page.goto(live.base + "/console/compliance")
    page.wait_for_selector("#decisions-chart[data-drawn=true]")
    assert page.evaluate("document.getElementById('decisions-chart').chart.data.datasets.length") == 2
    page.select_option("select[name=by]", "decision")
    page.click("#decisions button[type=submit]")
    page.wait_for_selector("#decisions-chart[data-drawn=true]")
    assert "by=decision" in page.url


def test_analyst_composes_and_runs_a_query(page: Any, live: Live) -> None:
    signin(page, live, "analyst")
    page.select_option("[data-part=func]", "AVG")
    page.select_option("[data-part=column]", "balance")
    page.select_option("[data-part=group]", "segment")
    page.click("#compose-button")
    assert page.input_value("#sql") == "SELECT AVG(balance) FROM customers GROUP BY segment"
    page.click("#run-query")
    page.wait_for_selector("#notice")
    first = page.locator("article.query").first
    assert first.get_attribute("data-status") == "released"
    assert "segment=" in first.inner_text()


def test_custodian_approves_with_a_confirmation(page: Any, live: Live) -> None:
    node = live.node
    analyst = node.keys.authenticate(live.tokens["analyst"])
    n = node.store.count_customers()
    node.privacy.set_weights("ones", list(range(1, n + 1)), [1.0] * n, actor=analyst.actor)
    row = node.privacy.submit(actor=analyst.actor, sql="SELECT DOT(balance, 'ones') AS d FROM customers")
    assert row.status == "awaiting_approval"
    signin(page, live, "custodian")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"#waiting-{row.id} button[type=submit]")
    page.wait_for_selector("#notice")
    assert node.store.privacy.get_query(row.id).status == "released"


def test_ops_reports_an_outcome_and_sees_lift(page: Any, live: Live) -> None:
    signin(page, live, "ops")
    row = page.locator("#trigger-1")
    assert "138" not in row.locator(".contact").inner_text() or "*" in row.locator(".contact").inner_text()
    row.locator("button[value=contacted]").click()
    page.wait_for_selector("#notice")
    assert "trigger 1: contacted" in page.inner_text("#notice")
    assert live.node.store.proactive.get_trigger(1).outcome == "contacted"
    page.select_option("select[name=basis]", "outcomes")
    page.click("#lift button[type=submit]")
    page.wait_for_selector("#lift-chart[data-drawn=true]")


def test_admin_creates_then_revokes_a_key(page: Any, live: Live) -> None:
    signin(page, live, "admin")
    page.goto(live.base + "/console/admin/keys")
    page.select_option("#new-role", "auditor")
    page.fill("#new-label", "browser test")
    page.click("#create-key-button")
    token = page.inner_text("#new-token")
    key = live.node.keys.authenticate(token)
    assert key is not None and key.role == "auditor"
    page.goto(live.base + "/console/admin/keys")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"#key-{key.key_id} button.revoke")
    page.wait_for_selector(f"#key-{key.key_id}[data-state=revoked]")
    assert live.node.keys.authenticate(token) is None


def test_admin_pauses_a_job_and_checks_health(page: Any, live: Live) -> None:
    signin(page, live, "admin")
    page.goto(live.base + "/console/admin/jobs")
    page.click("#job-outbox\\.deliver button.pause")
    page.wait_for_selector("#job-outbox\\.deliver[data-paused=true]")
    page.click("#job-outbox\\.deliver button.resume")
    page.wait_for_selector("#job-outbox\\.deliver[data-paused=false]")
    page.goto(live.base + "/console/admin/health")
    assert page.get_attribute("#check-keys", "data-status") == "ok"


def test_a_role_without_access_gets_a_403_page(page: Any, live: Live) -> None:
    signin(page, live, "ops")
    response = page.goto(live.base + "/console/admin/keys")
    assert response.status == 403
    assert page.get_attribute("#error", "data-status") == "403"
    assert re.search(r"ops", page.inner_text("#error-detail"))


def test_the_csp_stops_an_injected_inline_script(browser: Any, live: Live) -> None:
    """What the CSP is for: a script that got into a page some other way does not run."""
    context = browser.new_context()
    pg = context.new_page()
    try:
        pg.goto(live.base + "/console/signin")
        ran = pg.evaluate(
            """() => new Promise(resolve => {
                 document.addEventListener(
                   'securitypolicyviolation', e => resolve('blocked ' + e.violatedDirective));
                 const s = document.createElement('script');
                 s.textContent = 'window.injected = true';
                 document.body.appendChild(s);
                 setTimeout(() => resolve(window.injected ? 'ran' : 'silent'), 2000);
               })"""
        )
        assert ran.startswith("blocked script-src"), ran
        assert pg.evaluate("window.injected === undefined")
    finally:
        context.close()
