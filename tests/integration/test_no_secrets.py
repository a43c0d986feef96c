"""No secret and no raw identifier leaves the node where it should not: logs, unprivileged answers, ledger.

One full demo flow runs through the HTTP API of a real ``appliance serve`` (gunicorn, scheduler)
logging at DEBUG: masked reads and a masking call as an agent, a reply check, a privacy query and
its release, playbook runs raising triggers that ops reads, an API key created (and used), a
checkpoint, an evidence bundle and a backup. Then every secret of the node is read from its data
directory (signing, pseudonym, masking/token, field, policy and webhook keys, the HE secret keys,
every API token, the per-subject keys in the store) and every raw identifier of the demo
customers from the store, and each is searched for, in raw, hex and base64 forms (identifiers: raw,
JSON-escaped and URL-encoded), in

* everything the server processes wrote (stderr: gunicorn, the app, the scheduler);
* every response to an unprivileged role (agent, ops, analyst, auditor), body and headers;
* every raw entry of the ledger.

API tokens may appear only in the answer that issued them (``POST /v1/admin/keys`` to the admin)
and in the demo banner ``serve`` prints on stdout for ``make run`` (a demo node's operator console,
checked separately: nothing but those tokens).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import inspect, text
from support.live_server import BIN, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]
UNPRIVILEGED = ("agent", "ops", "analyst", "auditor")
IDENTIFIER_FIELDS = (
    "full_name",
    "address",
    "mobile",
    "landline",
    "phone",
    "email",
    "cn_resident_id",
    "cn_passport",
    "cn_permit",
    "passport",
    "us_ssn",
    "us_itin",
    "bank_card",
    "iban",
)


# -- searching ----------------------------------------------------------------------------------------
class Needles:
    """Many byte strings searched for at once: a dict keyed by each needle's first bytes, one pass."""

    K = 6

    def __init__(self) -> None:
        self._index: dict[bytes, list[tuple[bytes, str]]] = defaultdict(list)
        self.labels: set[str] = set()

    def add(self, label: str, form: bytes) -> None:
        if len(form) < self.K:
            raise ValueError(f"{label}: {form!r} is too short to search for without false alarms")
        self._index[form[: self.K]].append((form, label))
        self.labels.add(label)

    def find(self, hay: bytes) -> dict[str, bytes]:
        """Label → the context around the first hit (for the failure message)."""
        found: dict[str, bytes] = {}
        index, k = self._index, self.K
        get = index.get
        for i in range(len(hay) - k + 1):
            candidates = get(hay[i : i + k])
            if candidates:
                for form, label in candidates:
                    if label not in found and hay.startswith(form, i):
                        found[label] = hay[max(0, i - 60) : i + len(form) + 60]
        return found


def _byte_forms(b: bytes) -> set[bytes]:
    """Raw, hex and base64 (standard and URL-safe, padded or not) of key material."""
    b64 = base64.b64encode(b)
    url = base64.urlsafe_b64encode(b)
    forms = {b.hex().encode(), b.hex().upper().encode(), b64, b64.rstrip(b"="), url, url.rstrip(b"=")}
    if len(b) >= Needles.K:
        forms.add(b)
    return forms


def _text_forms(s: str) -> set[bytes]:
    """A secret that is text (a token, a key file's text): itself, and hex/base64 of its bytes."""
    return {s.encode(), *_byte_forms(s.encode())}


def _identifier_forms(s: str) -> set[bytes]:
    """An identifier as it could travel: raw UTF-8, JSON-escaped, URL-encoded."""
    forms = {s.encode(), json.dumps(s)[1:-1].encode(), urllib.parse.quote(s).encode()}
    return {f for f in forms if len(f) >= Needles.K}


# -- the node's secrets and identifiers, read from disk and store -----------------------------------------
def _secrets(data: Path, tokens: dict[str, str], store_engine: Any) -> tuple[Needles, Needles]:
    """(key material, API tokens) of the node, each a set of needles."""
    keys = Needles()
    keydir = data / "keys"
    skey = (keydir / "signing.key").read_text().strip()
    for form in _text_forms(skey):
        keys.add("signing.key", form)
    seed = base64.b64decode(skey.split("+", 4)[4])  # 0x01 || the 32-byte Ed25519 seed
    for part in (seed, seed[1:]):
        for form in _byte_forms(part):
            keys.add("signing.key (seed)", form)
    for name in ("pseudonym.key", "masking.key", "webhook.secret"):
        for form in _byte_forms((keydir / name).read_bytes()):
            keys.add(name, form)
    policy_key = (keydir / "policy-signing.key").read_bytes()
    for form in _byte_forms(policy_key) | _text_forms(policy_key.decode().strip()):
        keys.add("policy-signing.key", form)
    for k in json.loads((keydir / "field.keys").read_text())["keys"]:
        for form in _byte_forms(base64.b64decode(k["key"])) | _text_forms(k["key"]):
            keys.add(f"field key {k['id']}", form)
    secret_files = sorted((data / "privacy" / "keys").rglob("secret*.json"))
    assert secret_files, "the demo node has HE secret keys"
    for path in secret_files:
        secret = json.loads(path.read_text())
        for scheme in ("ckks", "bfv"):
            blob = secret[scheme]
            for at in (len(blob) // 3, len(blob) // 2, 2 * len(blob) // 3):
                keys.add(f"HE {scheme} secret key", blob[at : at + 64].encode())
            raw = base64.b64decode(blob)
            middle = raw[len(raw) // 2 : len(raw) // 2 + 48]
            keys.add(f"HE {scheme} secret key", middle.hex().encode())
        for part in ("p", "q"):
            value = int(secret["paillier"][part])
            keys.add(f"Paillier {part}", str(value).encode())
            for form in _byte_forms(value.to_bytes((value.bit_length() + 7) // 8, "big")):
                keys.add(f"Paillier {part}", form)
            keys.add(f"Paillier {part}", format(value, "x").encode())
    with store_engine.connect() as conn:
        if inspect(conn).has_table("subject_keys"):
            for row in conn.execute(text("SELECT customer_id, wrapped FROM subject_keys")):
                for form in _byte_forms(bytes(row.wrapped)):
                    keys.add(f"subject key of customer {row.customer_id}", form)
    api = Needles()
    for role, token in tokens.items():
        api.add(f"API token ({role})", token.encode())
        api.add(f"API token secret part ({role})", token.split("_", 2)[2].encode())
    return keys, api


def _identifiers(node: Any) -> Needles:
    needles = Needles()
    customers = node.store.get_customers(range(1, node.store.count_customers() + 1))
    for c in customers.values():
        for name in IDENTIFIER_FIELDS:
            value = c.get(name)
            if isinstance(value, str) and len(value.strip()) >= 2:
                for form in _identifier_forms(value.strip()):
                    needles.add(f"customer {c['id']} {name}", form)
    assert len(needles.labels) > 1000, "the demo store holds identifiers to look for"
    return needles


# -- the flow -------------------------------------------------------------------------------------------
@dataclass
class Flow:
    data: Path
    base: str
    tokens: dict[str, str]
    stdout: Path
    stderr: Path
    issued: str = ""
    answers: list[tuple[str, str, int, bytes]] = field(default_factory=list)  # role, what, status, bytes
    steps: dict[str, Any] = field(default_factory=dict)

    def ok(self, role: str, method: str, path: str, **kwargs: Any) -> Any:
        """A step that must succeed: its JSON body."""
        resp = self.call(role, method, path, **kwargs)
        assert 200 <= resp.status_code < 300, f"{method} {path} as {role}: {resp.status_code} {resp.text}"
        return resp.json()

    def call(self, role: str, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.tokens[role]}"}
        resp = requests.request(method, self.base + path, headers=headers, timeout=120, **kwargs)
        head = "\n".join(f"{k}: {v}" for k, v in resp.headers.items()).encode()
        self.answers.append((role, f"{method} {path}", resp.status_code, head + b"\n\n" + resp.content))
        return resp


def _rate_limits_off() -> dict[str, str]:
    from appliance.settings import ServerSettings

    fields = ServerSettings.model_fields
    names = ("rate_limit_per_second", "rate_limit_burst", "failed_auth_per_minute", "failed_auth_burst")
    return {f"APPLIANCE_SERVER__{n.upper()}": "100000" for n in names if n in fields}


def _run_flow(flow: Flow) -> None:
    from appliance.node import Node
    from appliance.settings import load_settings

    wanted = ("full_name", "mobile", "email", "bank_card")
    with Node.open(load_settings(node={"data_dir": flow.data}), readonly=True) as node:
        c2 = next(
            c for c in node.store.get_customers(range(2, 200)).values() if all(c.get(k) for k in wanted)
        )
    step = flow.steps
    # agent: masked reads, masking a text full of a customer's identifiers, a reply check
    step["read"] = flow.call("agent", "GET", "/v1/customers/1").status_code
    step["transcripts"] = flow.call("agent", "GET", "/v1/customers/1/transcripts").status_code
    ext = c2["external_id"]
    step["lookup"] = flow.call("agent", "GET", f"/v1/customers?external_id={ext}").status_code
    said = f"您好，我是{c2['full_name']}，手机{c2['mobile']}，邮箱{c2['email']}，卡号{c2['bank_card']}"
    step["said"] = said
    step["mask"] = flow.call(
        "agent", "POST", "/v1/mask/text", json={"text": said, "region": "CN"}
    ).status_code
    step["mask_records"] = flow.call(
        "agent", "POST", "/v1/mask/records", json={"records": [{k: c2[k] for k in ("full_name", "mobile")}]}
    ).status_code
    step["bad_body"] = flow.call(
        "agent", "POST", "/v1/mask/text", json={"text": 5, "region": c2["mobile"]}
    ).status_code
    step["reply"] = flow.call(
        "agent",
        "POST",
        "/v1/policy/check-reply",
        json={"text": "您好，本产品保本保息，请放心购买", "region": "CN", "industry": "finance"},
    ).json()
    step["forbidden"] = flow.call("agent", "GET", "/v1/admin/backups").status_code
    # analyst: a privacy query, released by the guards
    sql = "SELECT COUNT(*) AS n, AVG(balance) FROM customers"
    q = flow.ok("analyst", "POST", "/v1/queries", json={"sql": sql})
    step["query"] = flow.ok("analyst", "GET", f"/v1/queries/{q['id']}")
    flow.call("analyst", "GET", "/v1/queries")
    flow.call("analyst", "GET", "/v1/privacy/budget")
    # admin: playbook runs raise triggers; ops reads them, with masked contacts, and reports an outcome
    step["runs"] = [
        flow.ok("admin", "POST", f"/v1/playbooks/{name}/run")
        for name in ("churn_retention", "tire_pressure_service")
    ]
    triggers = flow.ok("ops", "GET", "/v1/triggers?limit=200")["triggers"]
    step["triggers"] = len(triggers)
    if triggers:
        flow.call("ops", "GET", f"/v1/triggers/{triggers[0]['id']}")
        flow.call("ops", "POST", f"/v1/triggers/{triggers[0]['id']}/outcome", json={"outcome": "contacted"})
    flow.call("ops", "GET", "/v1/triggers/report")
    # admin: a new key (its token only in this answer), then used by the agent it was made for
    issued = flow.call("admin", "POST", "/v1/admin/keys", json={"role": "agent", "label": "leak test"})
    step["key"] = issued.status_code
    flow.issued = issued.json()["token"]
    step["new_key_works"] = flow.call("agent", "GET", "/v1/customers/3", token=flow.issued).status_code
    flow.call("agent", "GET", "/v1/customers/3", token=flow.issued + "x")  # a wrong one: 401, logged
    # auditor: checkpoint, entries, proofs, a bundle
    cp = flow.ok("auditor", "POST", "/v1/ledger/checkpoints")
    step["checkpoint"] = cp
    size = cp["tree_size"]
    for seq in range(max(0, size - 30), size):
        flow.call("auditor", "GET", f"/v1/ledger/entries/{seq}")
    flow.call("auditor", "GET", f"/v1/ledger/proofs/inclusion?seq={size - 1}")
    step["bundle"] = flow.call("auditor", "GET", f"/v1/ledger/bundles/{size - 1}").status_code
    # admin: a backup of the whole node
    step["backup"] = flow.call("admin", "POST", "/v1/admin/backups", json={"name": "leak-test"}).status_code


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    data = tmp_path_factory.mktemp("secrets") / "node"
    env = dict(
        os.environ,
        APPLIANCE_NODE__DATA_DIR=str(data),
        APPLIANCE_LOGGING__LEVEL="DEBUG",
        APPLIANCE_LEDGER__CHECKPOINT_INTERVAL_SECONDS="2",
        **_rate_limits_off(),
    )
    subprocess.run([BIN / "appliance", "init", "--demo"], env=env, check=True, capture_output=True)
    tokens = json.loads((data / "demo-api-keys.json").read_text())
    stdout, stderr = data.parent / "stdout.log", data.parent / "stderr.log"
    with serve(env, log=stderr, stdout=stdout, stop_timeout=30) as live:
        f = Flow(data, live.base, tokens, stdout, stderr)
        _run_flow(f)
        time.sleep(3)  # let the scheduler sign a checkpoint and log about it
    yield f


@pytest.fixture(scope="module")
def needles(flow: Flow) -> dict[str, Needles]:
    from appliance.node import Node
    from appliance.settings import load_settings

    with Node.open(load_settings(node={"data_dir": flow.data}), readonly=True) as node:
        keys, api = _secrets(flow.data, {**flow.tokens, "issued": flow.issued}, node.store.engine)
        ids = _identifiers(node)
    return {"keys": keys, "api": api, "ids": ids}


@pytest.fixture(scope="module")
def ledger_bytes(flow: Flow) -> bytes:
    from appliance.node import Node
    from appliance.settings import load_settings

    with Node.open(load_settings(node={"data_dir": flow.data}), readonly=True) as node:
        node.ledger.refresh()
        raws = [raw for _, raw in node.ledger.iter_raw()]
    assert len(raws) > 50
    return b"\n".join(raws)


def _report(found: dict[str, bytes]) -> str:
    return "\n".join(f"  {label}: ...{ctx!r}..." for label, ctx in sorted(found.items())[:20])


# -- the flow itself ran (a leak test over an empty flow proves nothing) ------------------------------------
def test_the_demo_flow_ran(flow: Flow) -> None:
    s = flow.steps
    assert s["read"] == s["transcripts"] == s["lookup"] == s["mask"] == s["mask_records"] == 200
    assert s["bad_body"] == 422 and s["forbidden"] == 403
    assert s["reply"]["decision"] in ("block", "review", "rewrite")
    assert s["query"]["status"] == "released", s["query"]
    assert s["triggers"] > 0, s["runs"]
    assert s["key"] == 201 and s["new_key_works"] == 200
    assert s["checkpoint"]["tree_size"] > 50 and s["bundle"] == 200 and s["backup"] == 201
    log = flow.stderr.read_bytes()
    assert b'"level": "debug"' in log or b"DEBUG" in log, "the server logged at DEBUG"
    assert len(log) > 2_000


def test_the_search_finds_what_is_there(flow: Flow, needles: dict[str, Needles]) -> None:
    """The needles match their own sources: a search that cannot find anything proves nothing."""
    issuing = next(body for role, what, _, body in flow.answers if what == "POST /v1/admin/keys")
    assert "API token (issued)" in needles["api"].find(issuing)
    store_dump = (flow.data / "keys" / "pseudonym.key").read_bytes()
    assert "pseudonym.key" in needles["keys"].find(store_dump)
    # The text the agent sent to be masked is full of one customer's identifiers: found however encoded.
    said = flow.steps["said"]
    for sent in (said.encode(), json.dumps({"text": said}).encode(), urllib.parse.quote(said).encode()):
        assert len(needles["ids"].find(sent)) >= 4, sent


# -- logs -----------------------------------------------------------------------------------------------
def test_no_key_material_token_or_identifier_in_the_logs(flow: Flow, needles: dict[str, Needles]) -> None:
    log = flow.stderr.read_bytes()
    for kind in ("keys", "api", "ids"):
        found = needles[kind].find(log)
        assert not found, f"{kind} in the server's logs:\n{_report(found)}"


def test_stdout_holds_only_the_demo_banner(flow: Flow, needles: dict[str, Needles]) -> None:
    out = flow.stdout.read_bytes()
    assert not needles["keys"].find(out) and not needles["ids"].find(out)
    found = needles["api"].find(out)
    assert "API token (issued)" not in found and "API token secret part (issued)" not in found
    for line in out.decode(errors="replace").splitlines():
        if any(t in line for t in flow.tokens.values()):
            role, token = line.split()
            assert flow.tokens[role] == token  # the banner's "  <role> <token>" lines, nothing else


# -- answers to unprivileged roles --------------------------------------------------------------------
def test_no_key_material_token_or_identifier_in_unprivileged_answers(
    flow: Flow, needles: dict[str, Needles]
) -> None:
    answers = [(what, status, body) for role, what, status, body in flow.answers if role in UNPRIVILEGED]
    assert len(answers) > 40
    for what, status, body in answers:
        for kind in ("keys", "api", "ids"):
            found = needles[kind].find(body)
            assert not found, f"{kind} in the answer to {what} ({status}):\n{_report(found)}"


# -- the ledger ---------------------------------------------------------------------------------------
def test_no_key_material_token_or_identifier_in_the_ledger(
    ledger_bytes: bytes, needles: dict[str, Needles]
) -> None:
    for kind in ("keys", "api", "ids"):
        found = needles[kind].find(ledger_bytes)
        assert not found, f"{kind} in the ledger:\n{_report(found)}"


def test_the_ledger_recorded_the_flow(ledger_bytes: bytes) -> None:
    actions = {json.loads(line)["action"] for line in ledger_bytes.split(b"\n")}
    for action in ("record.read", "text.masked", "reply.checked", "trigger.listed", "node.backup"):
        assert action in actions, sorted(actions)
