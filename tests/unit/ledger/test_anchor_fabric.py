"""The Fabric anchor client against an in-process Gateway that verifies what a real peer verifies.

The gateway (``tests/support/fabric_gateway.py``) checks every proposal, envelope and commit-status
signature against the client's enrolled certificate, the tx id derivation, channel and chaincode, and
runs a twin of the Go chaincode with MVCC validation, so these tests fail if the client builds or
signs any message the way a Fabric peer would refuse.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from support.fabric_gateway import FabricGateway, Identity, make_identity, rpc_status_bytes
from support.live_server import free_port

from ledger.anchors import (
    AnchorError,
    AnchorMismatch,
    AnchorRecord,
    AnchorRejected,
    AnchorUnavailable,
    _fabric_identity,
)
from ledger.anchors._fabric_identity import P256_ORDER, FabricIdentity, low_s
from ledger.anchors._fabric_messages import error_details, new_proposal, transaction_id
from ledger.anchors.fabric import FabricAnchor

MSP = "Org1MSP"
ROOT_A = hashlib.sha256(b"tree A").digest()
ROOT_B = hashlib.sha256(b"tree B").digest()


@pytest.fixture(scope="module")
def org() -> Identity:
    return make_identity(MSP, "appliance-node")


@pytest.fixture()
def gateway(org: Identity):
    with FabricGateway(members={MSP: [org.cert_pem]}) as gw:
        yield gw


def client(
    gw: FabricGateway, ident: Identity, *, timeout: float = 5.0, key_pem: bytes | None = None, **tls: Any
) -> FabricAnchor:
    """A client of ``gw`` as ``ident``; ``tls``: the TLS arguments of :meth:`FabricAnchor.connect`."""
    return FabricAnchor.connect(
        endpoint=gw.endpoint,
        channel=gw.channel,
        chaincode=gw.chaincode,
        msp_id=ident.msp_id,
        cert_pem=ident.cert_pem,
        key_pem=key_pem or ident.key_pem,
        timeout=timeout,
        **tls,
    )


# -- anchor, read back, latest size ----------------------------------------------------------------


def test_anchor_read_back_and_latest_size(gateway: FabricGateway, org: Identity) -> None:
    with client(gateway, org) as anchor:
        assert (anchor.chain, anchor.network, anchor.contract) == ("fabric", "anchors", "anchor")
        assert anchor.latest_size() == 0
        assert anchor.read(5) is None

        record = anchor.anchor(5, ROOT_A)
        assert isinstance(record, AnchorRecord)
        assert (record.chain, record.network, record.contract) == ("fabric", "anchors", "anchor")
        assert (record.tree_size, record.root, record.status) == (5, ROOT_A.hex(), "confirmed")
        assert record.block == 1 and len(record.tx) == 64
        assert record.time.endswith("Z")

        second = anchor.anchor(9, ROOT_B)
        assert second.block == 2 and second.tx != record.tx

        assert anchor.latest_size() == 9
        held = anchor.read(5)
        assert held is not None
        assert (held.tree_size, held.root, held.tx, held.block) == (5, ROOT_A, record.tx, 1)
        assert anchor.read(9) is not None and anchor.read(9).root == ROOT_B  # type: ignore[union-attr]
        assert anchor.read(7) is None

    # What the channel holds is what the chaincode wrote, keyed by the transaction that wrote it.
    assert gateway.anchored() == {
        5: {"size": 5, "root": ROOT_A.hex(), "tx": record.tx},
        9: {"size": 9, "root": ROOT_B.hex(), "tx": second.tx},
    }
    assert gateway.refusals == []


def test_info_names_gateway_channel_identity_and_latest_size(gateway: FabricGateway, org: Identity) -> None:
    with client(gateway, org) as anchor:
        anchor.anchor(2, ROOT_A)
        assert anchor.info() == {
            "gateway": f"{gateway.endpoint} (plaintext)",
            "channel": "anchors",
            "chaincode": "anchor",
            "msp_id": MSP,
            "latest_size": 2,
        }
        assert "PRIVATE" not in repr(anchor) and gateway.endpoint in repr(anchor)


def test_non_growing_size_is_rejected_with_the_chaincode_reason(
    gateway: FabricGateway, org: Identity
) -> None:
    with client(gateway, org) as anchor:
        anchor.anchor(10, ROOT_A)
        with pytest.raises(
            AnchorRejected, match="size must grow: 7 is not above the latest anchored size 10"
        ):
            anchor.anchor(7, ROOT_B)
        assert anchor.latest_size() == 10
        assert anchor.read(7) is None
    assert gateway.calls["Submit"] == 1  # the refused one was never submitted


def test_anchoring_the_same_checkpoint_again_returns_the_original_transaction(
    gateway: FabricGateway, org: Identity
) -> None:
    """A retry after a lost answer must not fail: the channel already holds exactly this size and root."""
    with client(gateway, org) as anchor:
        first = anchor.anchor(12, ROOT_A)
        again = anchor.anchor(12, ROOT_A)
        assert (again.tx, again.block, again.status) == (first.tx, first.block, "confirmed")
        with pytest.raises(AnchorMismatch, match="already holds size 12 with root"):
            anchor.anchor(12, ROOT_B)
    assert gateway.calls["Submit"] == 1


def test_bad_arguments_are_refused_before_anything_is_sent(gateway: FabricGateway, org: Identity) -> None:
    with client(gateway, org) as anchor:
        with pytest.raises(AnchorRejected, match="positive integer"):
            anchor.anchor(0, ROOT_A)
        with pytest.raises(AnchorRejected, match="32-byte"):
            anchor.anchor(3, b"short")
        with pytest.raises(AnchorError, match="non-negative integer"):
            anchor.read(-1)
        assert anchor.read(0) is None
    assert sum(gateway.calls.values()) == 0


# -- signatures: the gateway really checks them ----------------------------------------------------


def test_key_not_matching_the_certificate_is_rejected_by_the_gateway(
    gateway: FabricGateway, org: Identity
) -> None:
    stranger = make_identity(MSP, "someone-else")
    with grpc.insecure_channel(gateway.endpoint) as ch:
        anchor = FabricAnchor.over_channel(
            ch,
            channel="anchors",
            chaincode="anchor",
            msp_id=MSP,
            cert_pem=org.cert_pem,
            key_pem=stranger.key_pem,
        )
        with pytest.raises(AnchorRejected, match="signature does not verify"):
            anchor.anchor(3, ROOT_A)
        with pytest.raises(AnchorRejected, match="signature does not verify"):
            anchor.latest_size()
    assert gateway.anchored() == {}
    assert gateway.calls["Submit"] == 0


def test_connect_refuses_a_key_that_is_not_the_certificates(gateway: FabricGateway, org: Identity) -> None:
    stranger = make_identity(MSP, "someone-else")
    with pytest.raises(AnchorError, match="does not belong to the certificate"):
        client(gateway, org, key_pem=stranger.key_pem)


def test_identity_not_enrolled_in_the_msp_is_rejected(gateway: FabricGateway) -> None:
    outsider = make_identity(MSP, "not-enrolled")
    with client(gateway, outsider) as anchor, pytest.raises(AnchorRejected, match="not enrolled"):
        anchor.anchor(3, ROOT_A)


def test_high_s_signatures_would_be_refused_so_the_client_normalises(
    gateway: FabricGateway, org: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fabric refuses s > n/2; without low-S normalisation half the signatures would fail."""

    def high_s(signature: bytes) -> bytes:
        r, s = decode_dss_signature(signature)
        return encode_dss_signature(r, max(s, P256_ORDER - s))

    monkeypatch.setattr(_fabric_identity, "low_s", high_s)
    with client(gateway, org) as anchor, pytest.raises(AnchorRejected, match="invalid S"):
        anchor.latest_size()


def test_signatures_are_low_s_der_and_verify(org: Identity) -> None:
    ident = FabricIdentity.load(msp_id=MSP, cert_pem=org.cert_pem, key_pem=org.key_pem)
    public = ident.key.public_key()
    for i in range(64):
        message = b"message %d" % i
        signature = ident.sign(message)
        _, s = decode_dss_signature(signature)
        assert s <= P256_ORDER // 2
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    high = encode_dss_signature(1, P256_ORDER - 5)
    assert decode_dss_signature(low_s(high)) == (1, 5)


def test_identity_loading_refuses_wrong_material(org: Identity) -> None:
    rsa_like = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
    with pytest.raises(AnchorError, match="not an unencrypted PEM private key"):
        FabricIdentity.load(msp_id=MSP, cert_pem=org.cert_pem, key_pem=rsa_like)
    with pytest.raises(AnchorError, match=r"not a PEM X\.509 certificate"):
        FabricIdentity.load(msp_id=MSP, cert_pem=b"nope", key_pem=org.key_pem)
    k1 = ec.generate_private_key(ec.SECP384R1())
    from cryptography.hazmat.primitives import serialization

    p384 = k1.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(AnchorError, match="P-256"):
        FabricIdentity.load(msp_id=MSP, cert_pem=org.cert_pem, key_pem=p384)
    with pytest.raises(AnchorError, match="msp_id is empty"):
        FabricIdentity.load(msp_id=" ", cert_pem=org.cert_pem, key_pem=org.key_pem)
    assert "PRIVATE" not in repr(FabricIdentity.load(msp_id=MSP, cert_pem=org.cert_pem, key_pem=org.key_pem))


# -- the messages are Fabric's ---------------------------------------------------------------------


def test_proposal_carries_fabric_fields_and_tx_id_derivation(org: Identity) -> None:
    ident = FabricIdentity.load(msp_id=MSP, cert_pem=org.cert_pem, key_pem=org.key_pem)
    built = new_proposal(
        channel="ch", chaincode="cc", function="Anchor", args=[b"5", b"ab"], creator=ident.creator
    )
    proposal = proposal_pb2.Proposal.FromString(built.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    chdr = common_pb2.ChannelHeader.FromString(header.channel_header)
    shdr = common_pb2.SignatureHeader.FromString(header.signature_header)
    assert chdr.type == common_pb2.HeaderType.ENDORSER_TRANSACTION
    assert (chdr.channel_id, chdr.tx_id) == ("ch", built.tx_id)
    assert abs(chdr.timestamp.seconds - time.time()) < 60
    assert len(shdr.nonce) == 24 and shdr.creator == org.creator
    assert (
        built.tx_id
        == hashlib.sha256(shdr.nonce + shdr.creator).hexdigest()
        == transaction_id(shdr.nonce, org.creator)
    )
    assert proposal_pb2.ChaincodeHeaderExtension.FromString(chdr.extension).chaincode_id.name == "cc"
    cpp = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(cpp.input).chaincode_spec
    assert spec.chaincode_id.name == "cc" and list(spec.input.args) == [b"Anchor", b"5", b"ab"]
    other = new_proposal(channel="ch", chaincode="cc", function="Anchor", args=[], creator=ident.creator)
    assert other.tx_id != built.tx_id  # a fresh nonce each time


def test_gateway_refuses_a_tx_id_not_derived_from_nonce_and_creator(
    gateway: FabricGateway, org: Identity
) -> None:
    """The test gateway's tx id check is real (so passing it above means something)."""
    nonce = b"n" * 24
    chdr = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION,
        channel_id="anchors",
        tx_id="00" * 32,
        extension=proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_pb2.ChaincodeID(name="anchor")
        ).SerializeToString(),
    )
    chdr.timestamp.GetCurrentTime()
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_pb2.ChaincodeID(name="anchor"),
            input=chaincode_pb2.ChaincodeInput(args=[b"LatestSize"]),
        )
    )
    proposal = proposal_pb2.Proposal(
        header=common_pb2.Header(
            channel_header=chdr.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(creator=org.creator, nonce=nonce).SerializeToString(),
        ).SerializeToString(),
        payload=proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString()).SerializeToString(),
    ).SerializeToString()
    request = gateway_pb2.EvaluateRequest(
        transaction_id="00" * 32,
        channel_id="anchors",
        proposed_transaction=proposal_pb2.SignedProposal(
            proposal_bytes=proposal, signature=org.sign(proposal)
        ),
    )
    with grpc.insecure_channel(gateway.endpoint) as ch, pytest.raises(grpc.RpcError) as info:
        gateway_pb2_grpc.GatewayStub(ch).Evaluate(request, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid txID" in info.value.details()


def test_a_hostile_gateway_cannot_get_another_transaction_signed(org: Identity) -> None:
    with FabricGateway(members={MSP: [org.cert_pem]}, tamper_prepared=True) as gw, client(gw, org) as anchor:
        with pytest.raises(AnchorRejected, match=r"refusing to sign: .*channel header"):
            anchor.anchor(3, ROOT_A)
        assert gw.calls["Submit"] == 0


def test_wrong_channel_or_chaincode_is_refused(gateway: FabricGateway, org: Identity) -> None:
    for channel, chaincode, reason in (
        ("elsewhere", "anchor", "not found"),
        ("anchors", "other", "not installed"),
    ):
        with (
            FabricAnchor.connect(
                endpoint=gateway.endpoint,
                channel=channel,
                chaincode=chaincode,
                msp_id=MSP,
                cert_pem=org.cert_pem,
                key_pem=org.key_pem,
            ) as anchor,
            pytest.raises(AnchorRejected, match=reason),
        ):
            anchor.latest_size()


def test_error_details_are_read_from_the_status_trailer() -> None:
    detail = gateway_pb2.ErrorDetail(
        address="peer0:7051", msp_id="Org1MSP", message="chaincode response 500, no"
    )
    trailer = [("grpc-status-details-bin", rpc_status_bytes(grpc.StatusCode.ABORTED, "failed", [detail]))]
    assert error_details(trailer) == ["Org1MSP@peer0:7051: chaincode response 500, no"]
    assert error_details([("grpc-status-details-bin", b"\xff\xff\xff")]) == []
    assert error_details(None) == []


# -- availability ----------------------------------------------------------------------------------


def test_gateway_down_is_unavailable_not_rejected(org: Identity) -> None:
    with FabricAnchor.connect(
        endpoint=f"127.0.0.1:{free_port()}",
        channel="anchors",
        chaincode="anchor",
        msp_id=MSP,
        cert_pem=org.cert_pem,
        key_pem=org.key_pem,
        timeout=2.0,
    ) as anchor:
        started = time.monotonic()
        with pytest.raises(AnchorUnavailable, match="UNAVAILABLE"):
            anchor.anchor(3, ROOT_A)
        with pytest.raises(AnchorUnavailable):
            anchor.latest_size()
        with pytest.raises(AnchorUnavailable):
            anchor.read(3)
        pending = AnchorRecord(
            "fabric", "anchors", "anchor", 3, ROOT_A.hex(), "ab" * 32, None, "pending", "t"
        )
        with pytest.raises(AnchorUnavailable):
            anchor.refresh(pending)
        assert time.monotonic() - started < 6


def _connect_nowhere(org: Identity, **settings: Any) -> FabricAnchor:
    """Connect with settings that must be refused before anything is sent (port 1: nothing listens)."""
    return FabricAnchor.connect(
        **{"endpoint": "127.0.0.1:1", "channel": "c", "chaincode": "cc", **settings},
        msp_id=MSP,
        cert_pem=org.cert_pem,
        key_pem=org.key_pem,
    )


def test_bad_configuration_fails_at_connect(org: Identity) -> None:
    with pytest.raises(AnchorError, match="host:port"):
        _connect_nowhere(org, endpoint="nowhere")
    with pytest.raises(AnchorError, match="timeout must be positive"):
        _connect_nowhere(org, timeout=0)


# -- commit status: pending, refresh, dropped ------------------------------------------------------


def test_slow_commit_returns_pending_and_refresh_confirms(org: Identity) -> None:
    with (
        FabricGateway(members={MSP: [org.cert_pem]}, hold_commits=True) as gw,
        client(gw, org, timeout=0.4) as anchor,
    ):
        pending = anchor.anchor(4, ROOT_A)
        assert (pending.status, pending.block) == ("pending", None)
        assert anchor.refresh(pending) == pending  # still not committed
        gw.release()
        confirmed = anchor.refresh(pending)
        assert (confirmed.status, confirmed.block, confirmed.tx) == ("confirmed", 1, pending.tx)
        # Refreshing an already committed transaction answers at once and the same way.
        assert anchor.refresh(confirmed) == confirmed
        assert anchor.read(4).tx == pending.tx  # type: ignore[union-attr]


def test_refresh_of_a_committed_transaction(gateway: FabricGateway, org: Identity) -> None:
    with client(gateway, org) as anchor:
        record = anchor.anchor(6, ROOT_A)
        assert anchor.refresh(replace(record, status="pending", block=None)) == record


def test_conflicting_anchorings_in_one_block_one_is_dropped(org: Identity) -> None:
    """Two anchorings endorsed on the same state: the committer's MVCC check invalidates the second."""
    with (
        FabricGateway(members={MSP: [org.cert_pem]}, hold_commits=True) as gw,
        client(gw, org, timeout=0.3) as anchor,
    ):
        first = anchor.anchor(3, ROOT_A)
        second = anchor.anchor(5, ROOT_B)
        assert first.status == second.status == "pending"
        gw.release()
        assert anchor.refresh(first).status == "confirmed"
        dropped = anchor.refresh(second)
        assert (dropped.status, dropped.block) == ("dropped", 1)
        assert anchor.latest_size() == 3 and anchor.read(5) is None
        assert anchor.refresh(dropped) == dropped  # stays dropped, nothing asked


def test_invalid_validation_code_during_anchor_is_rejected(org: Identity) -> None:
    """The orderer cuts blocks of two: the first anchoring waits (pending), the second lands in the same
    block endorsed on the same state, so the committer marks it MVCC_READ_CONFLICT while anchor() waits."""
    with (
        FabricGateway(members={MSP: [org.cert_pem]}, batch_size=2) as gw,
        client(gw, org, timeout=1.0) as anchor,
    ):
        first = anchor.anchor(3, ROOT_A)
        assert first.status == "pending"
        with pytest.raises(AnchorRejected, match=r"committed in block 1 as invalid \(MVCC_READ_CONFLICT\)"):
            anchor.anchor(5, ROOT_B)
        assert anchor.refresh(first).status == "confirmed"
        assert anchor.latest_size() == 3


def test_a_lost_transaction_is_dropped_once_the_chain_has_moved_past_it(org: Identity) -> None:
    with (
        FabricGateway(members={MSP: [org.cert_pem]}, hold_commits=True) as gw,
        client(gw, org, timeout=0.3) as anchor,
    ):
        lost = anchor.anchor(3, ROOT_A)
        gw.lose_held()  # the orderer never cut it into a block
        gw.hold_commits = False
        later = anchor.anchor(8, ROOT_B)
        assert later.status == "confirmed"
        assert anchor.refresh(lost).status == "dropped"


def test_refresh_refuses_a_record_of_another_chain(gateway: FabricGateway, org: Identity) -> None:
    record = AnchorRecord(
        "ethereum", "1", "0xabc", 3, ROOT_A.hex(), "0x01", 1, "confirmed", "2026-01-01T00:00:00Z"
    )
    with client(gateway, org) as anchor, pytest.raises(AnchorError, match="record is for ethereum"):
        anchor.refresh(record)


# -- TLS -------------------------------------------------------------------------------------------


def test_tls_with_a_self_signed_server_certificate(org: Identity) -> None:
    server = make_identity("PeerOrgMSP", "peer0.example.com", hosts=["127.0.0.1", "localhost"])
    with FabricGateway(members={MSP: [org.cert_pem]}, tls=server) as gw:
        with client(gw, org, tls_root_cert=server.cert_pem) as anchor:
            assert anchor.anchor(2, ROOT_A).status == "confirmed"
            assert anchor.read(2).root == ROOT_A  # type: ignore[union-attr]
        # A client that does not trust this certificate cannot talk to the gateway at all.
        untrusted = make_identity("Other", "other-ca")
        with (
            client(gw, org, timeout=2.0, tls_root_cert=untrusted.cert_pem) as anchor,
            pytest.raises(AnchorUnavailable),
        ):
            anchor.latest_size()
        # Nor can a plaintext client.
        with client(gw, org, timeout=2.0) as plain, pytest.raises(AnchorUnavailable):
            plain.latest_size()


def test_mutual_tls_presents_the_client_pair_a_peer_requires(org: Identity) -> None:
    # peer.tls.clientAuthRequired: the peer trusts the organisation's TLS CA for clients.
    server = make_identity("PeerOrgMSP", "peer0.example.com", hosts=["127.0.0.1"])
    tls_client = make_identity(MSP, "node-tls-client")
    ca: dict[str, Any] = {"tls_root_cert": server.cert_pem, "timeout": 3.0}
    with FabricGateway(members={MSP: [org.cert_pem]}, tls=server, tls_client_ca=tls_client.cert_pem) as gw:
        pair = {"tls_client_cert": tls_client.cert_pem, "tls_client_key": tls_client.key_pem}
        with client(gw, org, **ca, **pair) as anchor:
            assert "mutual TLS" in anchor.info()["gateway"]
            assert anchor.anchor(2, ROOT_A).status == "confirmed"
        # Without a client certificate, or with one the peer does not trust, no handshake.
        served = dict(gw.calls)
        with client(gw, org, **ca) as anchor, pytest.raises(AnchorUnavailable) as refused:
            anchor.latest_size()
        assert f"fabric gateway {gw.endpoint} (TLS) Evaluate LatestSize: UNAVAILABLE" in str(refused.value)
        stranger = make_identity(MSP, "someone-else")
        other = {"tls_client_cert": stranger.cert_pem, "tls_client_key": stranger.key_pem}
        with client(gw, org, **ca, **other) as anchor, pytest.raises(AnchorUnavailable):
            anchor.latest_size()
        assert gw.calls == served  # refused before any call reached the gateway


def test_the_server_name_override_reaches_a_peer_by_address(org: Identity) -> None:
    # The peer's certificate names only its DNS name; the node reaches it at 127.0.0.1.
    server = make_identity("PeerOrgMSP", "peer0.org1.example.com", hosts=["peer0.org1.example.com"])
    ca: dict[str, Any] = {"tls_root_cert": server.cert_pem, "timeout": 3.0}
    with FabricGateway(members={MSP: [org.cert_pem]}, tls=server) as gw:
        with client(gw, org, **ca) as anchor, pytest.raises(AnchorUnavailable):
            anchor.latest_size()  # 127.0.0.1 is not a name in the certificate
        with client(gw, org, **ca, tls_server_name="peer0.org1.example.com") as anchor:
            assert anchor.latest_size() == 0
            assert "as peer0.org1.example.com" in anchor.info()["gateway"]


def test_a_tls_set_up_that_cannot_work_is_refused_at_connect(org: Identity) -> None:
    server = make_identity("PeerOrgMSP", "peer0.example.com", hosts=["127.0.0.1"])
    tls_client, other = make_identity(MSP, "tls-client"), make_identity(MSP, "other")
    pair = {"tls_client_cert": tls_client.cert_pem, "tls_client_key": tls_client.key_pem}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tls_client_cert": tls_client.cert_pem}, "needs both"),
        ({"tls_client_key": tls_client.key_pem}, "needs both"),
        ({"tls_root_cert": None, **pair}, "TLS is not"),
        ({"tls_root_cert": None, "tls_server_name": "peer0.example.com"}, "TLS is not"),
        ({"tls_server_name": "peer0 example/com"}, "not a host name"),
        ({"tls_root_cert": b"not a certificate"}, "TLS CA is not PEM"),
        ({"tls_client_cert": b"junk", "tls_client_key": tls_client.key_pem}, "client certificate is not PEM"),
        ({"tls_client_cert": tls_client.cert_pem, "tls_client_key": b"junk"}, "client key is not"),
        ({"tls_client_cert": tls_client.cert_pem, "tls_client_key": other.key_pem}, "does not belong"),
    ]
    for tls, message in cases:
        settings: dict[str, Any] = {"tls_root_cert": server.cert_pem, **tls}
        with pytest.raises(AnchorError, match=message) as caught:
            _connect_nowhere(org, **settings)
        assert b"PRIVATE KEY" not in str(caught.value).encode()


# -- the offline verifier stays light --------------------------------------------------------------


def test_ledger_and_the_verifier_do_not_import_grpc() -> None:
    code = (
        "import sys, ledger, ledger.anchors, ledger.verify, ledger.verify_cli\n"
        "bad = [m for m in ('grpc', 'fabric_protos', 'ledger.anchors.fabric') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
