"""`appliance serve` over TLS (gunicorn's certfile/keyfile/ca_certs), and gunicorn's request limits.

A throw-away CA made with `cryptography` signs the server's certificate (SAN 127.0.0.1) and a client
certificate; the server runs on 127.0.0.1 on a free port. One server serves HTTPS only; a second one
requires client certificates (mutual TLS).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from support.live_server import BIN, free_port, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # two servers and two CLI runs: ~40 s
MAX_BODY = 65_536


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer is not None else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("appliance test CA", ca_key, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    files = {
        "ca": d / "ca.pem",
        "cert": d / "server.pem",
        "key": _write_key(d / "server.key", server_key),
        "client_cert": d / "client.pem",
        "client_key": _write_key(d / "client.key", client_key),
    }
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for path, subject, key, server in (
        (files["cert"], "127.0.0.1", server_key, True),
        (files["client_cert"], "ops-robot", client_key, False),
    ):
        cert = _cert(subject, key, (ca.subject, ca_key), server=server)
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from appliance.node import Node
    from appliance.settings import load_settings

    data = tmp_path_factory.mktemp("tls") / "node"
    tokens = dict(Node.init(load_settings(node={"data_dir": data})).api_keys)
    return {"data": data, "tokens": tokens}


def _serve(node: dict[str, Any], pki: dict[str, Path], *, client_ca: bool, log: Path) -> Iterator[str]:
    env = dict(
        os.environ,
        APPLIANCE_NODE__DATA_DIR=str(node["data"]),
        APPLIANCE_SERVER__TLS_CERT_FILE=str(pki["cert"]),
        APPLIANCE_SERVER__TLS_KEY_FILE=str(pki["key"]),
        APPLIANCE_SERVER__MAX_BODY_BYTES=str(MAX_BODY),
    )
    if client_ca:
        env["APPLIANCE_SERVER__TLS_CLIENT_CA_FILE"] = str(pki["ca"])
    cert = (str(pki["client_cert"]), str(pki["client_key"])) if client_ca else None
    with serve(
        env,
        log=log,
        args=("--workers", "2", "--no-scheduler"),
        scheme="https",
        probe={"verify": str(pki["ca"]), "cert": cert},
    ) as live:
        yield live.base


@pytest.fixture(scope="module")
def https(node: dict[str, Any], pki: dict[str, Path]) -> Iterator[str]:
    yield from _serve(node, pki, client_ca=False, log=node["data"].parent / "https.log")


def test_https_with_the_ca_works_and_says_so(https: str, node: dict[str, Any], pki: dict[str, Path]) -> None:
    r = requests.get(https + "/healthz", verify=str(pki["ca"]), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    auth = {"Authorization": f"Bearer {node['tokens']['auditor']}"}
    r = requests.get(https + "/v1/ledger/checkpoint", headers=auth, verify=str(pki["ca"]), timeout=5)
    assert r.status_code == 200 and r.json()["tree_size"] > 0
    assert "appliance serving on https://127.0.0.1" in (node["data"].parent / "https.log").read_text()
    # An unknown CA is refused by the client, as it should be.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https + "/healthz", timeout=5)


def test_plain_http_to_the_tls_port_gets_no_answer(https: str) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(https.replace("https://", "http://") + "/healthz", timeout=5)


def _handshake(https: str, ca: Path, version: ssl.TLSVersion) -> str:
    host, port = https.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cafile=str(ca))
    if version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer old protocols: the server must refuse
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = version
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            return str(tls.version())


def test_tls_1_2_is_the_floor(https: str, pki: dict[str, Path]) -> None:
    assert _handshake(https, pki["ca"], ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert _handshake(https, pki["ca"], ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is: that is the point
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _handshake(https, pki["ca"], ssl.TLSVersion.TLSv1_1)


def test_gunicorn_refuses_oversized_urls_and_headers_cleanly(https: str, pki: dict[str, Path]) -> None:
    ca = str(pki["ca"])
    r = requests.get(https + "/healthz?" + "q=" + "x" * 9000, verify=ca, timeout=5)
    assert r.status_code == 414 and "Traceback" not in r.text
    r = requests.get(https + "/healthz", headers={"X-Big": "y" * 9000}, verify=ca, timeout=5)
    assert r.status_code in (400, 431) and "Traceback" not in r.text
    many = {f"X-H{i}": "1" for i in range(150)}
    r = requests.get(https + "/healthz", headers=many, verify=ca, timeout=5)
    assert r.status_code in (400, 431) and "Traceback" not in r.text
    # And the server is still there.
    assert requests.get(https + "/healthz", verify=ca, timeout=5).status_code == 200


def test_oversized_bodies_declared_or_chunked_get_413_problem_json(
    https: str, node: dict[str, Any], pki: dict[str, Path]
) -> None:
    auth = {"Authorization": f"Bearer {node['tokens']['admin']}", "Content-Type": "application/json"}
    body = json.dumps({"action": "test.big", "details": {"pad": "x" * (MAX_BODY + 10)}}).encode()

    def chunks() -> Iterator[bytes]:  # no length known: requests sends Transfer-Encoding: chunked
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    for data in (body, chunks()):
        r = requests.post(
            https + "/v1/ledger/entries", headers=auth, data=data, verify=str(pki["ca"]), timeout=10
        )
        assert r.status_code == 413, r.text
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/body-too-large")
    small = json.dumps({"action": "test.small", "details": {}}).encode()
    r = requests.post(
        https + "/v1/ledger/entries", headers=auth, data=iter([small]), verify=str(pki["ca"]), timeout=10
    )
    assert r.status_code == 201, r.text


def test_a_key_revoked_by_the_cli_is_refused_by_every_worker_at_once(
    https: str, node: dict[str, Any], pki: dict[str, Path]
) -> None:
    from appliance.keys import ApiKeyStore

    key, token = ApiKeyStore(node["data"] / "keys" / "api_keys.json").issue("auditor", label="to revoke live")
    auth = {"Authorization": f"Bearer {token}"}

    def statuses() -> set[int]:
        # A new connection per request: the kernel spreads them over both workers, which each cache the key.
        url = https + "/v1/ledger/checkpoint"
        return {
            requests.get(url, headers=auth, verify=str(pki["ca"]), timeout=10).status_code for _ in range(30)
        }

    assert statuses() == {200}
    env = dict(os.environ, APPLIANCE_NODE__DATA_DIR=str(node["data"]))
    out = subprocess.run(
        [BIN / "appliance", "keys", "revoke", key.key_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert statuses() == {401}


def test_mutual_tls_requires_a_client_certificate(node: dict[str, Any], pki: dict[str, Path]) -> None:
    for base in _serve(node, pki, client_ca=True, log=node["data"].parent / "mtls.log"):
        ca = str(pki["ca"])
        client = (str(pki["client_cert"]), str(pki["client_key"]))
        ok = requests.get(base + "/healthz", verify=ca, cert=client, timeout=10)
        assert ok.status_code == 200
        with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
            requests.get(base + "/healthz", verify=ca, timeout=5)


def test_serve_refuses_a_private_key_others_can_read(
    node: dict[str, Any], pki: dict[str, Path], tmp_path: Path
) -> None:
    loose = tmp_path / "loose.key"
    loose.write_bytes(pki["key"].read_bytes())
    os.chmod(loose, 0o644)
    env = dict(
        os.environ,
        APPLIANCE_NODE__DATA_DIR=str(node["data"]),
        APPLIANCE_SERVER__TLS_CERT_FILE=str(pki["cert"]),
        APPLIANCE_SERVER__TLS_KEY_FILE=str(loose),
    )
    port = str(free_port())
    out = subprocess.run(
        [BIN / "appliance", "serve", "--port", port, "--no-scheduler"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "chmod 600" in out.stderr and "Traceback" not in out.stderr
    # A key that does not belong to the certificate is refused before anything listens, too.
    other = _write_key(tmp_path / "other.key", ec.generate_private_key(ec.SECP256R1()))
    env["APPLIANCE_SERVER__TLS_KEY_FILE"] = str(other)
    out = subprocess.run(
        [BIN / "appliance", "serve", "--port", port, "--no-scheduler"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "cannot be loaded" in out.stderr and "Traceback" not in out.stderr
