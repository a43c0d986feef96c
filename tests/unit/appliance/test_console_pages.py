"""The console's pages per role: who may open what (one table, every route × every role), and what
each role can do there, through the same node services (and ledger entries) as the JSON API.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from test_console import Browser, assert_page, entries, session_files, signed_in

from appliance.keys import ROLES
from appliance.store.demo import load_demo

if TYPE_CHECKING:
    from conftest import ServerEnv


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    url: str
    endpoint: str
    allowed: frozenset[str]
    data: dict[str, str] = field(default_factory=dict)
    ok: int = 200  # status of an allowed call (303 for a post that redirects)


AUDIT = frozenset({"auditor"})
COMPLIANCE = frozenset({"admin", "auditor"})
OPS = frozenset({"ops", "admin"})
ADMIN = frozenset({"admin"})

#: Every console page and action; the test below checks this table covers the blueprint's routes.
ROUTES = [
    ConsoleRoute("GET", "/console/audit", "console.audit", AUDIT),
    ConsoleRoute("GET", "/console/audit?action=apikey.*&search=1", "console.audit", AUDIT),
    ConsoleRoute("GET", "/console/audit/entries/1", "console.entry", AUDIT),
    ConsoleRoute("GET", "/console/audit/entries/1/proof.json", "console.proof", AUDIT),
    ConsoleRoute("GET", "/console/audit/bundles/bundle-1.json", "console.bundle", AUDIT),
    ConsoleRoute("GET", "/console/compliance", "console.compliance", COMPLIANCE),
    ConsoleRoute("GET", "/console/queries", "console.queries", frozenset({"analyst"})),
    ConsoleRoute(
        "POST",
        "/console/queries",
        "console.submit_query",
        frozenset({"analyst"}),
        {"sql": "SELECT COUNT(*) AS n FROM customers GROUP BY segment"},
        303,
    ),
    ConsoleRoute("GET", "/console/approvals", "console.approvals", frozenset({"custodian"})),
    ConsoleRoute(
        "POST", "/console/approvals/999999", "console.approve_query", frozenset({"custodian"}), ok=404
    ),
    ConsoleRoute("GET", "/console/ops", "console.ops", OPS),
    ConsoleRoute(
        "POST",
        "/console/ops/triggers/999999/outcome",
        "console.trigger_outcome",
        OPS,
        {"outcome": "contacted"},
        404,
    ),
    ConsoleRoute("GET", "/console/admin/keys", "console.keys", ADMIN),
    ConsoleRoute("POST", "/console/admin/keys", "console.create_key", ADMIN, {"role": "agent"}, 201),
    ConsoleRoute("POST", "/console/admin/keys/000000000000/rotate", "console.rotate_key", ADMIN, ok=303),
    ConsoleRoute("POST", "/console/admin/keys/000000000000/revoke", "console.revoke_key", ADMIN, ok=303),
    ConsoleRoute("GET", "/console/admin/jobs", "console.jobs", frozenset({"admin", "auditor"})),
    ConsoleRoute(
        "GET", "/console/admin/jobs/ledger.checkpoint", "console.job_runs", frozenset({"admin", "auditor"})
    ),
    ConsoleRoute("POST", "/console/admin/jobs/ledger.checkpoint/pause", "console.job_action", ADMIN, ok=303),
    ConsoleRoute("GET", "/console/admin/health", "console.health", ADMIN),
]
#: Routes any visitor reaches (they handle the session themselves).
OPEN = {
    "console.static",
    "console.signin",
    "console.signin_post",
    "console.signout",
    "console.language",
    "console.home",
    "console.not_found",
}


@pytest.fixture(scope="module")
def cenv(shared_env: ServerEnv) -> ServerEnv:
    """The module's node with 200 demo customers, HE keys and an encrypted balance, one trigger, some
    reply checks and masked texts (so every page has something to show)."""
    node = shared_env.node
    load_demo(node.store, 200, seed=3)
    node.privacy.keygen(actor="custodian:test")
    node.privacy.encrypt("customers", "balance", actor="admin:test")
    node.store.proactive.insert_triggers(
        [
            {
                "run_id": "0" * 16,
                "playbook": "tire_pressure_service",
                "customer_id": 1,
                "score": 0.9,
                "rank": 1,
                "treated": 1,
                "status": "pending",
                "suppressed_by": None,
                "reasons": {
                    "gates": [{"gate": "consent", "ok": True}],
                    "model": [{"feature": "f", "contribution": 0.2}],
                },
                "model_version": None,
                "channel": "sms",
                "created": datetime.now(UTC),
                "not_before": None,
            }
        ]
    )
    for text, region in (("本产品保本保息", "CN"), ("Guaranteed returns, no risk!", "US"), ("您好", "CN")):
        resp = shared_env.client.post(
            "/v1/policy/check-reply",
            headers=shared_env.auth("agent"),
            json={"text": text, "region": region, "industry": "finance"},
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
    resp = shared_env.client.post(
        "/v1/mask/text",
        headers=shared_env.auth("agent"),
        json={"text": "手机13812345678，邮箱zhang.wei@example.com，手机13912345678"},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return shared_env


@pytest.fixture(scope="module")
def browsers(cenv: ServerEnv) -> dict[str, Browser]:
    return {role: signed_in(cenv, role) for role in ROLES}


def _call(b: Browser, route: ConsoleRoute) -> Any:
    if route.method == "GET":
        return b.get(route.url)
    return b.post(route.url, route.data)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.url}")
def test_role_matrix(cenv: ServerEnv, browsers: dict[str, Browser], route: ConsoleRoute, role: str) -> None:
    resp = _call(browsers[role], route)
    text = resp.get_data(as_text=True)
    if role in route.allowed:
        assert resp.status_code == route.ok, text[:3000]
        assert "Traceback" not in text
    else:
        page = assert_page(resp, 403)
        assert role in page and "Not allowed" in page


def test_the_table_covers_every_console_route(cenv: ServerEnv) -> None:
    from appliance.server.console import PAGES

    served = {
        (r.endpoint, m)
        for r in cenv.app.url_map.iter_rules()
        if r.endpoint.startswith("console.") and r.endpoint not in OPEN
        for m in (r.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert served == {(r.endpoint, r.method) for r in ROUTES}
    for r in ROUTES:
        assert set(PAGES[r.endpoint].roles) == r.allowed, r.endpoint


@pytest.mark.parametrize("role", ROLES)
def test_navigation_shows_exactly_the_pages_a_role_may_open(browsers: dict[str, Browser], role: str) -> None:
    from appliance.server.console.pages import nav_for

    home = browsers[role].get("/console/", follow_redirects=True)
    text = assert_page(home, 200)
    nav = re.search(r"<nav[^>]*>(.*?)</nav>", text, re.S)
    assert nav is not None
    links = re.findall(r'href="([^"]+)"', nav[1])
    pages = nav_for(role)
    assert len(links) == len(pages)
    if not pages:  # agent and supervisor: the console has nothing for them, and says so
        assert 'id="no-pages"' in text


# -- auditor -------------------------------------------------------------------------------------------------
def test_auditor_sees_the_latest_checkpoint_with_its_signatures(
    cenv: ServerEnv, browsers: dict[str, Browser]
) -> None:
    text = assert_page(browsers["auditor"].get("/console/audit"), 200)
    latest = cenv.node.ledger.latest_checkpoint()
    assert latest is not None
    assert latest.checkpoint.root_hash.hex() in text
    assert cenv.node.vkey in text
    assert "the log&#39;s own key" in text
    assert 'data-kind="own"' in text and "No witness is configured" in text
    assert "not configured" in text  # anchoring is off on test nodes


def test_auditor_searches_by_action_subject_and_time(cenv: ServerEnv, browsers: dict[str, Browser]) -> None:
    b = browsers["auditor"]
    text = assert_page(b.get("/console/audit?action=reply.checked&search=1"), 200)
    rows = re.findall(r'class="seq">(\d+)<', text)
    expected = [e["seq"] for e in entries(cenv, "reply.checked")]
    assert sorted(map(int, rows)) == expected and rows == sorted(rows, key=int, reverse=True)
    # by prefix, and by subject pseudonym
    text = assert_page(b.get("/console/audit?action=trigger.*&search=1"), 200)
    listed = entries(cenv, "trigger.listed")
    subject = listed[0]["subject"][0] if listed else None
    if subject:
        text = assert_page(b.get(f"/console/audit?subject={subject}&search=1"), 200)
        assert all(
            subject in json.dumps(cenv.node.ledger.entry(int(s)).as_dict())
            for s in re.findall(r'class="seq">(\d+)<', text)
        )
    # by time: nothing before the node existed, everything up to tomorrow
    assert (
        re.findall(r'class="seq">', assert_page(b.get("/console/audit?until=2000-01-01&search=1"), 200)) == []
    )
    text = assert_page(
        b.get("/console/audit?action=apikey.created&since=2000-01-01&until=2999-12-31&limit=3"), 200
    )
    assert len(re.findall(r'class="seq">', text)) == 3


def test_auditor_sees_verified_witness_cosignatures(env: ServerEnv) -> None:
    """A witness configured and its cosignature stored (as the ledger.witness job stores them): the page
    lists it as verified, with its time; a line by a key nobody configured is shown as unverified."""
    import time as _time

    from appliance.witnesses import paths
    from ledger.witness import WitnessSigner, merge_signatures

    node = env.node
    witness, stranger = WitnessSigner.generate("witness.example/w1"), WitnessSigner.generate("nobody.example")
    node.witnesses.add("https://witness.example/add-checkpoint", witness.vkey(), actor="admin:test")
    signed = node.ledger.sign_checkpoint()
    lines = "".join(w.cosign(signed.body, int(_time.time())) + "\n" for w in (witness, stranger))
    target = paths(env.settings.data_dir)["cosigned"] / f"{signed.checkpoint.tree_size:020d}.note"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(merge_signatures(signed.text, lines))
    text = assert_page(signed_in(env, "auditor").get("/console/audit"), 200)
    kinds = re.findall(r'<tr data-kind="(\w+)"><td><code>([^<]+)</code>', text)
    assert sorted(kinds) == sorted(
        [("own", node.origin), ("witness", "witness.example/w1"), ("unverified", "nobody.example")]
    )
    assert "witness cosignature (verified)" in text


def test_auditor_sees_the_anchors_of_the_checkpoints(env: ServerEnv) -> None:
    """Anchorings the node made (its anchor index, a cache of ``ledger.anchored`` entries) are listed,
    newest first, the one of the shown checkpoint marked."""
    from ledger.anchors.base import AnchorRecord

    node = env.node
    signed = node.ledger.sign_checkpoint()
    size = signed.checkpoint.tree_size
    for n, status in ((size - 2, "confirmed"), (size, "pending")):
        node.anchoring.index.append(
            AnchorRecord(
                "ethereum",
                "31337",
                "0x" + "ab" * 20,
                n,
                "00" * 32,
                f"0x{n:064x}",
                7 if status else None,
                status,
                "2026-11-24T09:00:00Z",
            )
        )
    text = assert_page(signed_in(env, "auditor").get("/console/audit"), 200)
    rows = re.findall(r'<tr( class="current")?>\s*<td>ethereum / 31337</td><td>(\d+)</td>', text)
    assert rows == [(' class="current"', str(size)), ("", str(size - 2))]
    assert f"0x{size:064x}" in text and "confirmed" in text


@pytest.mark.parametrize(
    "query",
    [
        "action=DROP%20TABLE",
        "subject=13812345678",
        "since=yesterday",
        "limit=0",
        "limit=9999",
        "since=2026-02-01&until=2026-01-01",
    ],
)
def test_bad_search_input_is_a_400_page(browsers: dict[str, Browser], query: str) -> None:
    assert_page(browsers["auditor"].get(f"/console/audit?search=1&{query}"), 400)


def test_the_proof_the_page_checks_is_a_bundle_that_verifies(
    cenv: ServerEnv, browsers: dict[str, Browser]
) -> None:
    from ledger.bundle import verify_bundle
    from ledger.checkpoint import load_verifier

    b = browsers["auditor"]
    text = assert_page(b.get("/console/audit/entries/3"), 200)
    assert 'data-proof-url="/console/audit/entries/3/proof.json"' in text
    assert "proof.js" in text
    data = b.get("/console/audit/entries/3/proof.json").get_json()
    assert data["vkey"] == cenv.node.vkey
    report = verify_bundle(data["bundle"], load_verifier(cenv.node.vkey))
    assert report.ok, report.reason
    assert data["bundle"]["entries"][0]["seq"] == 3


def test_bundles_download_as_named_files_that_verify(cenv: ServerEnv, browsers: dict[str, Browser]) -> None:
    from ledger.bundle import verify_bundle
    from ledger.checkpoint import load_verifier

    before = len(entries(cenv, "ledger.exported"))
    resp = browsers["auditor"].get("/console/audit/bundles/bundle-1-2-5.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="bundle-1-2-5.json"'
    bundle = resp.get_json()
    assert bundle["format"] == "appliance-evidence-bundle/2"
    assert [e["seq"] for e in bundle["entries"]] == [1, 2, 5]
    assert verify_bundle(bundle, load_verifier(cenv.node.vkey)).ok
    exported = entries(cenv, "ledger.exported")
    key = cenv.node.keys.authenticate(cenv.tokens["auditor"])
    assert key is not None
    assert len(exported) == before + 1 and exported[-1]["actor"] == key.actor


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "bundle-1.json/../../x",
        "bundle-1.json%00.txt",
        "bundle-1.JSON",
        "bundle-1;rm.json",
        "bundle-.json",
        "%2e%2e/bundle-1.json",
        "bundle-1\\..\\x.json",
        "bundle-" + "-".join(["1"] * 101) + ".json",
    ],
)
def test_path_traversal_in_a_bundle_name_is_a_400_page(browsers: dict[str, Browser], name: str) -> None:
    resp = browsers["auditor"].get(f"/console/audit/bundles/{name}")
    text = assert_page(resp, 400)
    assert "Content-Disposition" not in resp.headers
    assert "Bad download name" in text


def test_a_bundle_of_an_entry_beyond_the_log_is_a_404_page(browsers: dict[str, Browser]) -> None:
    assert_page(browsers["auditor"].get("/console/audit/bundles/bundle-99999999.json"), 404)


# -- compliance ---------------------------------------------------------------------------------------------
def test_compliance_shows_versions_decisions_and_masking(
    cenv: ServerEnv, browsers: dict[str, Browser]
) -> None:
    b = browsers["admin"]
    text = assert_page(b.get("/console/compliance"), 200)
    live = cenv.node.policy.live_id()
    assert live is not None and live in text
    chart = re.search(r'id="decisions-chart" data-chart="([^"]+)"', text)
    assert chart is not None
    spec = json.loads(chart[1].replace("&#34;", '"').replace("&amp;", "&"))
    totals = {d["label"]: sum(d["data"]) for d in spec["datasets"]}
    assert totals == {"CN": 2, "US": 1}
    masking = re.search(r'id="masking-chart" data-chart="([^"]+)"', text)
    assert masking is not None
    mspec = json.loads(masking[1].replace("&#34;", '"'))
    counts = dict(zip(mspec["labels"], mspec["datasets"][0]["data"], strict=True))
    assert counts.get("CN_MOBILE", 0) >= 2 and counts.get("EMAIL_ADDRESS", counts.get("EMAIL", 0)) >= 1
    by_rule = assert_page(b.get("/console/compliance?by=rule"), 200)
    reply = entries(cenv, "reply.checked")
    fired = {r for e in reply for r in e["details"]["rules"]}
    assert fired and all(r in by_rule for r in fired)


def test_compliance_diffs_two_versions(cenv: ServerEnv, browsers: dict[str, Browser]) -> None:
    live = cenv.node.policy.live_id()
    assert live is not None
    text = assert_page(
        browsers["auditor"].get("/console/compliance", query_string={"from": live, "to": live}), 200
    )
    assert "No rule changed" in text
    assert_page(browsers["auditor"].get("/console/compliance?from=nope&to=x"), 400)
    assert_page(browsers["auditor"].get("/console/compliance?by=colour"), 400)
    assert_page(browsers["auditor"].get("/console/compliance?days=0"), 400)


# -- analyst and custodian -----------------------------------------------------------------------------------
def test_an_analyst_runs_a_query_and_sees_results_guards_and_budget(
    cenv: ServerEnv, browsers: dict[str, Browser]
) -> None:
    b = browsers["analyst"]
    key = cenv.node.keys.authenticate(cenv.tokens["analyst"])
    assert key is not None
    before = len(entries(cenv, "query.submitted"))
    resp = b.post(
        "/console/queries", {"sql": "SELECT /*+ NOISE(laplace, 0.5) */ SUM(balance) FROM customers"}
    )
    assert resp.status_code == 303
    page = assert_page(b.get(resp.headers["Location"]), 200)
    submitted = entries(cenv, "query.submitted")
    assert len(submitted) == before + 1 and submitted[-1]["actor"] == key.actor
    qid = submitted[-1]["details"]["query"]
    block = page[page.index(f'id="query-{qid}"') :]
    assert 'data-status="released"' in block[:200]
    assert "noise laplace" in block
    budget = cenv.node.privacy.budget_of(key.actor)
    assert budget["epsilon"]["spent"] == pytest.approx(0.5)
    assert f'id="epsilon-left">{budget["epsilon"]["left"]:.4g}<' in page


def test_a_refused_query_shows_why_and_keeps_the_text(browsers: dict[str, Browser]) -> None:
    b = browsers["analyst"]
    sql = "SELECT name FROM customers"
    text = assert_page(b.post("/console/queries", {"sql": sql}), 422)
    assert 'id="query-error"' in text and sql in text
    assert_page(b.post("/console/queries", {"sql": "   "}), 422)
    assert_page(b.get("/console/queries?example=99"), 400)
    assert "SELECT COUNT(*)" in assert_page(b.get("/console/queries?example=0"), 200)


def test_the_custodian_approves_a_waiting_query(cenv: ServerEnv, browsers: dict[str, Browser]) -> None:
    node = cenv.node
    analyst = node.keys.authenticate(cenv.tokens["analyst"])
    assert analyst is not None
    n = node.store.count_customers()  # one weight per customer (ids 1..n in a fresh store)
    node.privacy.set_weights("w", list(range(1, n + 1)), [1.0] * n, actor=analyst.actor)
    row = node.privacy.submit(actor=analyst.actor, sql="SELECT DOT(balance, 'w') AS d FROM customers")
    assert row.status == "awaiting_approval"
    b = browsers["custodian"]
    assert f'id="waiting-{row.id}"' in assert_page(b.get("/console/approvals"), 200)
    resp = b.post(f"/console/approvals/{row.id}")
    assert resp.status_code == 303
    custodian = node.keys.authenticate(cenv.tokens["custodian"])
    assert custodian is not None
    assert node.store.privacy.get_query(row.id).approved_by == custodian.actor
    assert f'id="waiting-{row.id}"' not in assert_page(b.get("/console/approvals"), 200)


# -- ops ----------------------------------------------------------------------------------------------------
def test_ops_sees_masked_contacts_and_the_read_is_recorded(
    cenv: ServerEnv, browsers: dict[str, Browser]
) -> None:
    b = browsers["ops"]
    before = len(entries(cenv, "trigger.listed"))
    text = assert_page(b.get("/console/ops"), 200)
    assert 'id="trigger-1"' in text
    record = cenv.node.store.get_customers([1], fields=("mobile",))[1]
    assert record["mobile"] and record["mobile"] not in text  # masked for ops
    listed = entries(cenv, "trigger.listed")
    assert len(listed) == before + 1
    key = cenv.node.keys.authenticate(cenv.tokens["ops"])
    assert key is not None and listed[-1]["actor"] == key.actor
    assert listed[-1]["subject"] == [cenv.node.pseudonyms.pseudonym("cust", "1")]
    assert 'id="lift-chart"' in text or "No playbook has triggers" in text


def test_ops_reports_an_outcome(cenv: ServerEnv, browsers: dict[str, Browser]) -> None:
    b = browsers["ops"]
    resp = b.post(
        "/console/ops/triggers/1/outcome", {"outcome": "contacted", "next": "/console/ops?status=pending"}
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/ops?status=pending"
    (outcome,) = [e for e in entries(cenv, "trigger.outcome") if e["details"]["trigger"] == 1]
    assert outcome["details"]["outcome"] == "contacted"
    assert "trigger 1: contacted" in assert_page(b.get("/console/ops"), 200)
    assert_page(b.post("/console/ops/triggers/1/outcome", {"outcome": "maybe"}), 400)
    assert_page(b.get("/console/ops?status=lost"), 400)


# -- admin ---------------------------------------------------------------------------------------------------
def test_admin_creates_a_key_shown_once_that_works_and_is_recorded(
    cenv: ServerEnv, browsers: dict[str, Browser]
) -> None:
    b = browsers["admin"]
    resp = b.post("/console/admin/keys", {"role": "auditor", "label": "external audit 2026"})
    text = assert_page(resp, 201)
    token = re.search(r'id="new-token">([^<]+)<', text)
    assert token is not None
    key = cenv.node.keys.authenticate(token[1])
    assert key is not None and key.role == "auditor" and key.label == "external audit 2026"
    created = [e for e in entries(cenv, "apikey.created") if e["details"]["key_id"] == key.key_id]
    admin = cenv.node.keys.authenticate(cenv.tokens["admin"])
    assert admin is not None and created[0]["actor"] == admin.actor
    listing = assert_page(b.get("/console/admin/keys"), 200)
    assert key.key_id in listing and token[1] not in listing
    api = cenv.client.get("/v1/ledger/checkpoint", headers={"Authorization": f"Bearer {token[1]}"})
    assert api.status_code == 200
    assert_page(b.post("/console/admin/keys", {"role": "overlord"}), 400)
    assert_page(b.post("/console/admin/keys", {"role": "agent", "expires": "2001-01-01"}), 400)


def test_admin_rotates_and_revokes_a_key_and_its_sessions_end(
    cenv: ServerEnv, browsers: dict[str, Browser]
) -> None:
    node = cenv.node
    key, token = node.keys.issue("ops", label="rotate me")
    user = Browser(cenv.app)
    assert user.signin(token).status_code == 303
    b = browsers["admin"]
    text = assert_page(b.post(f"/console/admin/keys/{key.key_id}/rotate", {"grace": "0"}), 200)
    new = re.search(r'id="new-token">([^<]+)<', text)
    assert new is not None and new[1] != token
    assert node.keys.authenticate(token) is None and node.keys.authenticate(new[1]) is not None
    assert [e for e in entries(cenv, "apikey.rotated") if e["details"]["key_id"] == key.key_id]
    assert user.get("/console/ops").status_code == 303  # the session signed in with the old secret ended
    assert user.signin(new[1]).status_code == 303
    resp = b.post(f"/console/admin/keys/{key.key_id}/revoke")
    assert resp.status_code == 303
    assert "revoked" in assert_page(b.get("/console/admin/keys"), 200)
    assert node.keys.authenticate(new[1]) is None
    assert [e for e in entries(cenv, "apikey.revoked") if e["details"]["key_id"] == key.key_id]
    resp = user.get("/console/ops")
    assert resp.status_code == 303 and "why=" in resp.headers["Location"]
    # Revoking it again, or an unknown key, is a message on the page, not an error.
    b.post(f"/console/admin/keys/{key.key_id}/revoke")
    assert "revoked already" in assert_page(b.get("/console/admin/keys"), 200)
    assert_page(b.post("/console/admin/keys/NOT-AN-ID/revoke"), 400)


def test_admin_pauses_resumes_and_runs_a_job(cenv: ServerEnv, browsers: dict[str, Browser]) -> None:
    b = browsers["admin"]
    assert b.post("/console/admin/jobs/ledger.checkpoint/pause").status_code == 303
    text = assert_page(b.get("/console/admin/jobs"), 200)
    assert 'id="job-ledger.checkpoint" data-paused="true"' in text
    assert b.post("/console/admin/jobs/ledger.checkpoint/resume").status_code == 303
    assert 'id="job-ledger.checkpoint" data-paused="false"' in assert_page(b.get("/console/admin/jobs"), 200)
    admin = cenv.node.keys.authenticate(cenv.tokens["admin"])
    assert admin is not None
    paused = [e for e in entries(cenv, "job.paused") if e["details"]["job"] == "ledger.checkpoint"]
    assert paused and paused[-1]["actor"] == admin.actor
    assert b.post("/console/admin/jobs/ledger.checkpoint/run").status_code == 303
    history = assert_page(b.get("/console/admin/jobs/ledger.checkpoint"), 200)
    assert "console" in history and "succeeded" in history
    assert_page(b.post("/console/admin/jobs/ledger.checkpoint/explode"), 400)
    assert_page(b.get("/console/admin/jobs/Not A Job"), 400)
    assert_page(b.get("/console/admin/jobs/no.such_job"), 404)


def test_admin_sees_the_doctors_quick_checks(browsers: dict[str, Browser]) -> None:
    text = assert_page(browsers["admin"].get("/console/admin/health"), 200)
    for name in ("keys", "disk", "ledger", "store", "policy"):
        assert f'id="check-{name}"' in text
    assert 'id="check-keys" data-status="ok"' in text


def test_agents_have_no_pages_but_a_clear_answer(cenv: ServerEnv) -> None:
    b = signed_in(cenv, "agent")
    text = assert_page(b.get("/console/", follow_redirects=True), 200)
    assert "no pages for the role" in text
    assert len(session_files(cenv)) >= 1
