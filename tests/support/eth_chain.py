"""An in-process Ethereum chain (eth-tester on py-evm) with the anchor contract deployed on it.

For tests that need a real chain to anchor to but not a node process: the contract, the signing
and the reverts are real; blocks are mined on each transaction (``tester.mine_blocks`` adds more).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.anchors._imports import keep_recursion_limit
from ledger.anchors.ethereum import EthereumAnchor

# py-evm raises the recursion limit process-wide; the server tests sharing this process need it as it was.
with keep_recursion_limit():
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider, Web3

__all__ = ["InProcessChain", "in_process_chain"]


@dataclass
class InProcessChain:
    tester: EthereumTester
    w3: Web3
    key: str  # hex private key of the owner account
    contract: str
    anchor: EthereumAnchor


def in_process_chain(confirmations: int = 1) -> InProcessChain:
    """A fresh chain; the owner is a random account funded by eth-tester's first (well-known) one."""
    tester = EthereumTester(PyEVMBackend())
    w3 = Web3(EthereumTesterProvider(tester))
    owner = w3.eth.account.create()
    key = owner.key.to_0x_hex()
    tester.send_transaction(
        {"from": tester.get_accounts()[0], "to": owner.address, "value": 10**21, "gas": 21_000}
    )
    contract = EthereumAnchor.deploy(w3, key)
    anchor = EthereumAnchor(w3, contract, key, confirmations=confirmations, poll_seconds=0.02)
    return InProcessChain(tester, w3, key, contract, anchor)
