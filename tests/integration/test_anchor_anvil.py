"""Anchoring against a real Ethereum node: anvil on 127.0.0.1 (tests/support/anvil.py, `make tools`).

Deploy through the CLI, anchor on the scheduler's clock, lose the RPC and get it back, a transaction
that reverts when mined, and reorganisations that drop an anchor (anvil's evm_revert and
anvil_reorg), each followed end to end through the ledger entries, the index and the chain.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from support.anvil import Anvil, anvil_binary, free_port

from appliance.anchoring import AnchorService
from appliance.cli import cli
from appliance.doctor import run_checks
from appliance.node import Node
from appliance.scheduler import job_specs, start_scheduler
from appliance.settings import Settings, load_settings
from ledger.anchors import AnchorRejected, AnchorUnavailable
from ledger.anchors.ethereum import check_onchain

pytestmark = pytest.mark.integration

ANVIL_CHAIN_ID = 31337


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "node"
    Node.init(load_settings(node={"data_dir": path}))
    return path


@dataclass
class Site:
    data: Path
    config: Path
    key_file: Path
    rpc: str

    def settings(self) -> Settings:
        return load_settings(self.config, node={"data_dir": self.data})

    def cli(self, *args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, ["--config", str(self.config), "--data-dir", str(self.data), *args])
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    def entries(self, action: str) -> list[dict[str, Any]]:
        with Node.open(self.settings(), readonly=True) as node:
            ledger = node.ledger
            return [
                e for e in (ledger.entry(i).as_dict() for i in range(ledger.size)) if e["action"] == action
            ]


def _site(template: Path, tmp_path: Path, rpc: str, key: str, **anchor: Any) -> Site:
    data = tmp_path / "node"
    shutil.copytree(template, data)
    key_file = tmp_path / "account.key"
    key_file.write_text(key + "\n")
    os.chmod(key_file, 0o600)
    config = tmp_path / "appliance.yaml"
    settings = {"chain": "ethereum", "confirmations": 1, **anchor}
    config.write_text(yaml.safe_dump({"anchor": settings}))
    return Site(data, config, key_file, rpc)


def _account(rpc: str) -> str:
    return Anvil.attach(rpc).new_account()[1]


@pytest.fixture
def site(anvil: str, template: Path, tmp_path: Path) -> Site:
    return _site(template, tmp_path, anvil, _account(anvil))


def _deploy(site: Site) -> dict[str, Any]:
    site.cli("anchor", "deploy", "--chain", "ethereum", "--rpc", site.rpc, "--key", str(site.key_file))
    return json.loads((site.data / "anchor.json").read_text())


# -- deploy and anchor through the CLI ------------------------------------------------------------------
def test_deploy_run_status_verify_through_the_cli(site: Site) -> None:
    os.chmod(site.key_file, 0o644)
    out = site.cli("anchor", "deploy", "--rpc", site.rpc, "--key", str(site.key_file), code=2).output
    assert "chmod 600" in out
    os.chmod(site.key_file, 0o600)
    out = site.cli(
        "anchor", "deploy", "--rpc", site.rpc, "--key", str(site.key_file), "--chain-id", "1", code=2
    )
    assert f"serves chain {ANVIL_CHAIN_ID}, not chain 1" in out.output
    assert not (site.data / "anchor.json").exists()

    out = site.cli("anchor", "deploy", "--rpc", site.rpc, "--key", str(site.key_file), "--chain-id", "31337")
    assert (
        "deployed anchor contract 0x" in out.output and "ledger.anchor job anchors from now on" in out.output
    )
    dep = json.loads((site.data / "anchor.json").read_text())
    assert dep["chain_id"] == ANVIL_CHAIN_ID and dep["rpc_url"] == site.rpc
    assert (site.data / "anchor.json").stat().st_mode & 0o777 == 0o600
    installed = site.data / "keys" / "anchor-ethereum.key"
    assert installed.stat().st_mode & 0o777 == 0o600
    assert installed.read_text().strip() == site.key_file.read_text().strip()
    [deployed] = site.entries("ledger.anchor_deployed")
    assert deployed["details"]["contract"] == dep["contract"] and deployed["details"]["network"] == "31337"
    assert site.key_file.read_text().strip()[2:] not in json.dumps(deployed)
    again = site.cli("anchor", "deploy", "--rpc", site.rpc, "--key", str(site.key_file), code=2)
    assert "already deployed" in again.output and "--replace" in again.output

    out = site.cli("anchor", "run")
    assert "anchored size" in out.output
    [anchored] = site.entries("ledger.anchored")
    d = anchored["details"]
    assert (d["chain"], d["network"], d["contract"]) == ("ethereum", "31337", dep["contract"])
    assert d["tx"].startswith("0x") and d["block"] > dep["block"] and d["status"] == "confirmed"
    assert site.cli("anchor", "run").output.startswith("anchored size")  # the log grew by that entry

    status = json.loads(site.cli("anchor", "status", "--json").output)
    assert status["status"]["configured"] and status["status"]["counts"]["confirmed"] == 2
    assert status["status"]["rpc"] == site.rpc and status["status"]["network"] == "31337"
    assert "anchoring to ethereum 31337 contract" in site.cli("anchor", "status").output
    verify = site.cli("anchor", "verify")
    assert "2 of 2 anchorings verified on chain" in verify.output
    assert [r for _, r in check_onchain(status["anchors"], site.rpc)] == [None, None]

    checks = {c.name: c for c in run_checks(site.settings())}
    assert checks["anchors"].status == "ok", checks["anchors"].detail
    assert f"RPC {site.rpc} at block" in checks["anchors"].detail


def test_verify_exits_1_when_the_chain_disagrees(site: Site) -> None:
    _deploy(site)
    site.cli("anchor", "run")
    index = site.data / "anchors.jsonl"
    line = json.loads(index.read_text().splitlines()[-1])
    # A record the chain does not back: the index says the size is anchored with another transaction.
    forged = {**line, "tree_size": line["tree_size"] - 1, "root": "00" * 32, "tx": "0x" + "ab" * 32}
    with open(index, "a") as f:
        f.write(json.dumps(forged) + "\n")
    out = site.cli("anchor", "verify", code=1).output
    assert "FAIL" in out and "1 of 2 anchorings verified" in out


# -- the scheduler ---------------------------------------------------------------------------------------
def test_the_scheduler_anchors_on_its_own(anvil: str, template: Path, tmp_path: Path) -> None:
    site = _site(
        template, tmp_path, anvil, _account(anvil), check_seconds=1, every_entries=2, every_minutes=0
    )
    _deploy(site)
    node = Node.open(site.settings())
    try:
        specs = [s for s in job_specs(node, {}) if s.id == "ledger.anchor"]
        assert len(specs) == 1
        scheduler = start_scheduler(node, specs)
        try:
            first = _wait_for(site, 1)  # the first anchoring needs no new entries beyond what is there
            node.record("admin:test", "test.probed")
            time.sleep(2.5)
            assert len(site.entries("ledger.anchored")) == 1  # one new entry: not due (every_entries 2)
            node.record("admin:test", "test.probed")
            second = _wait_for(site, 2)
            assert second["details"]["tree_size"] == first["details"]["tree_size"] + 3
        finally:
            scheduler.shutdown(wait=True)
    finally:
        node.close()
    runs = [r for r in Node.open(site.settings(), readonly=True).store.proactive.job_runs("ledger.anchor")]
    assert runs and all(r["status"] == "succeeded" for r in runs)


def _wait_for(site: Site, count: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = site.entries("ledger.anchored")
        if len(found) >= count:
            return found[count - 1]
        assert time.monotonic() < deadline, f"only {len(found)} anchorings after {timeout} s"
        time.sleep(0.2)


# -- the chain goes away ---------------------------------------------------------------------------------
@pytest.fixture
def own_anvil(tmp_path: Path) -> Iterator[Anvil]:
    if anvil_binary() is None:
        pytest.skip("anvil is not installed (.tools/node_modules/.bin/anvil); `make tools` installs it")
    node = Anvil.start(free_port(), state=tmp_path / "chain-state.json")
    try:
        yield node
    finally:
        node.close()


def test_an_unreachable_rpc_never_blocks_appends_and_a_retry_succeeds(
    own_anvil: Anvil, template: Path, tmp_path: Path
) -> None:
    site = _site(
        template,
        tmp_path,
        own_anvil.url,
        own_anvil.new_account()[1],
        retry_backoff_seconds=0.5,
        every_entries=1,
        ethereum={"timeout_seconds": 1},
    )
    _deploy(site)
    with Node.open(site.settings()) as node:
        service = node.anchoring
        assert service.anchor_now()["anchored"] is not None

        # Killed: connection refused.
        own_anvil.stop()
        node.record("admin:test", "test.probed")
        with pytest.raises(AnchorUnavailable, match=rf"RPC http://127\.0\.0\.1:{own_anvil.port} unreachable"):
            service.tick()
        size = node.ledger.size
        for i in range(20):  # the ledger keeps accepting entries while the chain is down
            node.record("admin:test", "test.probed", details={"i": i})
        assert node.ledger.size == size + 20
        assert service.tick()["skipped"].startswith("backing off after 1 failure(s)")
        st = service.status()
        assert st["failures"] == 1 and "unreachable" in st["last_error"]
        checks = {c.name: c for c in run_checks(site.settings())}
        assert checks["anchors"].status == "fail" and "unreachable" in checks["anchors"].detail

        # Back (same chain, from its state file): the retry after the backoff anchors everything.
        own_anvil.launch()
        time.sleep(0.6)
        out = service.tick()
        assert out["anchored"]["tree_size"] >= size + 20
        assert service.status()["failures"] == 0
        assert [r["ok"] for r in service.verify()] == [True, True]

        # Hung (SIGSTOP): every request times out after timeout_seconds, and nothing is sent.
        node.record("admin:test", "test.probed")
        own_anvil.suspend()
        try:
            started = time.monotonic()
            with pytest.raises(AnchorUnavailable, match="timed out"):
                service.anchor_now()
            assert time.monotonic() - started < 10
        finally:
            own_anvil.resume()
        service._save_state(replace(service._load_state(), next_attempt=time.time() - 1))
        assert service.tick()["anchored"] is not None
        assert len(service.records()) == 3


# -- a transaction that reverts when mined -------------------------------------------------------------------
def test_a_transaction_reverted_in_its_block_is_rejected_then_adopted(site: Site) -> None:
    """Another sender (a second process with the same key) anchors our checkpoint in the same block
    first: ours passes gas estimation, is mined, reverts; the retry finds the size held with our root."""
    from web3 import HTTPProvider, Web3

    dep = _deploy(site)
    rpc = Anvil.attach(site.rpc)
    with Node.open(site.settings()) as node:
        service = node.anchoring
        cp = node.ledger.sign_checkpoint().checkpoint
        w3 = Web3(HTTPProvider(site.rpc))
        key = site.key_file.read_text().strip()
        account = w3.eth.account.from_key(key)
        from ledger.anchors._compile import load_artifact

        contract = w3.eth.contract(address=dep["contract"], abi=load_artifact()["abi"])
        rpc.rpc("evm_setAutomine", False)
        try:
            tx = contract.functions.anchor(cp.tree_size, cp.root_hash).build_transaction(
                {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
            )
            racer = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            miner = threading.Timer(1.0, rpc.rpc, ("evm_mine",))
            miner.start()
            with pytest.raises(AnchorRejected, match=r"reverted in block \d+: anchor: tree size must grow"):
                service.anchor_now()
            miner.join()
        finally:
            rpc.rpc("evm_setAutomine", True)
        assert service.records() == [] and site.entries("ledger.anchored") == []
        assert service.status()["failures"] == 1
        out = service.anchor_now()
        assert out["anchored"] is None and "anchored already" in out["reason"]
        [rec] = service.records()
        assert rec.tx == Web3.to_hex(racer) and rec.tree_size == cp.tree_size
        [entry] = site.entries("ledger.anchored")
        assert entry["details"]["adopted"] is True
        assert service.status()["failures"] == 0


# -- reorganisations -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["evm_revert", "anvil_reorg"])
def test_a_reorganisation_drops_an_anchor_and_it_is_anchored_again(site: Site, how: str) -> None:
    _deploy(site)
    rpc = Anvil.attach(site.rpc)
    config = yaml.safe_load(site.config.read_text())
    config["anchor"]["confirmations"] = 3
    site.config.write_text(yaml.safe_dump(config))
    with Node.open(site.settings()) as node:
        service: AnchorService = node.anchoring
        snapshot = rpc.rpc("evm_snapshot")
        lost = service.anchor_now()["anchored"]
        assert lost["status"] == "pending"
        assert check_onchain([{k: lost[k] for k in _RECORD}], site.rpc)[0][1] is None
        if how == "evm_revert":
            assert rpc.rpc("evm_revert", snapshot) is True
            rpc.mine(1)
        else:
            rpc.rpc("anvil_reorg", 1, [])
        out = service.refresh()
        assert out["dropped"] == [lost["tree_size"]]
        [again] = out["reanchored"]
        assert (again["tree_size"], again["root"], again["replaces"]) == (
            lost["tree_size"],
            lost["root"],
            lost["tx"],
        )
        [dropped] = site.entries("ledger.anchor_dropped")
        assert dropped["details"]["tx"] == lost["tx"] and dropped["details"]["tree_size"] == lost["tree_size"]
        assert [e["details"]["tx"] for e in site.entries("ledger.anchored")] == [lost["tx"], again["tx"]]
        # On chain: the size is held again, by the new transaction; the old one is in no block.
        [(_, old), (_, new)] = check_onchain(
            [{k: lost[k] for k in _RECORD}, {k: again[k] for k in _RECORD}], site.rpc
        )
        assert old == f"transaction {lost['tx']} (size {lost['tree_size']}) is in no block of chain 31337"
        assert new is None
        rpc.mine(3)
        assert service.refresh()["confirmed"] == 1
        assert {r.tx: r.status for r in service.records()} == {
            lost["tx"]: "dropped",
            again["tx"]: "confirmed",
        }
        assert [r["ok"] for r in service.verify()] == [True]
        checks = {c.name: c for c in run_checks(site.settings())}
        assert checks["anchors"].status == "ok", checks["anchors"].detail


_RECORD = ("chain", "network", "contract", "tree_size", "root", "tx", "block", "status", "time")
