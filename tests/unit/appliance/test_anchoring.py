"""The node's anchoring service on a real node and an in-process Ethereum chain (eth-tester).

Every test runs the real contract, real signed transactions and the node's real ledger; only the
chain is in-process instead of a node process (tests/integration/test_anchor_anvil.py has that).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.eth_chain import InProcessChain, in_process_chain

from appliance.anchoring import AnchoringBusy, AnchoringNotConfigured, AnchorService, build_anchor
from appliance.cli_anchor import anchor as anchor_cli
from appliance.jobs import run_job_now
from appliance.node import Node
from appliance.scheduler import job_specs
from appliance.server import create_app
from appliance.settings import SettingsError, load_settings
from ledger.anchors import AnchorError, AnchorMismatch, AnchorRejected, AnchorUnavailable
from ledger.anchors.ethereum import EthereumAnchor


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "node"
    Node.init(load_settings(node={"data_dir": path}))
    return path


@dataclass
class Env:
    node: Node
    chain: InProcessChain
    service: AnchorService

    def entries(self, action: str) -> list[dict[str, Any]]:
        ledger = self.node.ledger
        ledger.refresh()
        return [d for d in (ledger.entry(i).as_dict() for i in range(ledger.size)) if d["action"] == action]

    def append(self, n: int) -> None:
        for i in range(n):
            self.node.record("admin:test", "test.probed", details={"i": i})


def _open(template: Path, tmp_path: Path, **anchor: Any) -> Node:
    path = tmp_path / "node"
    shutil.copytree(template, path)
    settings = load_settings(node={"data_dir": path}, anchor={"chain": "ethereum", **anchor})
    return Node.open(settings)


@pytest.fixture
def env(template: Path, tmp_path: Path) -> Iterator[Env]:
    node = _open(template, tmp_path)
    chain = in_process_chain()
    service = node._anchoring = AnchorService(node, chain.anchor)
    yield Env(node, chain, service)
    node.close()


@pytest.fixture
def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# -- anchoring now ---------------------------------------------------------------------------------------
def test_anchor_now_anchors_the_latest_checkpoint_and_records_it(env: Env) -> None:
    size = env.node.ledger.size
    out = env.service.anchor_now(actor="admin:test", request_id="req-1")
    rec = out["anchored"]
    assert out["reason"] is None and rec["tree_size"] == size == out["tree_size"]
    assert rec["root"] == env.node.ledger.root(size).hex()
    assert env.node.ledger.latest_checkpoint().checkpoint.tree_size == size  # type: ignore[union-attr]
    [entry] = env.entries("ledger.anchored")
    assert entry["seq"] == rec["ledger_seq"] and entry["actor"] == "admin:test"
    assert entry["request_id"] == "req-1"
    assert entry["details"] == {
        "chain": "ethereum",
        "network": str(env.chain.w3.eth.chain_id),
        "contract": env.chain.contract,
        "tx": rec["tx"],
        "block": rec["block"],
        "tree_size": size,
        "root": rec["root"],
        "status": "confirmed",
    }
    [stored] = env.service.records()
    assert stored.as_dict() == {k: v for k, v in rec.items() if k != "ledger_seq"}
    onchain = env.chain.anchor.read(size)
    assert onchain is not None and onchain.root.hex() == rec["root"] and onchain.tx == rec["tx"]


def test_anchor_now_again_anchors_the_grown_log(env: Env) -> None:
    first = env.service.anchor_now()["anchored"]
    env.append(2)
    second = env.service.anchor_now()["anchored"]
    assert second["tree_size"] == first["tree_size"] + 3  # the ledger.anchored entry and two more
    assert [r.tree_size for r in env.service.records()] == [first["tree_size"], second["tree_size"]]


def test_the_account_key_is_never_recorded(env: Env, template: Path, tmp_path: Path) -> None:
    env.service.anchor_now()
    env.append(1)
    env.service.tick()
    key = env.chain.key.removeprefix("0x").lower()
    data_dir = env.node.settings.data_dir
    for path in data_dir.rglob("*"):
        if path.is_file() and path.name != "anchor-ethereum.key":
            assert key not in path.read_bytes().hex() + path.read_bytes().decode("latin-1").lower(), path
    assert key not in repr(env.chain.anchor).lower()


# -- the scheduled job: due logic, backoff ----------------------------------------------------------------
def test_tick_anchors_first_then_only_when_due(template: Path, tmp_path: Path) -> None:
    node = _open(template, tmp_path, every_minutes=60, every_entries=3)
    try:
        service = node._anchoring = AnchorService(node, in_process_chain().anchor)
        first = service.tick()
        assert first["anchored"] is not None and first["due"].startswith("first anchoring")
        # Its own ledger.anchored entry does not make the log "grown".
        again = service.tick()
        assert "anchored" not in again and again["due"] == "no new entries since the last anchoring"
        for i in range(2):
            node.record("admin:test", "test.probed", details={"i": i})
        assert service.tick()["due"] == "2 new entries; not due yet"
        node.record("admin:test", "test.probed")
        third = service.tick()
        assert third["due"] == "3 new entries (every_entries 3)" and third["anchored"] is not None
        # every_minutes: one new entry, the last anchoring an hour ago.
        node.record("admin:test", "test.probed")
        assert service.tick()["due"] == "1 new entries; not due yet"
        service._save_state(replace(service._load_state(), last_anchored_at=time.time() - 3601))
        late = service.tick()
        assert (
            late["due"] == "1 new entries, 60 min since the last anchoring" and late["anchored"] is not None
        )
        assert len(service.records()) == 3
    finally:
        node.close()


def test_a_cosigning_alone_does_not_make_anchoring_due(template: Path, tmp_path: Path) -> None:
    # The witness job cosigns the checkpoint that holds the last anchoring and appends ledger.cosigned;
    # anchoring that entry would cost a transaction per quiet period and anchor nothing of substance.
    node = _open(template, tmp_path, every_minutes=60, every_entries=1)
    try:
        service = node._anchoring = AnchorService(node, in_process_chain().anchor)
        assert service.tick()["anchored"] is not None
        node.record("system:witness", "ledger.cosigned", details={"witness": "w.example/1"})
        service._save_state(replace(service._load_state(), last_anchored_at=time.time() - 3601))
        quiet = service.tick()
        assert "anchored" not in quiet
        assert quiet["due"] == "only cosignings and anchorings since the last anchoring"
        assert service.status()["unanchored_entries"] == 0  # so doctor does not call anchoring overdue
        node.record("admin:test", "test.probed")  # real work after the cosigning: due again
        assert service.status()["unanchored_entries"] == 2
        busy = service.tick()
        assert busy["anchored"] is not None and busy["due"] == "2 new entries (every_entries 1)"
    finally:
        node.close()


def test_an_unreachable_chain_backs_off_and_never_blocks_appends(env: Env, dead_url: str) -> None:
    env.service._anchor = EthereumAnchor.connect(dead_url, env.chain.contract, env.chain.key, timeout=2)
    env.append(1)
    with pytest.raises(AnchorUnavailable, match="unreachable"):
        env.service.tick()
    state = env.service.status()
    assert state["failures"] == 1 and "unreachable" in state["last_error"] and state["next_attempt"]
    before = env.node.ledger.size
    env.append(5)  # the ledger keeps accepting entries
    assert env.node.ledger.size == before + 5
    skipped = env.service.tick()  # within the backoff: the chain is not even asked
    assert skipped["skipped"].startswith("backing off after 1 failure(s) until ")
    # Later: the chain is back and the backoff has run out.
    env.service._anchor = env.chain.anchor
    env.service._save_state(replace(env.service._load_state(), next_attempt=time.time() - 1))
    out = env.service.tick()
    assert out["anchored"]["tree_size"] == env.node.ledger.size - 1
    assert env.service.status()["failures"] == 0 and env.service.status()["last_error"] is None
    assert env.entries("ledger.anchored") and not env.entries("job.failed")


def test_backoff_doubles_up_to_the_cap(template: Path, tmp_path: Path, dead_url: str) -> None:
    node = _open(template, tmp_path, retry_backoff_seconds=10, retry_backoff_cap_seconds=25)
    try:
        service = AnchorService(node, EthereumAnchor.connect(dead_url, "0x" + "11" * 20, "0x" + "01" * 32))
        delays = []
        for _ in range(3):
            with pytest.raises(AnchorUnavailable):
                service.anchor_now()
            delays.append(round(service._load_state().next_attempt - time.time()))  # type: ignore[operator]
        assert delays == [10, 20, 25]
    finally:
        node.close()


def test_the_job_runs_the_service_and_is_scheduled_only_when_configured(env: Env, template: Path) -> None:
    run = run_job_now(env.node, "ledger.anchor")
    assert run["status"] == "succeeded" and run["detail"]["anchored"]["tree_size"] > 0
    assert "ledger.anchor" in {s.id for s in job_specs(env.node, {})}
    with Node.open(load_settings(node={"data_dir": template})) as plain:
        assert "ledger.anchor" not in {s.id for s in job_specs(plain, {})}


def test_a_second_anchoring_process_is_told_to_wait(env: Env) -> None:
    with env.service._locked():
        other = AnchorService(env.node, env.chain.anchor)
        assert other.tick() == {"skipped": "anchoring is running in another process"}
        with pytest.raises(AnchoringBusy, match="try again"), other._locked(wait=0.2):
            pass


# -- refusals and forks --------------------------------------------------------------------------------------
def test_a_key_that_is_not_the_owner_is_rejected_and_nothing_is_recorded(env: Env) -> None:
    stranger = env.chain.tester.backend.account_keys[1].to_hex()
    env.service._anchor = EthereumAnchor(env.chain.w3, env.chain.contract, stranger)
    with pytest.raises(AnchorRejected, match="caller is not the owner"):
        env.service.anchor_now()
    assert env.service.records() == [] and env.entries("ledger.anchored") == []
    assert env.service.status()["failures"] == 1


def test_a_size_found_on_chain_with_our_root_is_adopted(env: Env) -> None:
    """A crash after sending: the chain holds our checkpoint, our records do not."""
    cp = env.node.ledger.sign_checkpoint().checkpoint
    sent = env.chain.anchor.anchor(cp.tree_size, cp.root_hash)
    out = env.service.anchor_now()
    assert out["anchored"] is None and "anchored already" in out["reason"]
    [rec] = env.service.records()
    assert (rec.tree_size, rec.tx, rec.block) == (cp.tree_size, sent.tx, sent.block)
    [entry] = env.entries("ledger.anchored")
    assert entry["details"]["adopted"] is True and entry["details"]["tx"] == sent.tx


def test_a_different_root_on_chain_is_a_fork_and_is_refused(env: Env) -> None:
    size = env.node.ledger.size
    env.chain.anchor.anchor(size, b"\x42" * 32)
    with pytest.raises(AnchorMismatch, match=f"for size {size}, this ledger's root there is"):
        env.service.anchor_now()
    assert env.service.records() == [] and env.entries("ledger.anchored") == []


def test_a_chain_ahead_of_the_ledger_is_refused(env: Env) -> None:
    env.chain.anchor.anchor(10**6, b"\x42" * 32)
    with pytest.raises(AnchorMismatch, match="another node anchors to this contract"):
        env.service.anchor_now()


# -- confirmations and reorganisations --------------------------------------------------------------------
def test_pending_anchors_become_confirmed_with_blocks(template: Path, tmp_path: Path) -> None:
    node = _open(template, tmp_path)
    try:
        chain = in_process_chain(confirmations=3)
        service = AnchorService(node, chain.anchor)
        rec = service.anchor_now()["anchored"]
        assert rec["status"] == "pending" and service.status()["counts"]["pending"] == 1
        assert service.refresh() == {"checked": 1, "confirmed": 0, "dropped": [], "reanchored": []}
        chain.tester.mine_blocks(2)
        assert service.refresh()["confirmed"] == 1
        assert [r.status for r in service.records()] == ["confirmed"]
        assert service.refresh()["checked"] == 0  # confirmed ones are not asked again
    finally:
        node.close()


def test_a_reorganisation_drops_the_anchor_which_is_recorded_and_anchored_again(
    template: Path, tmp_path: Path
) -> None:
    node = _open(template, tmp_path)
    try:
        chain = in_process_chain(confirmations=5)
        service = AnchorService(node, chain.anchor)
        snapshot = chain.tester.take_snapshot()
        lost = service.anchor_now()["anchored"]
        chain.tester.revert_to_snapshot(snapshot)
        chain.tester.mine_blocks(1)
        out = service.refresh()
        assert out["dropped"] == [lost["tree_size"]]
        [again] = out["reanchored"]
        assert again["tree_size"] == lost["tree_size"] and again["root"] == lost["root"]
        assert again["tx"] != lost["tx"] and again["replaces"] == lost["tx"]
        statuses = {r.tx: r.status for r in service.records()}
        assert statuses == {lost["tx"]: "dropped", again["tx"]: "pending"}
        ledger = node.ledger
        actions = [ledger.entry(i).as_dict() for i in range(ledger.size)]
        dropped = [e for e in actions if e["action"] == "ledger.anchor_dropped"]
        assert [d["details"]["tx"] for d in dropped] == [lost["tx"]]
        assert chain.anchor.read(lost["tree_size"]).tx == again["tx"]  # type: ignore[union-attr]
        # The dropped anchoring and the re-anchoring are the service's own entries: nothing new to anchor.
        assert service.tick()["due"] == "no new entries since the last anchoring"
    finally:
        node.close()


def test_a_dropped_size_not_anchored_again_yet_is_anchored_by_the_next_refresh(env: Env) -> None:
    """The drop was recorded but anchoring it again failed (the chain went away in between)."""
    snapshot = env.chain.tester.take_snapshot()
    lost = env.service.anchor_now()["anchored"]
    env.chain.tester.revert_to_snapshot(snapshot)
    [rec] = env.service.records()
    env.service.index.update(rec, status="dropped")
    out = env.service.refresh()
    assert out["checked"] == 0 and out["dropped"] == []
    [again] = out["reanchored"]
    assert (again["tree_size"], again["replaces"]) == (lost["tree_size"], lost["tx"])
    assert env.service.refresh()["reanchored"] == []  # covered now


# -- status and verify -------------------------------------------------------------------------------------
def test_status_and_verify(env: Env) -> None:
    assert env.service.status()["last_anchor"] is None
    env.service.anchor_now()
    env.append(2)
    env.service.anchor_now()
    st = env.service.status()
    assert st["configured"] and st["chain"] == "ethereum" and st["contract"] == env.chain.contract
    assert st["anchored_size"] == env.node.ledger.size - 1 and st["unanchored_entries"] == 0
    assert st["counts"] == {"pending": 0, "confirmed": 2, "dropped": 0}
    assert st["last_anchor_age_seconds"] is not None and st["last_anchor_age_seconds"] < 60
    rows = env.service.verify()
    assert [r["ok"] for r in rows] == [True, True] and all(r["problem"] is None for r in rows)


def test_verify_names_a_chain_that_disagrees_with_the_ledger(env: Env) -> None:
    size = env.node.ledger.size
    sent = env.chain.anchor.anchor(size, b"\x42" * 32)  # the chain holds another root for our size
    env.service.index.append(_record(env, size, sent.tx))  # while our record says our root
    [row] = env.service.verify()
    assert not row["ok"] and "holds root 4242424242424242.." in row["problem"]


def _record(env: Env, size: int, tx: str) -> Any:
    from ledger.anchors import AnchorRecord

    return AnchorRecord(
        chain="ethereum",
        network=env.chain.anchor.network,
        contract=env.chain.contract,
        tree_size=size,
        root=env.node.ledger.root(size).hex(),
        tx=tx,
        block=None,
        status="pending",
        time="2026-01-01T00:00:00Z",
    )


# -- configuration -----------------------------------------------------------------------------------------
def test_not_configured_says_how_to_configure(template: Path) -> None:
    with Node.open(load_settings(node={"data_dir": template}), readonly=True) as node:
        service = node.anchoring
        assert not service.configured and service.status()["configured"] is False
        with pytest.raises(AnchoringNotConfigured, match=r"set anchor\.chain to ethereum or fabric"):
            service.anchor_now()


def test_ethereum_settings_name_what_is_missing(tmp_path: Path) -> None:
    s = load_settings(anchor={"chain": "ethereum"}).anchor
    with pytest.raises(AnchoringNotConfigured, match=r"anchor\.ethereum\.rpc_url and contract is unset"):
        build_anchor(s, tmp_path)
    s = load_settings(
        anchor={
            "chain": "ethereum",
            "ethereum": {"rpc_url": "http://127.0.0.1:1", "contract": "0x" + "11" * 20},
        }
    ).anchor
    with pytest.raises(AnchorError, match=r"anchor-ethereum.key is missing"):
        build_anchor(s, tmp_path)
    key = tmp_path / "keys" / "anchor-ethereum.key"
    key.parent.mkdir()
    key.write_text("0x" + "01" * 32)
    os.chmod(key, 0o644)
    with pytest.raises(AnchorError, match="chmod 600"):
        build_anchor(s, tmp_path)
    os.chmod(key, 0o600)
    assert isinstance(build_anchor(s, tmp_path), EthereumAnchor)


def test_fabric_settings_name_what_is_missing(tmp_path: Path) -> None:
    s = load_settings(anchor={"chain": "fabric", "fabric": {"endpoint": "127.0.0.1:7051"}}).anchor
    with pytest.raises(AnchoringNotConfigured, match=r"anchor\.fabric\.channel, anchor\.fabric\.chaincode"):
        build_anchor(s, tmp_path)


def test_fabric_settings_reach_a_peer_over_mutual_tls(tmp_path: Path) -> None:
    from support.fabric_gateway import FabricGateway, make_identity

    org = make_identity("Org1MSP", "appliance-node")
    server = make_identity("PeerOrgMSP", "peer0.org1.example.com", hosts=["peer0.org1.example.com"])
    client = make_identity("Org1MSP", "appliance-node-tls")
    files = {
        "cert_file": org.cert_pem,
        "key_file": org.key_pem,
        "tls_ca_file": server.cert_pem,
        "tls_client_cert_file": client.cert_pem,
        "tls_client_key_file": client.key_pem,
    }
    for name, pem in files.items():
        (tmp_path / name).write_bytes(pem)
        os.chmod(tmp_path / name, 0o600)
    with FabricGateway(members={"Org1MSP": [org.cert_pem]}, tls=server, tls_client_ca=client.cert_pem) as gw:
        fabric: dict[str, Any] = {
            "endpoint": gw.endpoint,
            "channel": "anchors",
            "chaincode": "anchor",
            "msp_id": "Org1MSP",
            "tls_server_name": "peer0.org1.example.com",
            **{name: str(tmp_path / name) for name in files},
        }
        s = load_settings(anchor={"chain": "fabric", "fabric": fabric}).anchor
        with build_anchor(s, tmp_path) as anchor:
            assert anchor.anchor(1, b"\x01" * 32).status == "confirmed"
        os.chmod(tmp_path / "tls_client_key_file", 0o640)
        with pytest.raises(AnchorError, match=r"TLS client key: .*chmod 600"):
            build_anchor(s, tmp_path)


def test_a_schedule_that_never_fires_is_refused() -> None:
    with pytest.raises(SettingsError, match="every_minutes and every_entries are both 0"):
        load_settings(anchor={"every_minutes": 0, "every_entries": 0})


def test_deploy_refuses_bad_input_before_touching_a_chain(env: Env, tmp_path: Path, dead_url: str) -> None:
    key = tmp_path / "account.key"
    key.write_text(env.chain.key)
    os.chmod(key, 0o644)
    with pytest.raises(AnchorError, match="deploys Ethereum contracts only"):
        env.service.deploy(chain="fabric", rpc_url=dead_url, key_file=key, actor="admin:test")
    with pytest.raises(AnchorError, match="chmod 600"):
        env.service.deploy(chain="ethereum", rpc_url=dead_url, key_file=key, actor="admin:test")
    os.chmod(key, 0o600)
    with pytest.raises(AnchorUnavailable, match="unreachable"):
        env.service.deploy(chain="ethereum", rpc_url=dead_url, key_file=key, actor="admin:test")
    assert env.service.deployment() is None and env.entries("ledger.anchor_deployed") == []


# -- HTTP -------------------------------------------------------------------------------------------------
@pytest.fixture
def http(env: Env) -> Any:
    from appliance.keys import ApiKeyStore

    keys = ApiKeyStore(env.node.paths(env.node.settings.data_dir)["api_keys"])
    tokens = {role: keys.issue(role)[1] for role in ("admin", "auditor", "agent")}
    client = create_app(env.node.settings, env.node).test_client()
    return client, {r: {"Authorization": f"Bearer {t}"} for r, t in tokens.items()}


def test_http_anchor_now_and_list(env: Env, http: Any) -> None:
    client, auth = http
    resp = client.post("/v1/ledger/anchors", headers=auth["admin"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["anchored"]["tree_size"] == body["tree_size"] and body["anchored"]["ledger_seq"] > 0
    [entry] = env.entries("ledger.anchored")
    assert entry["actor"].startswith("admin:") and entry["request_id"] == resp.headers["X-Request-Id"]
    listed = client.get("/v1/ledger/anchors", headers=auth["auditor"]).get_json()
    assert [a["tx"] for a in listed["anchors"]] == [body["anchored"]["tx"]]
    assert listed["status"]["anchored_size"] == body["tree_size"]
    assert (
        client.get("/v1/ledger/anchors?status=dropped", headers=auth["auditor"]).get_json()["anchors"] == []
    )
    bad = client.get("/v1/ledger/anchors?limit=0", headers=auth["auditor"])
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert client.post("/v1/ledger/anchors", headers=auth["auditor"]).status_code == 403


def _problem(resp: Any, status: int, slug: str) -> dict[str, Any]:
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, text
    assert resp.mimetype == "application/problem+json" and "Traceback" not in text
    body = json.loads(text)
    assert body["type"].endswith("/" + slug)
    return body


def test_http_maps_the_anchor_errors(env: Env, http: Any, dead_url: str) -> None:
    client, auth = http
    env.service._anchor = EthereumAnchor.connect(dead_url, env.chain.contract, env.chain.key, timeout=2)
    resp = client.post("/v1/ledger/anchors", headers=auth["admin"])
    body = _problem(resp, 503, "anchor-unavailable")
    assert resp.headers["Retry-After"] == "30" and dead_url in body["detail"]
    stranger = env.chain.tester.backend.account_keys[1].to_hex()
    env.service._anchor = EthereumAnchor(env.chain.w3, env.chain.contract, stranger)
    body = _problem(client.post("/v1/ledger/anchors", headers=auth["admin"]), 409, "anchor-rejected")
    assert "caller is not the owner" in body["detail"]
    env.service._anchor = env.chain.anchor
    env.chain.anchor.anchor(env.node.ledger.size, b"\x42" * 32)
    _problem(client.post("/v1/ledger/anchors", headers=auth["admin"]), 409, "anchor-mismatch")
    assert env.service.records() == []


def test_http_when_anchoring_is_not_configured(template: Path, tmp_path: Path) -> None:
    path = tmp_path / "plain"
    shutil.copytree(template, path)
    settings = load_settings(node={"data_dir": path})
    with Node.open(settings) as node:
        from appliance.keys import ApiKeyStore

        token = ApiKeyStore(node.paths(path)["api_keys"]).issue("admin")[1]
        client = create_app(settings, node).test_client()
        auth = {"Authorization": f"Bearer {token}"}
        body = _problem(client.post("/v1/ledger/anchors", headers=auth), 409, "anchoring-refused")
        assert "set anchor.chain" in body["detail"]
        listed = client.get("/v1/ledger/anchors", headers=auth).get_json()
        assert listed["status"]["configured"] is False and listed["anchors"] == []


# -- CLI ----------------------------------------------------------------------------------------------------
def test_cli_status_on_an_unconfigured_node(template: Path) -> None:
    result = CliRunner().invoke(anchor_cli, ["status"], obj={"data_dir": str(template)})
    assert result.exit_code == 0, result.output
    assert "anchoring is not configured" in result.output
    as_json = CliRunner().invoke(anchor_cli, ["status", "--json"], obj={"data_dir": str(template)})
    assert json.loads(as_json.output)["status"]["configured"] is False


def test_cli_run_and_verify_without_configuration_exit_2(template: Path) -> None:
    for cmd in (["run"], ["verify"]):
        result = CliRunner().invoke(anchor_cli, cmd, obj={"data_dir": str(template)})
        assert result.exit_code == 2, result.output
        assert "set anchor.chain" in result.output and "Traceback" not in result.output
