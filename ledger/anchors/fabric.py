"""Anchoring checkpoints on a Hyperledger Fabric channel through the peer's Gateway service (Fabric v2.4+).

The client speaks the Gateway gRPC API directly, with Fabric's own protobuf
messages, and signs with the organisation's P-256 identity. Submitting an anchoring
is the Gateway's four steps: ``Endorse`` (the gateway collects endorsements for our
signed proposal and returns the transaction envelope), sign the envelope,
``Submit`` (to the ordering service), then ``CommitStatus`` (wait for the block and
its validation code). Reads go through ``Evaluate``, which runs the chaincode on one
peer without ordering anything.

The chaincode is ``ledger/anchors/chaincode/anchor`` (Go): ``Anchor(size, root)``
refuses a size that does not strictly grow; ``RootOf(size)`` returns the stored
``{"size", "root", "tx"}`` JSON (empty if none); ``LatestSize()`` the largest size.

Fabric has deterministic finality: a transaction committed as VALID is final, so
such a record is ``confirmed`` at once. One that was submitted but not committed
within the timeout is returned ``pending`` and :meth:`FabricAnchor.refresh` asks
again later. A transaction committed with any other validation code (an MVCC
conflict, an endorsement-policy failure) never takes effect: ``anchor`` raises
AnchorRejected and ``refresh`` reports it ``dropped`` so the node anchors again.

Tested against an in-process gateway that checks every signature, not yet against
a live Fabric network (see docs/anchoring.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import proposal_pb2, transaction_pb2

from ledger.anchors._fabric_identity import FabricIdentity
from ledger.anchors._fabric_messages import Proposal, check_prepared, error_details, new_proposal
from ledger.anchors.base import (
    AnchorError,
    AnchorMismatch,
    AnchorRecord,
    AnchorRejected,
    AnchorUnavailable,
    OnChain,
)
from ledger.entry import utc_timestamp

__all__ = ["FabricAnchor"]

_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_VALID = transaction_pb2.TxValidationCode.VALID
_HEX_ROOT = re.compile(r"[0-9a-f]{64}")


class FabricAnchor:
    """An :class:`ledger.anchors.Anchor` over one chaincode on one Fabric channel."""

    chain = "fabric"

    def __init__(
        self,
        *,
        grpc_channel: grpc.Channel,
        channel: str,
        chaincode: str,
        identity: FabricIdentity,
        timeout: float,
        owns_channel: bool,
        where: str = "the given gRPC channel",
    ) -> None:
        if not channel or not chaincode:
            raise AnchorError("fabric: channel and chaincode names must not be empty")
        if not timeout > 0:
            raise AnchorError(f"fabric: timeout must be positive seconds, got {timeout!r}")
        self._grpc_channel = grpc_channel
        self._stub = gateway_pb2_grpc.GatewayStub(grpc_channel)
        self._channel = channel
        self._chaincode = chaincode
        self._identity = identity
        self._timeout = float(timeout)
        self._owns_channel = owns_channel
        self._where = where

    @classmethod
    def connect(
        cls,
        *,
        endpoint: str,
        channel: str,
        chaincode: str,
        msp_id: str,
        cert_pem: bytes,
        key_pem: bytes,
        tls_root_cert: bytes | None = None,
        tls_client_cert: bytes | None = None,
        tls_client_key: bytes | None = None,
        tls_server_name: str | None = None,
        timeout: float = 10.0,
    ) -> FabricAnchor:
        """A client of the gateway peer at ``endpoint`` (``host:port``); TLS when a root cert is given.

        Without ``tls_root_cert`` the connection is plaintext, which only a local test
        gateway should accept. The key must be the certificate's: checked here so a
        wrong pair fails at start-up rather than as an "access denied" from the peer.

        ``tls_client_cert``/``tls_client_key``: the TLS client pair a peer with
        ``peer.tls.clientAuthRequired`` asks for (the organisation's ``tls/`` material, not the
        signing identity). ``tls_server_name``: the name to expect in the peer's certificate when
        the endpoint is reached by another name or address (Fabric's ``ssl_target_name_override``).
        """
        identity = FabricIdentity.load(msp_id=msp_id, cert_pem=cert_pem, key_pem=key_pem)
        if not identity.key_matches_certificate():
            raise AnchorError(
                f"fabric: the private key does not belong to the certificate of {msp_id}; "
                "give the key file issued with that certificate"
            )
        if not endpoint or ":" not in endpoint:
            raise AnchorError(f"fabric: endpoint {endpoint!r} must be host:port of a gateway peer")
        mutual = _check_tls(tls_root_cert, tls_client_cert, tls_client_key, tls_server_name)
        if tls_root_cert is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls_root_cert, private_key=tls_client_key, certificate_chain=tls_client_cert
            )
            options = [] if tls_server_name is None else [("grpc.ssl_target_name_override", tls_server_name)]
            grpc_channel = grpc.secure_channel(endpoint, credentials, options=options)
            where = f"{endpoint} ({'mutual TLS' if mutual else 'TLS'}"
            where += f", as {tls_server_name})" if tls_server_name is not None else ")"
        else:
            grpc_channel = grpc.insecure_channel(endpoint)
            where = f"{endpoint} (plaintext)"
        return cls(
            grpc_channel=grpc_channel,
            channel=channel,
            chaincode=chaincode,
            identity=identity,
            timeout=timeout,
            owns_channel=True,
            where=where,
        )

    @classmethod
    def over_channel(
        cls,
        grpc_channel: grpc.Channel,
        *,
        channel: str,
        chaincode: str,
        msp_id: str,
        cert_pem: bytes,
        key_pem: bytes,
        timeout: float = 10.0,
    ) -> FabricAnchor:
        """A client over a gRPC channel the caller made (and closes).

        Unlike :meth:`connect` it does not check that key and certificate belong
        together, so tests can prove that the gateway itself refuses such a signer.
        """
        identity = FabricIdentity.load(msp_id=msp_id, cert_pem=cert_pem, key_pem=key_pem)
        return cls(
            grpc_channel=grpc_channel,
            channel=channel,
            chaincode=chaincode,
            identity=identity,
            timeout=timeout,
            owns_channel=False,
        )

    @property
    def network(self) -> str:
        return self._channel

    @property
    def contract(self) -> str:
        return self._chaincode

    def close(self) -> None:
        if self._owns_channel:
            self._grpc_channel.close()

    def __enter__(self) -> FabricAnchor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"FabricAnchor(gateway={self._where}, channel={self._channel!r}, chaincode={self._chaincode!r})"
        )

    # -- the Anchor protocol -------------------------------------------------------------------------

    def anchor(self, tree_size: int, root: bytes) -> AnchorRecord:
        if isinstance(tree_size, bool) or not isinstance(tree_size, int) or tree_size < 1:
            raise AnchorRejected(f"fabric: tree size must be a positive integer, got {tree_size!r}")
        if not isinstance(root, bytes | bytearray) or len(root) != 32:
            raise AnchorRejected("fabric: root must be the 32-byte SHA-256 Merkle root")
        root = bytes(root)
        proposal = self._proposal("Anchor", str(tree_size).encode(), root.hex().encode())
        try:
            envelope = self._endorse(proposal)
        except AnchorRejected as refused:
            # An earlier attempt (whose answer was lost) may already hold this size.
            held = self._already_anchored(tree_size, root, refused)
            if held is not None:
                return held
            raise
        envelope.signature = self._identity.sign(envelope.payload)
        self._call(
            "Submit",
            self._stub.Submit,
            gateway_pb2.SubmitRequest(
                transaction_id=proposal.tx_id, channel_id=self._channel, prepared_transaction=envelope
            ),
        )
        record = self._record(tree_size, root, proposal.tx_id, block=None, status="pending")
        committed = self._commit_status(proposal.tx_id)
        if committed is None:
            return record  # ordered but not yet committed: refresh() will tell
        code, block = committed
        if code != _VALID:
            raise AnchorRejected(
                f"fabric: transaction {proposal.tx_id} was committed in block {block} as invalid "
                f"({_code_name(code)}); the anchoring did not take effect"
            )
        return replace(record, block=block, status="confirmed")

    def refresh(self, record: AnchorRecord) -> AnchorRecord:
        if (record.chain, record.network, record.contract) != (self.chain, self._channel, self._chaincode):
            raise AnchorError(
                f"fabric: record is for {record.chain}/{record.network}/{record.contract}, "
                f"this client anchors on fabric/{self._channel}/{self._chaincode}"
            )
        if record.status == "dropped":
            return record  # an invalid or superseded transaction never becomes valid
        committed = self._commit_status(record.tx)
        if committed is not None:
            code, block = committed
            return replace(record, block=block, status="confirmed" if code == _VALID else "dropped")
        # Not committed yet. If the chain has since moved to this size or past it without
        # our transaction, ours can only ever fail the size check: it is as good as dropped.
        if self.latest_size() >= record.tree_size:
            held = self.read(record.tree_size)
            if held is not None and held.tx == record.tx:
                return replace(record, block=held.block, status="confirmed")
            return replace(record, block=None, status="dropped")
        return record

    def read(self, tree_size: int) -> OnChain | None:
        if isinstance(tree_size, bool) or not isinstance(tree_size, int) or tree_size < 0:
            raise AnchorError(f"fabric: tree size must be a non-negative integer, got {tree_size!r}")
        if tree_size == 0:
            return None  # the empty tree is never anchored
        payload = self._evaluate("RootOf", str(tree_size).encode())
        if not payload.strip():
            return None
        try:
            data = json.loads(payload)
            size, root_hex, tx = int(data["size"]), str(data["root"]), str(data["tx"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorError(f"fabric: RootOf({tree_size}) returned an unreadable record: {exc}") from exc
        if size != tree_size or not _HEX_ROOT.fullmatch(root_hex):
            raise AnchorError(
                f"fabric: RootOf({tree_size}) returned size {size} and root {root_hex!r}; "
                "is the chaincode the appliance's anchor chaincode?"
            )
        committed = self._commit_status(tx) if tx else None
        block = committed[1] if committed is not None else None
        return OnChain(tree_size=size, root=bytes.fromhex(root_hex), tx=tx or None, block=block)

    def latest_size(self) -> int:
        payload = self._evaluate("LatestSize").strip()
        if not payload:
            return 0
        try:
            size = int(payload.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise AnchorError(f"fabric: LatestSize returned {payload[:40]!r}, not a number") from exc
        if size < 0:
            raise AnchorError(f"fabric: LatestSize returned a negative size {size}")
        return size

    # -- beyond the protocol ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What an operator checks: which gateway, channel, chaincode and identity, and the latest size."""
        return {
            "gateway": self._where,
            "channel": self._channel,
            "chaincode": self._chaincode,
            "msp_id": self._identity.msp_id,
            "latest_size": self.latest_size(),
        }

    # -- the Gateway calls -----------------------------------------------------------------------------

    def _proposal(self, function: str, *args: bytes) -> Proposal:
        return new_proposal(
            channel=self._channel,
            chaincode=self._chaincode,
            function=function,
            args=args,
            creator=self._identity.creator,
        )

    def _signed(self, proposal: Proposal) -> Any:
        return proposal_pb2.SignedProposal(
            proposal_bytes=proposal.proposal_bytes, signature=self._identity.sign(proposal.proposal_bytes)
        )

    def _evaluate(self, function: str, *args: bytes) -> bytes:
        proposal = self._proposal(function, *args)
        response = self._call(
            f"Evaluate {function}",
            self._stub.Evaluate,
            gateway_pb2.EvaluateRequest(
                transaction_id=proposal.tx_id,
                channel_id=self._channel,
                proposed_transaction=self._signed(proposal),
            ),
        )
        result = response.result
        if not 200 <= result.status < 400:
            raise AnchorRejected(
                f"fabric: {self._chaincode}.{function} answered {result.status}: {result.message}"
            )
        return bytes(result.payload)

    def _endorse(self, proposal: Proposal) -> Any:
        response = self._call(
            "Endorse",
            self._stub.Endorse,
            gateway_pb2.EndorseRequest(
                transaction_id=proposal.tx_id,
                channel_id=self._channel,
                proposed_transaction=self._signed(proposal),
            ),
        )
        envelope = response.prepared_transaction
        problem = check_prepared(envelope, proposal)
        if problem is not None:
            raise AnchorRejected(f"fabric: refusing to sign: {problem}")
        return envelope

    def _commit_status(self, tx_id: str) -> tuple[int, int] | None:
        """(validation code, block number), or None if not committed within the timeout."""
        request = gateway_pb2.CommitStatusRequest(
            transaction_id=tx_id, channel_id=self._channel, identity=self._identity.creator
        ).SerializeToString()
        signed = gateway_pb2.SignedCommitStatusRequest(
            request=request, signature=self._identity.sign(request)
        )
        try:
            response = self._stub.CommitStatus(signed, timeout=self._timeout)
        except grpc.RpcError as exc:
            if _code(exc) == grpc.StatusCode.DEADLINE_EXCEEDED:
                return None
            raise _mapped(f"{self._where} CommitStatus", exc) from exc
        return int(response.result), int(response.block_number)

    def _call(self, what: str, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise _mapped(f"{self._where} {what}", exc) from exc

    def _already_anchored(self, tree_size: int, root: bytes, refused: AnchorRejected) -> AnchorRecord | None:
        try:
            held = self.read(tree_size)
        except AnchorError:
            return None
        if held is None:
            return None
        if held.root != root:
            raise AnchorMismatch(
                f"fabric: channel {self._channel} already holds size {tree_size} with root "
                f"{held.root.hex()} (transaction {held.tx}), not {root.hex()}: two different trees "
                f"of the same size; keep both checkpoints as evidence ({refused})"
            ) from refused
        if not held.tx:
            return None
        status = "confirmed" if held.block is not None else "pending"
        return self._record(tree_size, root, held.tx, block=held.block, status=status)

    def _record(
        self, tree_size: int, root: bytes, tx: str, *, block: int | None, status: str
    ) -> AnchorRecord:
        return AnchorRecord(
            chain=self.chain,
            network=self._channel,
            contract=self._chaincode,
            tree_size=tree_size,
            root=root.hex(),
            tx=tx,
            block=block,
            status=status,
            time=utc_timestamp(),
        )


def _check_tls(
    root: bytes | None, client_cert: bytes | None, client_key: bytes | None, server_name: str | None
) -> bool:
    """Refuse a TLS set-up that cannot work before a handshake fails with less to say; True if mutual.

    gRPC reports a bad client pair or a missing root only as an unavailable peer, so what it would
    fail on is checked here, named, and never echoed (a key parser's message could quote the key).
    """
    if (client_cert is None) != (client_key is None):
        raise AnchorError("fabric: mutual TLS needs both the TLS client certificate and its key")
    if root is None and (client_cert is not None or server_name is not None):
        raise AnchorError(
            "fabric: a TLS client certificate or server name is set but TLS is not: give the CA of "
            "the peer's TLS certificate (tls_ca_file)"
        )
    if server_name is not None and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})", server_name):
        raise AnchorError(f"fabric: the TLS server name {server_name!r} is not a host name")
    if root is not None:
        try:
            x509.load_pem_x509_certificates(root)
        except ValueError as exc:
            raise AnchorError(f"fabric: the TLS CA is not PEM X.509 certificates: {exc}") from exc
    if client_cert is None or client_key is None:
        return False
    try:
        cert = x509.load_pem_x509_certificate(client_cert)
    except ValueError as exc:
        raise AnchorError(f"fabric: the TLS client certificate is not PEM X.509: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(client_key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AnchorError("fabric: the TLS client key is not an unencrypted PEM private key") from exc
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise AnchorError(
            "fabric: the TLS client key does not belong to the TLS client certificate; give the key "
            "issued with it (tls/client.key beside tls/client.crt)"
        )
    return True


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


def _mapped(what: str, exc: grpc.RpcError) -> AnchorError:
    """UNAVAILABLE / DEADLINE_EXCEEDED: try later; anything else: the network refused the request.

    ``what`` names the gateway and how it is reached (plaintext, TLS, mutual TLS) before the call:
    a failed handshake reads as UNAVAILABLE, and the transport is the first thing to check then.
    """
    code = _code(exc)
    details_fn = getattr(exc, "details", None)
    message = (details_fn() if callable(details_fn) else None) or str(exc)
    trailer_fn = getattr(exc, "trailing_metadata", None)
    reasons = error_details(trailer_fn() if callable(trailer_fn) else None)
    text = f"fabric gateway {what}: {code.name if code else 'error'}: {message}"
    if reasons:
        text += " [" + "; ".join(reasons) + "]"
    if code in _RETRYABLE:
        return AnchorUnavailable(text)
    return AnchorRejected(text)


def _code_name(code: int) -> str:
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return f"code {code}"
