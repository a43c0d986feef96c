"""An in-process Hyperledger Fabric Gateway on 127.0.0.1 that checks what a real peer checks.

No Fabric network runs on our machines, so the Fabric anchor client is tested against this
server. It implements the ``gateway.Gateway`` gRPC service (Evaluate, Endorse, Submit,
CommitStatus) over Fabric's own protobuf messages and is deliberately strict, following the
peer's endorser, the orderer's signature filter and the committer's validation:

* every proposal: header type ENDORSER_TRANSACTION, the configured channel and chaincode,
  ``tx_id == hex(SHA-256(nonce ‖ creator))``, no replayed tx id, a creator whose MSP is known and
  whose certificate is enrolled there, and an ECDSA P-256 / SHA-256 signature over the proposal
  bytes that verifies against that certificate and is low-S (Fabric refuses high-S);
* the chaincode is a Python twin of ``ledger/anchors/chaincode/anchor`` (same keys, same rules:
  strictly growing size, 64-hex root, first anchoring MSP owns the chaincode), run against a
  versioned world state; an endorsement returns a real read/write set signed by the peer;
* Submit checks the envelope signature (FORBIDDEN otherwise); the committer re-parses the envelope,
  checks the creator signature and the peer's endorsement signature, does the MVCC check of the
  read set and only then applies the writes, one block per batch;
* CommitStatus checks the signed request, and blocks until the transaction commits or the call's
  deadline passes, as the real gateway does.

Errors come back the way the Fabric gateway sends them: a gRPC status plus ``gateway.ErrorDetail``
messages in ``grpc-status-details-bin``.

Switches for tests: ``hold_commits=True`` queues ordered transactions until :meth:`release`
(a slow orderer); ``batch_size=N`` cuts a block only once N transactions are queued;
:meth:`lose_held` forgets the queue (an orderer that lost them); ``tamper_prepared`` makes
Endorse return an envelope whose header is not the proposal's (a hostile gateway).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ROOT = re.compile(r"[0-9a-f]{64}")
_TX = transaction_pb2.TxValidationCode


# -- identities ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A self-signed P-256 certificate and its key, both PEM, as a Fabric MSP member would hold."""

    msp_id: str
    cert_pem: bytes
    key_pem: bytes

    @property
    def creator(self) -> bytes:
        return identities_pb2.SerializedIdentity(
            mspid=self.msp_id, id_bytes=self.cert_pem
        ).SerializeToString()

    def sign(self, message: bytes) -> bytes:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return encode_dss_signature(r, min(s, P256_ORDER - s))


def make_identity(msp_id: str, common_name: str, *, hosts: Iterable[str] = ()) -> Identity:
    """A fresh self-signed P-256 identity; ``hosts`` become SANs (for a TLS server certificate)."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, msp_id),
        ]
    )
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return Identity(
        msp_id=msp_id,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


# -- gRPC status with gateway.ErrorDetail, encoded as google.rpc.Status -------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def rpc_status_bytes(code: grpc.StatusCode, message: str, details: Iterable[Any]) -> bytes:
    """A serialized ``google.rpc.Status`` carrying ``details`` packed as ``Any``."""
    out = _varint(1 << 3) + _varint(code.value[0]) + _field(2, message.encode("utf-8"))
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        out += _field(3, packed.SerializeToString())
    return out


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, bytes], ...]):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class _Refused(Exception):
    """Ends an RPC with a gRPC status (and error details), as the Fabric gateway does."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Iterable[str] = ()):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details)


# -- the chaincode twin and the world state -----------------------------------------------------------


class _ChaincodeError(Exception):
    """The chaincode returned an error: a 500 response with this message."""


def _size_key(size: int) -> str:
    return f"size/{size:020d}"


@dataclass
class _Simulation:
    """One chaincode run against the state: what it read (with versions), wrote, and answered."""

    reads: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    writes: dict[str, bytes] = field(default_factory=dict)
    event: bytes | None = None


class _World:
    """Versioned key/value state of the chaincode's namespace (version = (block, tx number))."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[bytes, tuple[int, int]]] = {}

    def get(self, sim: _Simulation, key: str) -> bytes | None:
        held = self.values.get(key)
        sim.reads.setdefault(key, held[1] if held else None)
        return sim.writes.get(key, held[0] if held else None)


def _run_chaincode(
    world: _World, function: str, args: list[bytes], tx_id: str, msp_id: str
) -> tuple[bytes, _Simulation]:
    """The anchor chaincode's rules (ledger/anchors/chaincode/anchor/anchor.go), in Python."""
    sim = _Simulation()

    def uint(raw: bytes) -> int:
        text = raw.decode("utf-8", "replace")
        if not text.isdigit():
            raise _ChaincodeError(
                "Error managing parameter param0. Conversion error. "
                f"Cannot convert passed value {text} to uint64"
            )
        return int(text)

    def latest() -> int:
        raw = world.get(sim, "latest")
        return int(raw) if raw else 0

    if function == "Anchor":
        if len(args) != 2:
            raise _ChaincodeError(f"Incorrect number of params. Expected 2, received {len(args)}")
        size, root = uint(args[0]), args[1].decode("utf-8", "replace")
        if size == 0:
            raise _ChaincodeError("size must be positive")
        if not _ROOT.fullmatch(root):
            raise _ChaincodeError("root must be 64 lowercase hex characters (a SHA-256 Merkle root)")
        owner = world.get(sim, "owner")
        if owner is not None and owner.decode() != msp_id:
            raise _ChaincodeError(f"only {owner.decode()} may anchor on this chaincode, not {msp_id}")
        last = latest()
        if size <= last:
            raise _ChaincodeError(f"size must grow: {size} is not above the latest anchored size {last}")
        record = json.dumps({"size": size, "root": root, "tx": tx_id}, separators=(",", ":")).encode()
        if owner is None:
            sim.writes["owner"] = msp_id.encode()
        sim.writes[_size_key(size)] = record
        sim.writes["latest"] = str(size).encode()
        sim.event = record
        return b"", sim
    if function == "RootOf":
        if len(args) != 1:
            raise _ChaincodeError(f"Incorrect number of params. Expected 1, received {len(args)}")
        return world.get(sim, _size_key(uint(args[0]))) or b"", sim
    if function == "LatestSize":
        if args:
            raise _ChaincodeError(f"Incorrect number of params. Expected 0, received {len(args)}")
        return str(latest()).encode(), sim
    raise _ChaincodeError(f"Function {function} not found in contract AnchorContract")


# -- the gateway ---------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    channel_header: Any
    signature_header: Any
    header_bytes: tuple[bytes, bytes]
    cpp: Any
    function: str
    args: list[bytes]
    creator_msp: str


class FabricGateway(gateway_pb2_grpc.GatewayServicer):
    """The gateway peer of a one-org, one-peer channel, served on 127.0.0.1 (TLS and mutual TLS optional)."""

    def __init__(
        self,
        *,
        channel: str = "anchors",
        chaincode: str = "anchor",
        members: dict[str, list[bytes]],
        tls: Identity | None = None,
        tls_client_ca: bytes | None = None,
        hold_commits: bool = False,
        batch_size: int = 1,
        tamper_prepared: bool = False,
    ) -> None:
        self.channel = channel
        self.chaincode = chaincode
        self.members = {
            msp: [x509.load_pem_x509_certificate(c) for c in certs] for msp, certs in members.items()
        }
        self.hold_commits = hold_commits
        self.batch_size = batch_size
        self.tamper_prepared = tamper_prepared
        self.peer = make_identity("PeerOrgMSP", "peer0.example.com")
        self.world = _World()
        self.block = 0
        self.statuses: dict[str, tuple[int, int]] = {}
        self.held: list[bytes] = []
        self.seen_tx: set[str] = set()
        self.calls: dict[str, int] = {"Evaluate": 0, "Endorse": 0, "Submit": 0, "CommitStatus": 0}
        self.refusals: list[str] = []
        self._lock = threading.Condition()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        gateway_pb2_grpc.add_GatewayServicer_to_server(self, self._server)
        if tls is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            # A client CA: as peer.tls.clientAuthRequired (no trusted client pair, no handshake).
            creds = grpc.ssl_server_credentials(
                [(tls.key_pem, tls.cert_pem)],
                root_certificates=tls_client_ca,
                require_client_auth=tls_client_ca is not None,
            )
            self.port = self._server.add_secure_port("127.0.0.1:0", creds)
        self.endpoint = f"127.0.0.1:{self.port}"

    def __enter__(self) -> FabricGateway:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None).wait()

    # -- test switches ---------------------------------------------------------------------------------

    def release(self) -> None:
        """Commit every held transaction, in order, in one block."""
        with self._lock:
            batch, self.held = self.held, []
        self._commit_block(batch)

    def lose_held(self) -> None:
        with self._lock:
            self.held = []

    # -- gRPC methods ----------------------------------------------------------------------------------

    def Evaluate(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._serve(context, "Evaluate", self._evaluate, request)

    def Endorse(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._serve(context, "Endorse", self._endorse, request)

    def Submit(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._serve(context, "Submit", self._submit, request)

    def CommitStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._serve(context, "CommitStatus", lambda r: self._commit_status(r, context), request)

    def _serve(self, context: grpc.ServicerContext, name: str, handler: Any, request: Any) -> Any:
        with self._lock:
            self.calls[name] += 1
        try:
            return handler(request)
        except _Refused as refused:
            with self._lock:
                self.refusals.append(f"{name}: {refused.message} {refused.details}")
            errors = [
                gateway_pb2.ErrorDetail(
                    address=f"peer0.example.com:{self.port}", msp_id="PeerOrgMSP", message=d
                )
                for d in refused.details
            ]
            trailer = (("grpc-status-details-bin", rpc_status_bytes(refused.code, refused.message, errors)),)
            context.abort_with_status(_Status(refused.code, refused.message, trailer))

    # -- checks shared by Evaluate and Endorse (the endorser's preProcess) -----------------------------

    def _verify(self, creator_bytes: bytes, message: bytes, signature: bytes) -> str:
        """The creator's MSP id if it is an enrolled member and the signature is valid; else raises."""
        try:
            creator = identities_pb2.SerializedIdentity.FromString(creator_bytes)
            cert = x509.load_pem_x509_certificate(creator.id_bytes)
        except (DecodeError, ValueError) as exc:
            raise _Refused(grpc.StatusCode.PERMISSION_DENIED, f"creator is malformed: {exc}") from exc
        enrolled = self.members.get(creator.mspid)
        if enrolled is None:
            raise _Refused(grpc.StatusCode.PERMISSION_DENIED, f"access denied: unknown MSP {creator.mspid}")
        if cert not in enrolled:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"access denied: certificate not enrolled in {creator.mspid}",
            )
        try:
            _, s = decode_dss_signature(signature)
        except ValueError as exc:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED, "access denied: signature is not DER ECDSA"
            ) from exc
        if s > P256_ORDER // 2:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                "access denied: invalid S, must be smaller than half the order",
            )
        public_key = cert.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        try:
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"access denied: channel [{self.channel}] creator org [{creator.mspid}]: "
                "signature does not verify",
            ) from exc
        return str(creator.mspid)

    def _parse_proposal(self, signed: Any, tx_id: str, channel_id: str) -> _Parsed:
        try:
            proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
            header = common_pb2.Header.FromString(proposal.header)
            chdr = common_pb2.ChannelHeader.FromString(header.channel_header)
            shdr = common_pb2.SignatureHeader.FromString(header.signature_header)
            ext = proposal_pb2.ChaincodeHeaderExtension.FromString(chdr.extension)
            cpp = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
            spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input)
        except DecodeError as exc:
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT, f"failed to unpack transaction proposal: {exc}"
            ) from exc
        if not signed.proposal_bytes:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "a signed proposal is required")
        if chdr.type != common_pb2.HeaderType.ENDORSER_TRANSACTION:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, f"invalid header type {chdr.type}")
        if chdr.channel_id != channel_id or chdr.tx_id != tx_id:
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT, "request channel/tx id differ from the proposal's"
            )
        if chdr.channel_id != self.channel:
            raise _Refused(grpc.StatusCode.FAILED_PRECONDITION, f"channel '{chdr.channel_id}' not found")
        if not chdr.HasField("timestamp"):
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "proposal has no timestamp")
        if len(shdr.nonce) == 0:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "nonce is empty")
        expected = hashlib.sha256(shdr.nonce + shdr.creator).hexdigest()
        if chdr.tx_id != expected:
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid txID. It must be {expected}, not {chdr.tx_id}",
            )
        names = {ext.chaincode_id.name, spec.chaincode_spec.chaincode_id.name}
        if names != {self.chaincode}:
            raise _Refused(
                grpc.StatusCode.FAILED_PRECONDITION, f"chaincode {sorted(names)} is not installed here"
            )
        msp_id = self._verify(shdr.creator, signed.proposal_bytes, signed.signature)
        with self._lock:
            if chdr.tx_id in self.seen_tx or chdr.tx_id in self.statuses:
                raise _Refused(grpc.StatusCode.ABORTED, f"duplicate transaction found [{chdr.tx_id}]")
            self.seen_tx.add(chdr.tx_id)
        fn, *args = list(spec.chaincode_spec.input.args) or [b""]
        return _Parsed(
            chdr, shdr, (header.channel_header, header.signature_header), cpp, fn.decode(), args, msp_id
        )

    # -- handlers --------------------------------------------------------------------------------------

    def _evaluate(self, request: Any) -> Any:
        parsed = self._parse_proposal(
            request.proposed_transaction, request.transaction_id, request.channel_id
        )
        with self._lock:
            try:
                payload, _ = _run_chaincode(
                    self.world, parsed.function, parsed.args, parsed.channel_header.tx_id, parsed.creator_msp
                )
            except _ChaincodeError as exc:
                raise _Refused(
                    grpc.StatusCode.UNKNOWN,
                    f"evaluate call to endorser returned error: chaincode response 500, {exc}",
                    [f"chaincode response 500, {exc}"],
                ) from exc
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(status=200, payload=payload)
        )

    def _endorse(self, request: Any) -> Any:
        try:
            parsed = self._parse_proposal(
                request.proposed_transaction, request.transaction_id, request.channel_id
            )
        except _Refused as refused:
            raise _Refused(
                grpc.StatusCode.ABORTED,
                "failed to endorse transaction, see attached details for more info",
                [refused.message],
            ) from refused
        with self._lock:
            try:
                payload, sim = _run_chaincode(
                    self.world, parsed.function, parsed.args, parsed.channel_header.tx_id, parsed.creator_msp
                )
            except _ChaincodeError as exc:
                raise _Refused(
                    grpc.StatusCode.ABORTED,
                    "failed to endorse transaction, see attached details for more info",
                    [f"chaincode response 500, {exc}"],
                ) from exc
        kv = kv_rwset_pb2.KVRWSet(
            reads=[
                kv_rwset_pb2.KVRead(
                    key=k, version=None if v is None else kv_rwset_pb2.Version(block_num=v[0], tx_num=v[1])
                )
                for k, v in sorted(sim.reads.items())
            ],
            writes=[kv_rwset_pb2.KVWrite(key=k, value=v) for k, v in sorted(sim.writes.items())],
        )
        results = rwset_pb2.TxReadWriteSet(
            data_model=rwset_pb2.TxReadWriteSet.KV,
            ns_rwset=[rwset_pb2.NsReadWriteSet(namespace=self.chaincode, rwset=kv.SerializeToString())],
        )
        action = proposal_pb2.ChaincodeAction(
            results=results.SerializeToString(),
            response=proposal_response_pb2.Response(status=200, payload=payload),
            chaincode_id=chaincode_pb2.ChaincodeID(name=self.chaincode, version="1.0"),
        )
        cpp_bytes = proposal_pb2.ChaincodeProposalPayload(input=parsed.cpp.input).SerializeToString()
        chdr_bytes, shdr_bytes = parsed.header_bytes
        prp = proposal_response_pb2.ProposalResponsePayload(
            proposal_hash=hashlib.sha256(chdr_bytes + shdr_bytes + cpp_bytes).digest(),
            extension=action.SerializeToString(),
        ).SerializeToString()
        endorser = self.peer.creator
        endorsement = proposal_response_pb2.Endorsement(
            endorser=endorser, signature=self.peer.sign(prp + endorser)
        )
        tx = transaction_pb2.Transaction(
            actions=[
                transaction_pb2.TransactionAction(
                    header=shdr_bytes,
                    payload=transaction_pb2.ChaincodeActionPayload(
                        chaincode_proposal_payload=cpp_bytes,
                        action=transaction_pb2.ChaincodeEndorsedAction(
                            proposal_response_payload=prp, endorsements=[endorsement]
                        ),
                    ).SerializeToString(),
                )
            ]
        )
        if self.tamper_prepared:
            chdr = common_pb2.ChannelHeader.FromString(chdr_bytes)
            chdr.channel_id = "somewhere-else"
            chdr_bytes = chdr.SerializeToString()
        payload_bytes = common_pb2.Payload(
            header=common_pb2.Header(channel_header=chdr_bytes, signature_header=shdr_bytes),
            data=tx.SerializeToString(),
        ).SerializeToString()
        return gateway_pb2.EndorseResponse(prepared_transaction=common_pb2.Envelope(payload=payload_bytes))

    def _submit(self, request: Any) -> Any:
        envelope = request.prepared_transaction
        if not envelope.signature:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "prepared transaction must be signed")
        try:
            payload = common_pb2.Payload.FromString(envelope.payload)
            shdr = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
            chdr = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        except DecodeError as exc:
            raise _Refused(
                grpc.StatusCode.ABORTED,
                f"received unsuccessful response from orderer: status=BAD_REQUEST, info={exc}",
            ) from exc
        if chdr.tx_id != request.transaction_id or chdr.channel_id != request.channel_id:
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT, "request channel/tx id differ from the envelope's"
            )
        try:
            self._verify(shdr.creator, envelope.payload, envelope.signature)
        except _Refused as refused:
            raise _Refused(
                grpc.StatusCode.ABORTED,
                f"received unsuccessful response from orderer: status=FORBIDDEN, info={refused.message}",
            ) from refused
        with self._lock:
            self.held.append(envelope.SerializeToString())
            cut = not self.hold_commits and len(self.held) >= self.batch_size
        if cut:
            self.release()
        return gateway_pb2.SubmitResponse()

    def _commit_status(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            inner = gateway_pb2.CommitStatusRequest.FromString(request.request)
        except DecodeError as exc:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, f"invalid status request: {exc}") from exc
        if not inner.identity:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "no identity provided")
        if inner.channel_id != self.channel:
            raise _Refused(grpc.StatusCode.FAILED_PRECONDITION, f"channel '{inner.channel_id}' not found")
        self._verify(inner.identity, request.request, request.signature)
        with self._lock:
            while inner.transaction_id not in self.statuses:
                remaining = context.time_remaining()
                if remaining is None or remaining <= 0.02:
                    raise _Refused(grpc.StatusCode.DEADLINE_EXCEEDED, "commit status wait timed out")
                self._lock.wait(timeout=remaining - 0.01)
            code, block = self.statuses[inner.transaction_id]
        return gateway_pb2.CommitStatusResponse(result=code, block_number=block)

    # -- the committer ---------------------------------------------------------------------------------

    def _commit_block(self, envelopes: list[bytes]) -> None:
        with self._lock:
            if not envelopes:
                return
            self.block += 1
            for tx_num, raw in enumerate(envelopes):
                tx_id, code = self._validate_and_apply(raw, (self.block, tx_num))
                if tx_id and tx_id not in self.statuses:
                    self.statuses[tx_id] = (code, self.block)
            self._lock.notify_all()

    def _validate_and_apply(self, raw: bytes, version: tuple[int, int]) -> tuple[str | None, int]:
        try:
            envelope = common_pb2.Envelope.FromString(raw)
            payload = common_pb2.Payload.FromString(envelope.payload)
            chdr = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            shdr = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
            tx = transaction_pb2.Transaction.FromString(payload.data)
            cap = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
            prp = proposal_response_pb2.ProposalResponsePayload.FromString(
                cap.action.proposal_response_payload
            )
            action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
            results = rwset_pb2.TxReadWriteSet.FromString(action.results)
        except (DecodeError, IndexError):
            return None, _TX.BAD_PAYLOAD
        if chdr.tx_id in self.statuses:
            return chdr.tx_id, _TX.DUPLICATE_TXID
        try:
            self._verify(shdr.creator, envelope.payload, envelope.signature)
        except _Refused:
            return chdr.tx_id, _TX.BAD_CREATOR_SIGNATURE
        endorsements = list(cap.action.endorsements)
        if len(endorsements) != 1 or endorsements[0].endorser != self.peer.creator:
            return chdr.tx_id, _TX.ENDORSEMENT_POLICY_FAILURE
        peer_key = x509.load_pem_x509_certificate(self.peer.cert_pem).public_key()
        assert isinstance(peer_key, ec.EllipticCurvePublicKey)
        try:
            peer_key.verify(
                endorsements[0].signature,
                cap.action.proposal_response_payload + endorsements[0].endorser,
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            return chdr.tx_id, _TX.ENDORSEMENT_POLICY_FAILURE
        writes: dict[str, bytes] = {}
        for ns in results.ns_rwset:
            kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
            for read in kv.reads:
                held = self.world.values.get(read.key)
                want = (read.version.block_num, read.version.tx_num) if read.HasField("version") else None
                if (held[1] if held else None) != want:
                    return chdr.tx_id, _TX.MVCC_READ_CONFLICT
            writes.update({w.key: w.value for w in kv.writes})
        for key, value in writes.items():
            self.world.values[key] = (value, version)
        return chdr.tx_id, _TX.VALID

    # -- what tests look at ----------------------------------------------------------------------------

    def anchored(self) -> dict[int, dict[str, Any]]:
        """size -> the stored record, straight from the world state."""
        with self._lock:
            return {
                int(k.split("/", 1)[1]): json.loads(v)
                for k, (v, _) in self.world.values.items()
                if k.startswith("size/")
            }
