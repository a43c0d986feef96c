"""Anchoring checkpoints to Ethereum: the ``Anchor.vy`` contract driven through web3.

The node signs every transaction locally with its own account key and sends it raw, so the RPC
endpoint (a local node, a provider) never holds a key and needs no unlocked account. A transaction
counts once it is mined; ``confirmations`` blocks on top make it ``confirmed``; a chain
reorganisation that removes it makes it ``dropped`` and the node anchors that size again.

Failures map onto the three anchor errors: the endpoint cannot be reached or does not answer in time
→ :class:`AnchorUnavailable` (retry later); the chain refuses (a revert with its reason, too little
ether for gas, a nonce clash) → :class:`AnchorRejected`; the chain holds another root for a size →
:class:`AnchorMismatch`. Messages name the endpoint by scheme, host and port only: provider URLs
often carry an API key in their path.

web3 is imported here and nowhere else in ``ledger``; the offline verifier imports this module only
when asked to check anchors on chain (``--rpc``), and :func:`check_onchain` never compiles the
contract (it reads through the fixed :data:`READ_ABI`), so verifying needs no vyper.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ledger.anchors._imports import keep_recursion_limit

# web3 pulls in py_ecc, which raises the interpreter's recursion limit to 100,000 for the whole
# process at import; a server worker that imported it would then overflow the C stack on deeply
# nested input instead of refusing it. Nothing here recurses deeply: keep the limit as it was.
with keep_recursion_limit():
    from web3 import Web3
    from web3.exceptions import (
        BadFunctionCallOutput,
        BadResponseFormat,
        BlockNotFound,
        ContractLogicError,
        MultipleFailedRequests,
        ProviderConnectionError,
        RequestTimedOut,
        TimeExhausted,
        TooManyRequests,
        TransactionNotFound,
        Web3Exception,
        Web3RPCError,
    )

from ledger.anchors.base import (
    AnchorError,
    AnchorRecord,
    AnchorRejected,
    AnchorUnavailable,
    OnChain,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress
    from web3.contract import Contract

__all__ = ["READ_ABI", "Deployment", "EthereumAnchor", "check_onchain", "endpoint_name"]

CHAIN = "ethereum"
_MAX_SIZE = 2**64 - 1
_ZERO_ROOT = bytes(32)
_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")

#: What reading anchors back needs of the contract; a unit test keeps it a subset of the compiled ABI.
READ_ABI: list[dict[str, Any]] = [
    {
        "name": "Anchored",
        "type": "event",
        "anonymous": False,
        "inputs": [
            {"name": "tree_size", "type": "uint64", "indexed": True},
            {"name": "root", "type": "bytes32", "indexed": False},
            {"name": "anchored_at", "type": "uint256", "indexed": False},
        ],
    },
    {
        "name": "root_of",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "tree_size", "type": "uint64"}],
        "outputs": [{"name": "", "type": "bytes32"}],
    },
    {
        "name": "latest_size",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint64"}],
    },
    {
        "name": "owner",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "address"}],
    },
]

#: Transport failures: the endpoint is down, slow, or answered with something that is not JSON-RPC.
#: (requests' exceptions are OSErrors.)
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    ProviderConnectionError,
    RequestTimedOut,
    BadResponseFormat,
    MultipleFailedRequests,
    TooManyRequests,
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoint_name(rpc: str) -> str:
    """``http://host:port`` of an RPC URL: enough to say which endpoint, without a key in its path."""
    try:
        parts = urlsplit(rpc)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable RPC URL>"
    return f"{parts.scheme}://{host}{port}"


def _short(value: str | bytes, n: int = 16) -> str:
    text = value.hex() if isinstance(value, bytes) else value
    return text[:n] + ".." if len(text) > n else text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\"()]+")


def _transport_reason(exc: BaseException | None) -> str:
    """Why the endpoint could not be used, without the URL (its path or query may hold an API key)."""
    if exc is None:
        return "no answer"
    text = str(exc)
    found = _ERRNO.search(text)
    if found:
        return found.group(0).strip()
    if "timed out" in text.lower() or isinstance(exc, TimeoutError):
        return "timed out"
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"HTTP {response.status_code}"
    return type(exc).__name__


def _revert_reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    message = message.removeprefix("execution reverted: ").removeprefix("execution reverted")
    return message.strip(" :") or "reverted without a reason"


def _web3(rpc: str | Web3, timeout: float) -> tuple[Web3, str]:
    if isinstance(rpc, Web3):
        return rpc, "the given web3 provider"
    if not isinstance(rpc, str) or urlsplit(rpc).scheme not in ("http", "https"):
        raise AnchorError(
            f"RPC URL {endpoint_name(str(rpc))!r} is not http(s)://host:port; give the node's URL"
        )
    from web3 import HTTPProvider
    from web3.middleware import ExtraDataToPOAMiddleware

    # No web3 retries: the node's own backoff decides when to try again, and a down endpoint should
    # say so at once rather than after five silent attempts.
    provider = HTTPProvider(rpc, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
    w3 = Web3(provider)
    # Proof-of-authority chains (Clique, IBFT: the usual private networks) put 97 bytes in extraData.
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3, endpoint_name(rpc)


def _account(key: str | bytes) -> LocalAccount:
    """The node's account from a hex private key; the error never echoes the key."""
    from eth_account import Account

    try:
        text = key.decode("ascii") if isinstance(key, bytes) else str(key)
    except UnicodeDecodeError:
        text = ""
    text = text.strip()
    if not _KEY.match(text):
        raise AnchorError(
            "the Ethereum account key is not a private key in hex (64 hex digits, optionally 0x-prefixed, "
            "alone in its file)"
        )
    try:
        return Account.from_key(text if text.startswith("0x") else "0x" + text)
    except (ValueError, Web3Exception) as exc:
        raise AnchorError("the Ethereum account key is not a valid secp256k1 private key") from exc


def _checksum(address: object) -> ChecksumAddress:
    if not isinstance(address, str) or not Web3.is_address(address):
        raise AnchorError(f"{address!r} is not an Ethereum address (0x and 40 hex digits)")
    return Web3.to_checksum_address(address)


class _Unreachable(AnchorUnavailable):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@contextmanager
def _rpc(where: str, what: str) -> Iterator[None]:
    """Map what web3 raises onto the anchor errors, saying what was being done and where."""
    try:
        yield
    except AnchorError:
        raise
    except ContractLogicError as exc:
        raise AnchorRejected(f"{what}: the contract refused: {_revert_reason(exc)}") from exc
    except TimeExhausted as exc:
        raise AnchorUnavailable(f"{what}: not mined before the wait ran out ({where})") from exc
    except _UNREACHABLE as exc:
        # Not chained: the transport's own message holds the full URL, and the job log prints causes.
        reason = _transport_reason(exc)
        raise _Unreachable(f"{what}: RPC {where} unreachable ({reason})", reason) from None
    except Web3RPCError as exc:
        message = getattr(exc, "message", None) or _first_line(exc)
        raise AnchorRejected(f"{what}: the node at {where} refused: {message}") from exc
    except BadFunctionCallOutput as exc:
        raise AnchorError(
            f"{what}: no anchor contract answers at that address on {where} (wrong address or chain?)"
        ) from exc
    except Web3Exception as exc:
        raise AnchorError(f"{what}: {type(exc).__name__}: {_first_line(exc)}") from exc
    except Exception as exc:
        # In-process providers raise their own type for a revert (eth-tester: TransactionFailed).
        if str(exc).startswith("execution reverted"):
            raise AnchorRejected(f"{what}: the contract refused: {_revert_reason(exc)}") from exc
        raise


@dataclass(frozen=True)
class Deployment:
    """Where :meth:`EthereumAnchor.deploy_contract` put the contract."""

    address: str
    tx: str
    block: int
    chain_id: int
    owner: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "contract": self.address,
            "tx": self.tx,
            "block": self.block,
            "chain_id": self.chain_id,
            "owner": self.owner,
        }


class EthereumAnchor:
    """One deployed anchor contract, driven by the node's account (see :class:`ledger.anchors.Anchor`)."""

    chain = CHAIN

    def __init__(
        self,
        w3: Web3,
        contract: str,
        account_key: str | bytes,
        *,
        chain_id: int | None = None,
        confirmations: int = 1,
        receipt_timeout: float = 120.0,
        poll_seconds: float = 0.5,
        from_block: int = 0,
        where: str = "the given web3 provider",
    ) -> None:
        if confirmations < 1:
            raise AnchorError("confirmations must be at least 1 (the block holding the transaction)")
        self._w3 = w3
        self._address = _checksum(contract)
        self._account = _account(account_key)
        self._expected_chain = chain_id
        self._chain_id: int | None = None
        self.confirmations = confirmations
        self._receipt_timeout = receipt_timeout
        self._poll = poll_seconds
        self._from_block = from_block
        self._where = where
        self._contract: Contract = w3.eth.contract(address=self._address, abi=_abi())

    def __repr__(self) -> str:  # never the key
        return f"EthereumAnchor(contract={self._address}, account={self.account}, rpc={self._where})"

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        contract: str,
        account_key: str | bytes,
        *,
        chain_id: int | None = None,
        confirmations: int = 1,
        timeout: float = 10.0,
        receipt_timeout: float = 120.0,
        from_block: int = 0,
    ) -> EthereumAnchor:
        """An anchor over an HTTP(S) JSON-RPC endpoint; nothing is sent until it is used.

        ``chain_id``, when given, is checked on first use: a node pointed at the wrong network
        refuses to anchor there.
        """
        w3, where = _web3(rpc_url, timeout)
        return cls(
            w3,
            contract,
            account_key,
            chain_id=chain_id,
            confirmations=confirmations,
            receipt_timeout=receipt_timeout,
            from_block=from_block,
            where=where,
        )

    @classmethod
    def deploy_contract(
        cls,
        rpc: str | Web3,
        account_key: str | bytes,
        *,
        chain_id: int | None = None,
        timeout: float = 10.0,
        receipt_timeout: float = 120.0,
    ) -> Deployment:
        """Deploy ``Anchor.vy`` from the node's account (its owner from then on); waits for the receipt."""
        from ledger.anchors._compile import load_artifact

        w3, where = _web3(rpc, timeout)
        account = _account(account_key)
        artifact = load_artifact()
        with _rpc(where, "deploying the anchor contract"):
            actual = int(w3.eth.chain_id)
            if chain_id is not None and actual != chain_id:
                raise AnchorError(
                    f"RPC {where} serves chain {actual}, not chain {chain_id}; check the URL or --chain-id"
                )
            factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
            tx = factory.constructor().build_transaction(
                {
                    "from": account.address,
                    "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                    "chainId": actual,
                }
            )
            tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=receipt_timeout, poll_latency=0.2)
        if receipt["status"] != 1 or not receipt.get("contractAddress"):
            raise AnchorRejected(
                f"deploying the anchor contract: transaction {Web3.to_hex(tx_hash)} failed in block "
                f"{receipt['blockNumber']} (gas {receipt['gasUsed']} of {tx['gas']})"
            )
        return Deployment(
            address=_checksum(receipt["contractAddress"]),
            tx=Web3.to_hex(tx_hash),
            block=int(receipt["blockNumber"]),
            chain_id=actual,
            owner=account.address,
        )

    @classmethod
    def deploy(cls, rpc: str | Web3, account_key: str | bytes, **kwargs: Any) -> str:
        """Deploy the contract; its address (see :meth:`deploy_contract` for the transaction too)."""
        return cls.deploy_contract(rpc, account_key, **kwargs).address

    # -- the Anchor protocol ------------------------------------------------------------------
    @property
    def network(self) -> str:
        return str(self.chain_id)

    @property
    def contract(self) -> str:
        return self._address

    @property
    def account(self) -> str:
        """The node's account address (public; the key stays in this object)."""
        return str(self._account.address)

    @property
    def chain_id(self) -> int:
        """The endpoint's chain id, asked once; refuses an endpoint on another chain than configured."""
        if self._chain_id is None:
            with _rpc(self._where, "reading the chain id"):
                actual = int(self._w3.eth.chain_id)
            if self._expected_chain is not None and actual != self._expected_chain:
                raise AnchorError(
                    f"RPC {self._where} serves chain {actual}, but anchoring is configured for chain "
                    f"{self._expected_chain} (anchor.ethereum.chain_id); point rpc_url at the right network"
                )
            self._chain_id = actual
        return self._chain_id

    def anchor(self, tree_size: int, root: bytes) -> AnchorRecord:
        _check_anchor_args(tree_size, root)
        what = f"anchoring size {tree_size}"
        w3, sender = self._w3, self._account.address
        with _rpc(self._where, what):
            chain_id = self.chain_id
            call = self._contract.functions.anchor(tree_size, root)
            # Gas is estimated against the latest state, so a size that would not grow, or a key that
            # is not the owner's, is refused here with the contract's reason, before anything is sent.
            tx: dict[str, Any] = dict(
                call.build_transaction(
                    {
                        "from": sender,
                        "nonce": w3.eth.get_transaction_count(sender, "pending"),
                        "chainId": chain_id,
                    }
                )
            )
            tx_hash = Web3.to_hex(
                w3.eth.send_raw_transaction(self._account.sign_transaction(tx).raw_transaction)
            )
        try:
            with _rpc(self._where, f"{what} (transaction {tx_hash})"):
                receipt = w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=self._receipt_timeout, poll_latency=self._poll
                )
        except AnchorUnavailable as exc:
            raise AnchorUnavailable(
                f"{exc}; transaction {tx_hash} was sent and may still be mined: the next attempt finds it "
                "on chain if so"
            ) from exc
        block = int(receipt["blockNumber"])
        if receipt["status"] != 1:
            raise AnchorRejected(
                f"{what}: transaction {tx_hash} reverted in block {block}: {self._replay(tx, block)}"
            )
        with _rpc(self._where, what):
            confirmations = int(w3.eth.block_number) - block + 1
        status = "confirmed" if confirmations >= self.confirmations else "pending"
        return AnchorRecord(
            chain=CHAIN,
            network=str(chain_id),
            contract=self._address,
            tree_size=tree_size,
            root=root.hex(),
            tx=tx_hash,
            block=block,
            status=status,
            time=_now(),
        )

    def _replay(self, tx: dict[str, Any], block: int) -> str:
        """Why a mined transaction reverted: the same call replayed on the state its block left.

        The usual cause is a transaction earlier in the block (a larger size anchored first), so the
        state after the block says why; the state before it would let the call pass.
        """
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self._w3.eth.call(call, block_identifier=block)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the reason is a courtesy; the revert stands
            if isinstance(exc, ContractLogicError) or str(exc).startswith("execution reverted"):
                return _revert_reason(exc)
            return f"reason unknown ({type(exc).__name__})"
        return "reverted without a reason (the call succeeds when replayed: out of gas?)"

    def refresh(self, record: AnchorRecord) -> AnchorRecord:
        if record.chain != CHAIN or record.contract.lower() != self._address.lower():
            raise AnchorError(
                f"anchor record of {record.chain} {record.contract} is not for this contract {self._address}"
            )
        if record.status == "dropped":
            return record
        w3 = self._w3
        with _rpc(self._where, f"checking transaction {record.tx}"):
            if record.network != self.network:
                raise AnchorError(
                    f"anchor record is on chain {record.network}, "
                    f"RPC {self._where} serves chain {self.network}"
                )
            receipt = _receipt(w3, record.tx)
            if receipt is None:
                try:
                    pending = w3.eth.get_transaction(record.tx)  # type: ignore[arg-type]
                except TransactionNotFound:
                    pending = None
                if pending is not None and pending.get("blockNumber") is None:
                    return replace(record, status="pending", block=None)
                return replace(record, status="dropped")
            block = int(receipt["blockNumber"])
            if receipt["status"] != 1:  # re-mined after a reorganisation, and reverted this time
                return replace(record, status="dropped", block=block)
            confirmations = int(w3.eth.block_number) - block + 1
        status = "confirmed" if confirmations >= self.confirmations else "pending"
        return replace(record, status=status, block=block)

    def read(self, tree_size: int) -> OnChain | None:
        if not isinstance(tree_size, int) or not 0 <= tree_size <= _MAX_SIZE:
            raise AnchorError(f"tree size {tree_size!r} is not a uint64")
        with _rpc(self._where, f"reading the root anchored for size {tree_size}"):
            root = bytes(self._contract.functions.root_of(tree_size).call())
        if root == _ZERO_ROOT:
            return None
        tx, block = self._find_event(tree_size)
        return OnChain(tree_size=tree_size, root=root, tx=tx, block=block)

    def _find_event(self, tree_size: int) -> tuple[str | None, int | None]:
        """The transaction that anchored ``tree_size``, from the event log; (None, None) if the
        endpoint will not search the log (public providers cap the block range)."""
        try:
            with _rpc(self._where, "searching the Anchored events"):
                logs = list(
                    self._contract.events.Anchored().get_logs(
                        from_block=self._from_block, argument_filters={"tree_size": tree_size}
                    )
                )
        except AnchorRejected:
            return None, None
        if not logs:
            return None, None
        last = logs[-1]
        return Web3.to_hex(last["transactionHash"]), int(last["blockNumber"])

    def latest_size(self) -> int:
        with _rpc(self._where, "reading the latest anchored size"):
            return int(self._contract.functions.latest_size().call())

    # -- beyond the protocol --------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What an operator checks: chain, head block, owner vs our account, balance, latest size."""
        w3 = self._w3
        with _rpc(self._where, "reading the anchor contract"):
            chain_id = self.chain_id
            code = w3.eth.get_code(self._address)
            if not code:
                raise AnchorError(
                    f"no contract at {self._address} on chain {chain_id} ({self._where}); deploy one with "
                    "`appliance anchor deploy` or fix anchor.ethereum.contract"
                )
            owner = _checksum(self._contract.functions.owner().call())
            return {
                "rpc": self._where,
                "chain_id": chain_id,
                "head_block": int(w3.eth.block_number),
                "contract": self._address,
                "owner": owner,
                "account": self.account,
                "account_is_owner": owner == self.account,
                "balance_wei": int(w3.eth.get_balance(self._account.address)),
                "latest_size": int(self._contract.functions.latest_size().call()),
            }


def _abi() -> list[dict[str, Any]]:
    from ledger.anchors._compile import load_artifact

    return list(load_artifact()["abi"])


def _check_anchor_args(tree_size: int, root: bytes) -> None:
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or not 1 <= tree_size <= _MAX_SIZE:
        raise AnchorError(f"tree size {tree_size!r} cannot be anchored: it must be 1 to 2**64-1")
    if not isinstance(root, (bytes, bytearray)) or len(root) != 32 or bytes(root) == _ZERO_ROOT:
        raise AnchorError("the root to anchor must be 32 bytes (a SHA-256 Merkle root), not all zero")


def _receipt(w3: Web3, tx: str) -> Any:
    """The transaction's receipt if it is in the canonical chain now, else None.

    After a reorganisation some nodes answer from a stale index for a while; a receipt whose block
    hash is not the hash of the block now at that height is treated as gone.
    """
    try:
        receipt = w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
    except TransactionNotFound:
        return None
    try:
        block = w3.eth.get_block(receipt["blockNumber"])
    except BlockNotFound:
        return None
    return receipt if block["hash"] == receipt["blockHash"] else None


def check_onchain(
    anchors: list[dict[str, Any]], rpc: str, timeout: float = 10.0
) -> list[tuple[dict[str, Any], str | None]]:
    """For each anchor (an ``AnchorRecord.as_dict()``): None if the chain at ``rpc`` holds it, else why not.

    "Holds it" means: the endpoint serves the anchor's chain id, the contract returns the same root
    for that size, and the anchor's transaction is in a block of the canonical chain, succeeded, was
    sent to that contract and emitted ``Anchored`` for that size and root. Reads only; no key needed.
    """
    results: list[tuple[dict[str, Any], str | None]] = []
    try:
        w3, where = _web3(rpc, timeout)
    except AnchorError as exc:
        return [(a, str(exc)) for a in anchors]
    chain_id: int | None = None
    down: str | None = None
    contracts: dict[str, Contract] = {}
    for item in anchors:
        try:
            rec = AnchorRecord.from_dict(item)
        except AnchorError as exc:
            results.append((item, str(exc)))
            continue
        if rec.chain != CHAIN:
            results.append((item, f"not an Ethereum anchor (chain {rec.chain!r}); check it on its own chain"))
            continue
        if down is not None:
            results.append((item, down))
            continue
        try:
            if chain_id is None:
                with _rpc(where, "reading the chain id"):
                    chain_id = int(w3.eth.chain_id)
            results.append((item, _check_one(w3, where, chain_id, rec, contracts)))
        except AnchorUnavailable as exc:
            reason = exc.reason if isinstance(exc, _Unreachable) else str(exc)
            down = f"RPC unreachable: {where} ({reason})"
            results.append((item, down))
        except AnchorError as exc:
            results.append((item, str(exc)))
    return results


def _check_one(
    w3: Web3, where: str, chain_id: int, rec: AnchorRecord, contracts: dict[str, Contract]
) -> str | None:
    if rec.network != str(chain_id):
        return f"RPC {where} serves chain {chain_id}, the anchor is on chain {rec.network}; give its RPC"
    try:
        address = _checksum(rec.contract)
    except AnchorError as exc:
        return str(exc)
    contract = contracts.get(address)
    if contract is None:
        contract = contracts[address] = w3.eth.contract(address=address, abi=READ_ABI)
    where_ = f"chain {chain_id} contract {address}"
    try:
        expected = bytes.fromhex(rec.root)
    except ValueError:
        return f"the anchor's root {rec.root!r} is not hex"
    if not 1 <= rec.tree_size <= _MAX_SIZE:
        return f"the anchor's tree size {rec.tree_size} is not a uint64 above 0"
    with _rpc(where, f"reading {where_}"):
        if not w3.eth.get_code(address):
            return f"{where_}: no contract at that address"
        held = bytes(contract.functions.root_of(rec.tree_size).call())
    if held == _ZERO_ROOT:
        return f"{where_} holds no anchor for size {rec.tree_size}"
    if held != expected:
        return f"{where_} holds root {_short(held)} for size {rec.tree_size}, bundle says {_short(expected)}"
    with _rpc(where, f"reading transaction {rec.tx}"):
        receipt = _receipt(w3, rec.tx)
    if receipt is None:
        return f"transaction {rec.tx} (size {rec.tree_size}) is in no block of chain {chain_id}"
    if receipt["status"] != 1:
        return f"transaction {rec.tx} reverted in block {receipt['blockNumber']}; it anchored nothing"
    if str(receipt.get("to") or "").lower() != address.lower():
        return f"transaction {rec.tx} was sent to {receipt.get('to')}, not to contract {address}"
    from web3.logs import DISCARD

    events = contract.events.Anchored().process_receipt(receipt, errors=DISCARD)
    if not any(
        e["args"]["tree_size"] == rec.tree_size and bytes(e["args"]["root"]) == expected for e in events
    ):
        return f"transaction {rec.tx} did not anchor size {rec.tree_size} with that root"
    return None
