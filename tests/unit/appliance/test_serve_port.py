"""`appliance serve` refuses a port another server listens on, although its own workers use
SO_REUSEPORT (which would let a second server bind it and silently share its traffic)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.serve import check_port_free
from appliance.settings import ServerSettings, SettingsError


def _listener(reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # as gunicorn's workers listen (gunicorn_options: reuse_port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("reuse_port", [True, False])
def test_a_port_with_a_listener_is_refused_with_what_to_do(reuse_port: bool) -> None:
    sock = _listener(reuse_port)
    port = sock.getsockname()[1]
    try:
        with pytest.raises(SettingsError, match=rf"cannot listen on 127.0.0.1:{port} .*set server.port"):
            check_port_free(ServerSettings(host="127.0.0.1", port=port))
    finally:
        sock.close()
    check_port_free(ServerSettings(host="127.0.0.1", port=port))  # free again once it stopped


def test_a_port_left_with_connections_in_time_wait_is_free() -> None:
    sock = _listener(reuse_port=True)
    port = sock.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = sock.accept()
    conn.close()  # the server side closes first: its end of the connection sits in TIME_WAIT
    client.close()
    sock.close()
    check_port_free(ServerSettings(host="127.0.0.1", port=port))


def test_serve_stops_before_starting_gunicorn(tmp_path) -> None:
    """The CLI answers with the reason and a non-zero exit, not a second server sharing the port."""
    env = dict(os.environ, APPLIANCE_NODE__DATA_DIR=str(tmp_path / "node"))
    bin_dir = Path(sys.executable).parent
    init = subprocess.run([bin_dir / "appliance", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    sock = _listener(reuse_port=True)
    port = sock.getsockname()[1]
    try:
        out = subprocess.run(
            [bin_dir / "appliance", "serve", "--port", str(port), "--no-scheduler"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        sock.close()
    assert out.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr
    assert "Booting worker" not in out.stderr
