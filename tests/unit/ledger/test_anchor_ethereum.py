"""The Ethereum anchor against an in-process chain (eth-tester on py-evm): the real contract, real
transactions signed with a local key, real reverts; no RPC node, so each test takes milliseconds."""

from __future__ import annotations

import hashlib
import shutil
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("eth_tester")

from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from ledger.anchors import (
    AnchorError,
    AnchorIndex,
    AnchorRecord,
    AnchorRejected,
    AnchorUnavailable,
    OnChain,
    _compile,
)
from ledger.anchors.ethereum import READ_ABI, EthereumAnchor, check_onchain, endpoint_name


def _root(n: int) -> bytes:
    return hashlib.sha256(f"root {n}".encode()).digest()


@dataclass
class Chain:
    tester: EthereumTester
    w3: Web3
    keys: list[str]  # hex private keys of funded accounts

    def anchor(self, contract: str, key_index: int = 0, **kwargs: Any) -> EthereumAnchor:
        return EthereumAnchor(self.w3, contract, self.keys[key_index], **kwargs)


@pytest.fixture
def chain() -> Chain:
    tester = EthereumTester(PyEVMBackend())
    keys = [k.to_hex() for k in tester.backend.account_keys[:3]]
    return Chain(tester, Web3(EthereumTesterProvider(tester)), keys)


@pytest.fixture
def contract(chain: Chain) -> str:
    return EthereumAnchor.deploy(chain.w3, chain.keys[0])


# -- the contract and its build ---------------------------------------------------------------------------
def test_artifact_matches_the_source_and_read_abi_is_part_of_it() -> None:
    art = _compile.load_artifact()
    assert art["source_sha256"] == hashlib.sha256(_compile.SOURCE.read_bytes()).hexdigest()
    assert art["bytecode"].startswith("0x") and art["vyper_version"].startswith("0.4")
    names = {(e["type"], e.get("name")): e for e in art["abi"]}
    for item in READ_ABI:
        compiled = names[(item["type"], item["name"])]
        assert compiled["inputs"] == item["inputs"]
        assert compiled.get("outputs") == item.get("outputs")


def test_a_stale_or_missing_artifact_is_compiled_again(tmp_path: Path) -> None:
    source = tmp_path / "Anchor.vy"
    shutil.copy(_compile.SOURCE, source)
    artifact = tmp_path / "Anchor.json"
    first = _compile.load_artifact(artifact, source)
    assert artifact.exists() and first["source_sha256"] == _compile.source_sha256(source)
    source.write_text(source.read_text() + "\n# a comment changes the source hash\n")
    second = _compile.load_artifact(artifact, source)
    assert second["source_sha256"] != first["source_sha256"]
    assert second["source_sha256"] == _compile.source_sha256(source)
    artifact.write_text("{not json")
    assert _compile.load_artifact(artifact, source)["source_sha256"] == second["source_sha256"]


def test_a_contract_that_does_not_compile_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "Anchor.vy"
    bad.write_text("@external\ndef anchor(:\n")
    with pytest.raises(AnchorError, match="does not compile"):
        _compile.load_artifact(tmp_path / "Anchor.json", bad)


# -- deploy, anchor, read back ----------------------------------------------------------------------------
def test_deploy_makes_the_deployer_the_owner(chain: Chain) -> None:
    dep = EthereumAnchor.deploy_contract(chain.w3, chain.keys[1])
    assert Web3.is_checksum_address(dep.address) and dep.block >= 1 and dep.tx.startswith("0x")
    info = chain.anchor(dep.address, 1).info()
    assert info["owner"] == dep.owner == info["account"]
    assert info["account_is_owner"] is True
    assert info["latest_size"] == 0
    assert info["chain_id"] == chain.w3.eth.chain_id == dep.chain_id


def test_anchor_and_read_back(chain: Chain, contract: str) -> None:
    a = chain.anchor(contract)
    assert a.read(5) is None and a.latest_size() == 0
    rec = a.anchor(5, _root(5))
    assert (rec.chain, rec.network, rec.contract) == ("ethereum", str(chain.w3.eth.chain_id), contract)
    assert (rec.tree_size, rec.root, rec.status) == (5, _root(5).hex(), "confirmed")
    assert rec.tx.startswith("0x") and len(rec.tx) == 66 and rec.block is not None
    assert a.read(5) == OnChain(5, _root(5), rec.tx, rec.block)
    assert a.latest_size() == 5
    rec2 = a.anchor(9, _root(9))
    assert a.read(9) == OnChain(9, _root(9), rec2.tx, rec2.block)
    assert a.read(5) is not None and a.read(7) is None and a.latest_size() == 9
    assert AnchorRecord.from_dict(rec2.as_dict()) == rec2


def test_confirmations_come_with_blocks(chain: Chain, contract: str) -> None:
    a = chain.anchor(contract, confirmations=3)
    rec = a.anchor(4, _root(4))
    assert rec.status == "pending"
    chain.tester.mine_blocks(1)
    assert a.refresh(rec).status == "pending"
    chain.tester.mine_blocks(1)
    assert a.refresh(rec) == replace(rec, status="confirmed")


def test_only_the_owner_may_anchor(chain: Chain, contract: str) -> None:
    stranger = chain.anchor(contract, key_index=2)
    with pytest.raises(AnchorRejected, match="caller is not the owner"):
        stranger.anchor(3, _root(3))
    assert stranger.latest_size() == 0


@pytest.mark.parametrize("size", [7, 6])
def test_tree_size_must_grow(chain: Chain, contract: str, size: int) -> None:
    a = chain.anchor(contract)
    a.anchor(7, _root(7))
    with pytest.raises(AnchorRejected, match="tree size must grow"):
        a.anchor(size, _root(100))
    assert a.read(7) is not None and a.read(7).root == _root(7)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("size", "root", "match"),
    [
        (0, _root(0), "1 to 2"),
        (2**64, _root(0), "1 to 2"),
        (3, b"short", "32 bytes"),
        (3, bytes(32), "not all zero"),
    ],
)
def test_bad_arguments_never_reach_the_chain(
    chain: Chain, contract: str, size: int, root: bytes, match: str
) -> None:
    before = chain.w3.eth.block_number
    with pytest.raises(AnchorError, match=match):
        chain.anchor(contract).anchor(size, root)
    assert chain.w3.eth.block_number == before


def test_a_bad_key_is_refused_without_echoing_it(chain: Chain, contract: str) -> None:
    secret = "zz" + "ab" * 31
    with pytest.raises(AnchorError) as info:
        EthereumAnchor(chain.w3, contract, secret)
    assert secret not in str(info.value) and "hex" in str(info.value)
    assert "key" not in repr(chain.anchor(contract)).lower().replace("anchor(", "")


def test_no_contract_at_the_address(chain: Chain) -> None:
    empty = chain.anchor("0x" + "11" * 20)
    with pytest.raises(AnchorError, match="no contract"):
        empty.info()
    with pytest.raises(AnchorError, match="no anchor contract answers"):
        empty.latest_size()


def test_a_configured_chain_id_is_enforced(chain: Chain, contract: str) -> None:
    with pytest.raises(AnchorError, match="configured for chain 1"):
        chain.anchor(contract, chain_id=1).anchor(1, _root(1))


# -- reorganisations ------------------------------------------------------------------------------------
def test_a_reorganisation_drops_the_anchor_and_it_can_be_anchored_again(chain: Chain, contract: str) -> None:
    a = chain.anchor(contract, confirmations=2)
    kept = a.anchor(3, _root(3))
    snapshot = chain.tester.take_snapshot()
    lost = a.anchor(8, _root(8))
    assert a.read(8) is not None
    chain.tester.revert_to_snapshot(snapshot)
    chain.tester.mine_blocks(2)
    assert a.refresh(lost).status == "dropped"
    assert a.refresh(kept).status == "confirmed"
    assert a.read(8) is None and a.latest_size() == 3
    again = a.anchor(8, _root(8))
    assert again.tx != lost.tx and a.read(8).root == _root(8)  # type: ignore[union-attr]


def test_refresh_refuses_a_record_of_another_contract(chain: Chain, contract: str) -> None:
    rec = chain.anchor(contract).anchor(2, _root(2))
    other = EthereumAnchor.deploy(chain.w3, chain.keys[0])
    with pytest.raises(AnchorError, match="not for this contract"):
        chain.anchor(other).refresh(rec)


# -- check_onchain: what the offline verifier asks with --rpc ----------------------------------------------
@pytest.fixture
def anchored(chain: Chain, contract: str) -> list[dict[str, Any]]:
    a = chain.anchor(contract)
    return [a.anchor(4, _root(4)).as_dict(), a.anchor(12, _root(12)).as_dict()]


def test_check_onchain_accepts_what_the_chain_holds(chain: Chain, anchored: list[dict[str, Any]]) -> None:
    assert check_onchain(anchored, chain.w3) == [(anchored[0], None), (anchored[1], None)]  # type: ignore[arg-type]


def test_check_onchain_names_a_different_root(chain: Chain, anchored: list[dict[str, Any]]) -> None:
    forged = {**anchored[1], "root": _root(99).hex()}
    [(item, reason)] = check_onchain([forged], chain.w3)  # type: ignore[arg-type]
    assert item is forged
    contract = anchored[1]["contract"]
    assert reason == (
        f"chain {chain.w3.eth.chain_id} contract {contract} holds root {_root(12).hex()[:16]}.. for size 12, "
        f"bundle says {_root(99).hex()[:16]}.."
    )


def test_check_onchain_names_a_missing_size_and_a_foreign_transaction(
    chain: Chain, anchored: list[dict[str, Any]]
) -> None:
    missing = {**anchored[1], "tree_size": 13}
    swapped = {**anchored[1], "tx": anchored[0]["tx"]}  # a real transaction, but it anchored size 4
    unknown = {**anchored[1], "tx": "0x" + "ab" * 32}
    results = dict((i, r) for i, (_, r) in enumerate(check_onchain([missing, swapped, unknown], chain.w3)))  # type: ignore[arg-type]
    assert results[0] is not None and results[0].endswith("holds no anchor for size 13")
    assert results[1] == f"transaction {anchored[0]['tx']} did not anchor size 12 with that root"
    assert (
        results[2] == f"transaction {unknown['tx']} (size 12) is in no block of chain {chain.w3.eth.chain_id}"
    )


def test_check_onchain_names_chain_and_record_problems(chain: Chain, anchored: list[dict[str, Any]]) -> None:
    other_chain = {**anchored[0], "network": "1"}
    fabric = {**anchored[0], "chain": "fabric"}
    broken = {"chain": "ethereum", "tree_size": "x"}
    no_contract = {**anchored[0], "contract": "0x" + "22" * 20}
    out = [r for _, r in check_onchain([other_chain, fabric, broken, no_contract], chain.w3)]  # type: ignore[arg-type]
    assert out[0] is not None and "the anchor is on chain 1" in out[0]
    assert out[1] is not None and out[1].startswith("not an Ethereum anchor")
    assert out[2] is not None and "not readable" in out[2]
    assert out[3] is not None and out[3].endswith("no contract at that address")


def test_check_onchain_after_a_reorganisation(chain: Chain, contract: str) -> None:
    a = chain.anchor(contract)
    snapshot = chain.tester.take_snapshot()
    rec = a.anchor(6, _root(6)).as_dict()
    assert check_onchain([rec], chain.w3) == [(rec, None)]  # type: ignore[arg-type]
    chain.tester.revert_to_snapshot(snapshot)
    [(_, reason)] = check_onchain([rec], chain.w3)  # type: ignore[arg-type]
    assert reason is not None and reason.endswith("holds no anchor for size 6")


def test_check_onchain_when_the_rpc_is_unreachable(anchored: list[dict[str, Any]], free_port: int) -> None:
    out = check_onchain(anchored, f"http://127.0.0.1:{free_port}/v3/secret-api-key", timeout=2)
    assert [i for i, _ in out] == anchored
    for _, reason in out:
        assert reason is not None and reason.startswith("RPC unreachable: ")
        assert f"127.0.0.1:{free_port}" in reason and "secret-api-key" not in reason


def test_check_onchain_refuses_a_url_that_is_not_http(anchored: list[dict[str, Any]]) -> None:
    [(_, reason), _] = check_onchain(anchored, "ftp://example.invalid/")
    assert reason is not None and "not http(s)" in reason


def test_an_unreachable_rpc_is_anchor_unavailable(free_port: int) -> None:
    url = f"http://127.0.0.1:{free_port}/v3/secret-api-key"
    a = EthereumAnchor.connect(url, "0x" + "11" * 20, "0x" + "01" * 32, timeout=2)
    with pytest.raises(AnchorUnavailable, match=f"RPC http://127.0.0.1:{free_port} unreachable") as info:
        a.anchor(1, _root(1))
    # What a log prints for it (the job runner logs the traceback) names neither the path nor its key.
    assert "secret-api-key" not in "".join(traceback.format_exception(info.value))
    with pytest.raises(AnchorUnavailable):
        EthereumAnchor.deploy(url, "0x" + "01" * 32, timeout=2)


def test_endpoint_name_hides_paths_and_credentials() -> None:
    assert endpoint_name("https://user:pw@mainnet.example.io/v3/KEY?x=1") == "https://mainnet.example.io"
    assert endpoint_name("http://127.0.0.1:8545") == "http://127.0.0.1:8545"


def test_records_round_trip_through_the_index(chain: Chain, contract: str, tmp_path: Path) -> None:
    a = chain.anchor(contract, confirmations=2)
    index = AnchorIndex(tmp_path / "anchors.jsonl")
    rec = a.anchor(3, _root(3))
    index.append(rec)
    chain.tester.mine_blocks(1)
    index.update(rec, status=a.refresh(rec).status)
    assert [r.status for r in index.records()] == ["confirmed"]


@pytest.fixture
def free_port() -> Iterator[int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port
