"""Screenshots of the web console for docs/console.md: a demo node, a real server, Debian's chromium.

    .venv/bin/python docs/console/shoot.py            # writes docs/console/*.png (about a minute)

It builds a demo node in a temporary directory (``appliance init --demo``), runs the playbooks so
ops have triggers, checks a few replies and masks a few texts so the compliance charts have data,
runs ``appliance serve`` on 127.0.0.1 and signs in as each role with Playwright. Nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
COMPLIANCE = "/console/compliance?by=rule&days=7&from=1.0.0%2B{v1}&to=1.1.0%2B{v2}"

#: (file name, role, language, path, element to wait for, whole page?)
SHOTS = [
    ("signin", None, "en", "/console/signin", "#api_key", False),
    ("auditor-audit", "auditor", "en", "/console/audit?action=reply.checked&limit=8", "#results", True),
    ("auditor-entry-proof", "auditor", "en", None, "#proof-status[data-result=verified]", True),
    ("auditor-audit-zh", "auditor", "zh", "/console/audit?action=console.*", "#results", True),
    ("admin-compliance", "admin", "en", COMPLIANCE, "#decisions-chart[data-drawn=true]", True),
    ("analyst-queries", "analyst", "en", "/console/queries", "#results", True),
    ("custodian-approvals", "custodian", "en", "/console/approvals", "#waiting", True),
    ("ops-triggers", "ops", "en", "/console/ops?basis=outcomes", "#lift-chart[data-drawn=true]", False),
    ("admin-keys", "admin", "en", "/console/admin/keys", "#keys", True),
    ("admin-jobs", "admin", "en", "/console/admin/jobs", "#jobs", False),
    ("admin-health", "admin", "zh", "/console/admin/health", "#checks", True),
]


def _populate(node: object, tmp: Path) -> tuple[int, dict[str, str]]:
    """Data for the pages; returns the seq of a ``reply.checked`` entry for the proof screenshot and
    the two policy versions to compare."""
    import shutil

    from appliance.jobs import run_job_now
    from appliance.node import DEFAULT_POLICIES, Node
    from appliance.store.proactive import OutcomeConflict

    assert isinstance(node, Node)
    for name in sorted(node.proactive.playbooks):
        run_job_now(node, f"playbook.{name}", trigger="manual")
    rows = node.store.proactive.list_triggers(status=None, playbook=None, run_id=None, after_id=0, limit=400)
    for i, row in enumerate(rows):
        outcome = ("converted", "declined", "contacted")[i % 3] if i % 4 else "converted"
        try:
            node.proactive.record_outcome(row.id, outcome, actor="ops:demo")
        except OutcomeConflict:
            pass
    # A second policy version without the food rules, so there is a diff to show.
    library = tmp / "policies"
    shutil.copytree(DEFAULT_POLICIES, library)
    text = (library / "library.yaml").read_text(encoding="utf-8")
    (library / "library.yaml").write_text(text.replace("version: 1.0.0", "version: 1.1.0"), encoding="utf-8")
    (library / "rules" / "food-regions.yaml").unlink()
    shutil.rmtree(library / "tests", ignore_errors=True)
    node.publish_policy(library, actor="admin:demo")
    ids = [v.id for v in node.policy.versions()]
    versions = {"v1": ids[0].split("+")[1], "v2": ids[-1].split("+")[1]}
    evaluator = node.policy.evaluator()
    replies = [
        ("本产品保本保息，稳赚不赔", "CN", "finance"),
        ("您好，请问还有什么可以帮您？", "CN", "finance"),
        ("This plan has guaranteed returns and zero risk.", "US", "finance"),
        ("Thanks for calling, your claim is in review.", "US", "insurance"),
        ("Ihre Anfrage ist eingegangen.", "DE", "retail"),
        ("本药品包治百病", "CN", "healthcare"),
    ]
    seq = 0
    for i in range(4):
        for text, region, industry in replies[i % 2 :]:
            result = evaluator.check_reply(text, region=region, industry=industry, channel="chat")
            seq = node.record_reply_check(
                "agent:demo", text, result, region=region, industry=industry, channel="chat"
            ).seq
    for text in (
        "客户手机13812345678，邮箱wang.fang@example.com",
        "卡号6222021234567890128，身份证11010519491231002X",
    ):
        result = node.masking.mask_text(text, role="agent")
        node.record(
            "agent:demo", "text.masked", details={"entities": result.counts(), "region": result.region}
        )
    tokens = Node.read_demo_keys(node.settings.data_dir)
    analyst = node.keys.authenticate(tokens["analyst"])
    assert analyst is not None
    node.privacy.submit(
        actor=analyst.actor, sql="SELECT COUNT(*) AS n, AVG(balance) FROM customers GROUP BY segment"
    )
    node.privacy.submit(
        actor=analyst.actor, sql="SELECT /*+ NOISE(laplace, 0.5) */ SUM(balance) FROM customers"
    )
    n = node.store.count_customers()
    node.privacy.set_weights("ones", list(range(1, n + 1)), [1.0] * n, actor=analyst.actor)
    node.privacy.submit(actor=analyst.actor, sql="SELECT DOT(monthly_spend, 'ones') AS total FROM customers")
    node.ledger.sign_checkpoint()
    return seq, versions


def _serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`appliance serve` on a free loopback port, as an operator runs it (gunicorn, one worker)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, APPLIANCE_NODE__DATA_DIR=str(data_dir))
    command = [Path(sys.executable).parent / "appliance", "serve", "--port", str(port), "--workers", "1"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--no-scheduler"], env=env, stdout=out, stderr=out, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return proc, base
        except OSError:  # not listening yet
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise SystemExit(f"appliance serve did not start:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from appliance.node import Node
    from appliance.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(node={"data_dir": Path(tmp) / "node"})
        print("initialising a demo node (this takes a while) ...", file=sys.stderr)
        tokens = dict(Node.init(settings, demo=True).api_keys)
        with Node.open(settings) as node:
            proof_seq, versions = _populate(node, Path(tmp))
        server, base = _serve(settings.data_dir, Path(tmp) / "server.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-background-networking"],
                    headless=True,
                )
                for name, role, lang, path, ready, whole in SHOTS:
                    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale=lang)
                    page = context.new_page()
                    if role is not None:
                        page.goto(f"{base}/console/signin?lang={lang}")
                        page.fill("#api_key", tokens[role])
                        page.click("#signin")
                        try:
                            page.wait_for_selector("#whoami", timeout=20_000)
                        except Exception:
                            print(page.url, page.inner_text("main"), file=sys.stderr)
                            raise
                    else:
                        path = f"{path}?lang={lang}"
                    page.goto(base + (path or f"/console/audit/entries/{proof_seq}").format(**versions))
                    page.wait_for_selector(ready, timeout=20_000)
                    target = args.out / f"{name}.png"
                    page.screenshot(path=str(target), full_page=whole)
                    print(f"wrote {target}", file=sys.stderr)
                    context.close()
                browser.close()
        finally:
            _stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
