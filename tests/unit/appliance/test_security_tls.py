"""What `appliance serve` hands gunicorn for TLS and request limits (the live server: tests/integration)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from appliance.serve import check_tls_files, gunicorn_options, tls_options
from appliance.settings import ServerSettings, SettingsError, load_settings


def test_plain_http_by_default_with_gunicorn_request_limits() -> None:
    options = gunicorn_options(load_settings())
    assert not {"certfile", "keyfile", "ca_certs", "ssl_context"} & options.keys()
    assert options["limit_request_line"] == 8190
    assert options["limit_request_field_size"] == 8190
    assert options["limit_request_fields"] == 100


def test_tls_settings_become_gunicorn_options() -> None:
    server = ServerSettings(tls_cert_file=Path("/srv/c.pem"), tls_key_file=Path("/srv/k.pem"))
    options = tls_options(server)
    assert options["certfile"] == "/srv/c.pem" and options["keyfile"] == "/srv/k.pem"
    assert options["cert_reqs"] == ssl.CERT_NONE and "ca_certs" not in options
    mutual = tls_options(server.model_copy(update={"tls_client_ca_file": Path("/srv/ca.pem")}))
    assert mutual["ca_certs"] == "/srv/ca.pem" and mutual["cert_reqs"] == ssl.CERT_REQUIRED


def test_the_context_hook_raises_the_floor_to_tls_1_2() -> None:
    hook = tls_options(ServerSettings(tls_cert_file=Path("c"), tls_key_file=Path("k")))["ssl_context"]
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    loose.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context = hook(None, lambda: loose)
    assert context is loose and context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_settings_need_both_files() -> None:
    with pytest.raises(SettingsError, match="tls_cert_file and tls_key_file go together"):
        load_settings(server={"tls_key_file": "/srv/k.pem"})
    with pytest.raises(SettingsError, match="tls_client_ca_file needs tls_cert_file"):
        load_settings(server={"tls_client_ca_file": "/srv/ca.pem"})


def test_missing_tls_files_are_named(tmp_path: Path) -> None:
    server = ServerSettings(tls_cert_file=tmp_path / "nope.pem", tls_key_file=tmp_path / "nope.key")
    with pytest.raises(SettingsError, match=r"server.tls_cert_file: .*nope.pem is not a file"):
        check_tls_files(server)
