"""gunicorn's control socket: none unless configured, and then the node's own (never one per user)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from support.live_server import BIN, serve

from appliance.serve import control_options
from appliance.settings import ServerSettings, SettingsError, load_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("ctl")
    home = root / "home"
    home.mkdir()
    # gunicorn's default is $XDG_RUNTIME_DIR/gunicorn.ctl, else ~/.gunicorn/gunicorn.ctl: point both here.
    env = dict(os.environ, APPLIANCE_NODE__DATA_DIR=str(root / "node"), HOME=str(home))
    env.pop("XDG_RUNTIME_DIR", None)
    subprocess.run([BIN / "appliance", "init"], env=env, check=True, capture_output=True)
    return env


def test_no_control_socket_by_default(node: dict[str, str], tmp_path: Path) -> None:
    with serve(node, log=tmp_path / "server.log", args=("--workers", "2", "--no-scheduler")):
        assert not (Path(node["HOME"]) / ".gunicorn").exists()
    assert control_options(ServerSettings()) == {"control_socket_disable": True}


def test_a_configured_control_socket_is_private_and_reaches_this_node(
    node: dict[str, str], tmp_path: Path
) -> None:
    ctl = tmp_path / "node.ctl"
    env = dict(node, APPLIANCE_SERVER__CONTROL_SOCKET=str(ctl))
    with serve(env, log=tmp_path / "server.log", args=("--workers", "2", "--no-scheduler")) as live:
        st = ctl.stat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        shown = subprocess.run(
            [BIN / "gunicornc", "-s", str(ctl), "-c", "show workers", "-j"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        workers = json.loads(shown.stdout)
        pids = {w["pid"] for w in workers["workers"]}
        assert len(pids) == 2 and live.proc.pid not in pids
    assert not (Path(node["HOME"]) / ".gunicorn").exists()


def test_a_socket_path_the_kernel_cannot_take_is_refused() -> None:
    with pytest.raises(SettingsError, match="longer than a Unix socket path may be"):
        load_settings(server={"control_socket": "/tmp/" + "d" * 120 + "/node.ctl"})
