"""Fabric's transaction messages, built and read the way the official Gateway clients do.

A transaction starts as a ``Proposal``: a ``Header`` (a ``ChannelHeader`` naming the
channel, the transaction id and the chaincode, plus a ``SignatureHeader`` holding the
creator and a fresh nonce) and a ``ChaincodeProposalPayload`` holding the invocation
(function name and arguments). The transaction id is ``hex(SHA-256(nonce ‖ creator))``:
peers recompute it and refuse a proposal whose id does not match.

The gateway answers an endorsement with an unsigned envelope whose header must be the
one we proposed; :func:`check_prepared` makes sure we never sign anything else.

Gateway errors carry ``gateway.ErrorDetail`` messages (which peer or orderer said what)
inside the standard ``grpc-status-details-bin`` trailer (a ``google.rpc.Status``);
:func:`error_details` reads them without needing googleapis' generated modules.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import DecodeError

__all__ = ["NONCE_SIZE", "Proposal", "check_prepared", "error_details", "new_proposal", "transaction_id"]

NONCE_SIZE = 24  # bytes, as the Go, Node and Java gateway clients use
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_DETAIL_TYPE = "gateway.ErrorDetail"


def transaction_id(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction id: lowercase hex of SHA-256(nonce ‖ serialized creator)."""
    return hashlib.sha256(nonce + creator).hexdigest()


@dataclass(frozen=True)
class Proposal:
    """One unsigned proposal and the pieces the later steps need."""

    tx_id: str
    proposal_bytes: bytes
    channel_header: bytes
    signature_header: bytes


def new_proposal(
    *, channel: str, chaincode: str, function: str, args: Sequence[bytes], creator: bytes
) -> Proposal:
    """A fresh ENDORSER_TRANSACTION proposal invoking ``function(*args)`` on ``chaincode``."""
    nonce = os.urandom(NONCE_SIZE)
    tx_id = transaction_id(nonce, creator)
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION,
        channel_id=channel,
        tx_id=tx_id,
        timestamp=timestamp,
        epoch=0,
        extension=proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id).SerializeToString(),
    ).SerializeToString()
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString()
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_id,
            input=chaincode_pb2.ChaincodeInput(args=[function.encode("utf-8"), *args]),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(input=invocation.SerializeToString())
    proposal = proposal_pb2.Proposal(
        header=common_pb2.Header(
            channel_header=channel_header, signature_header=signature_header
        ).SerializeToString(),
        payload=payload.SerializeToString(),
    )
    return Proposal(
        tx_id=tx_id,
        proposal_bytes=bytes(proposal.SerializeToString()),
        channel_header=bytes(channel_header),
        signature_header=bytes(signature_header),
    )


def check_prepared(envelope: Any, proposal: Proposal) -> str | None:
    """Why the gateway's prepared envelope is not the transaction we proposed, or None if it is."""
    try:
        payload = common_pb2.Payload.FromString(envelope.payload)
    except DecodeError as exc:
        return f"the prepared transaction does not parse: {exc}"
    if payload.header.channel_header != proposal.channel_header:
        return "the prepared transaction's channel header is not the one proposed"
    if payload.header.signature_header != proposal.signature_header:
        return "the prepared transaction's signature header is not the one proposed"
    if not payload.data:
        return "the prepared transaction carries no endorsed action"
    return None


def error_details(trailing_metadata: Iterable[tuple[str, Any]] | None) -> list[str]:
    """``"Org1MSP@peer0:7051: message"`` for every ``gateway.ErrorDetail`` in a gRPC error's trailer."""
    found: list[str] = []
    for key, value in trailing_metadata or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        for raw in _status_details(value):
            try:
                packed = any_pb2.Any.FromString(raw)
                if packed.type_url.rsplit("/", 1)[-1] != _ERROR_DETAIL_TYPE:
                    continue
                detail = gateway_pb2.ErrorDetail.FromString(packed.value)
            except DecodeError:
                continue
            where = "@".join(part for part in (detail.msp_id, detail.address) if part)
            found.append(f"{where}: {detail.message}" if where else str(detail.message))
    return found


def _status_details(status: bytes) -> list[bytes]:
    """The raw ``details`` (field 3, repeated Any) of a serialized ``google.rpc.Status``; [] if malformed."""
    out: list[bytes] = []
    pos = 0
    try:
        while pos < len(status):
            tag, pos = _varint(status, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                _, pos = _varint(status, pos)
            elif wire == 2:
                length, pos = _varint(status, pos)
                if pos + length > len(status):
                    return out
                if field == 3:
                    out.append(status[pos : pos + length])
                pos += length
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                return out
    except IndexError:
        return out
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")
