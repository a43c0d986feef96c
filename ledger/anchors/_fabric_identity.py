"""The organisation's signing identity as Fabric sees it: an MSP id, an X.509 certificate and a P-256 key.

Fabric identifies a client by a ``SerializedIdentity`` (MSP id + the PEM certificate,
byte for byte) and checks ECDSA signatures over SHA-256 of the signed bytes. Its
verifier refuses "high-S" signatures (``s > n/2``) so that a signature cannot be
malleated into a second valid one; OpenSSL emits either form, so every signature is
normalised to low-S here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ledger.anchors.base import AnchorError

__all__ = ["P256_ORDER", "FabricIdentity", "low_s"]

# Order n of the NIST P-256 group (SEC 2, secp256r1).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def low_s(signature: bytes) -> bytes:
    """The same ECDSA signature (DER) with ``s`` folded into the lower half of the group order."""
    r, s = decode_dss_signature(signature)
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return encode_dss_signature(r, s)


@dataclass(frozen=True)
class FabricIdentity:
    """Who signs proposals, envelopes and commit-status requests."""

    msp_id: str
    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def load(cls, *, msp_id: str, cert_pem: bytes, key_pem: bytes) -> FabricIdentity:
        """Parse the PEM files Fabric's CA (or cryptogen) issues; refuse anything but a P-256 key."""
        if not msp_id or not msp_id.strip():
            raise AnchorError("fabric: msp_id is empty; give the organisation's MSP id, e.g. Org1MSP")
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise AnchorError(
                f"fabric: the client certificate is not a PEM X.509 certificate: {exc}"
            ) from exc
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # No detail from the parser: it could echo key material.
            raise AnchorError(
                "fabric: the client key is not an unencrypted PEM private key (PKCS#8 or SEC1)"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise AnchorError("fabric: the client key must be an ECDSA P-256 key, as Fabric MSPs issue")
        cert_key = cert.public_key()
        if not isinstance(cert_key, ec.EllipticCurvePublicKey) or not isinstance(
            cert_key.curve, ec.SECP256R1
        ):
            raise AnchorError("fabric: the client certificate must carry an ECDSA P-256 public key")
        return cls(msp_id=msp_id, cert_pem=cert_pem, key=key)

    def key_matches_certificate(self) -> bool:
        """True when the private key is the one the certificate names (else every signature fails)."""
        cert_key = x509.load_pem_x509_certificate(self.cert_pem).public_key()
        fmt = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.DER
        return cert_key.public_bytes(enc, fmt) == self.key.public_key().public_bytes(enc, fmt)

    @property
    def creator(self) -> bytes:
        """The serialized ``msp.SerializedIdentity`` that goes in every signature header."""
        from fabric_protos.msp import identities_pb2

        return bytes(
            identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.cert_pem).SerializeToString()
        )

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 over SHA-256(message), DER-encoded, low-S."""
        return low_s(self.key.sign(message, ec.ECDSA(hashes.SHA256())))
