"""Run the HTTP API under gunicorn, with the scheduler as a sibling process.

Each gunicorn worker opens its own Node (the ledger is safe for several
processes); the scheduler runs once, in its own process, started when
gunicorn is ready and stopped when it exits.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from appliance import metrics
from appliance.errors import SettingsError
from appliance.keys import read_secret
from appliance.logs import configure_logging
from appliance.node import Node
from appliance.settings import ServerSettings, Settings

__all__ = [
    "check_port_free",
    "check_tls_files",
    "control_options",
    "gunicorn_options",
    "serve",
    "tls_options",
]


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    s = settings.server
    return {
        "bind": f"{s.host}:{s.port}",
        "workers": s.workers,
        "worker_class": "gthread",
        "threads": s.threads,
        "timeout": s.timeout,
        "graceful_timeout": 10,
        "limit_request_line": 8190,  # a longer request line (URL) gets gunicorn's 414
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,  # a longer header gets gunicorn's 431
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.logging.level.lower(),
        "proc_name": "appliance",
        # A listening socket per worker (SO_REUSEPORT): the kernel spreads new connections over the
        # workers. With one shared socket, a gthread worker accepts every keep-alive connection of a
        # burst it wins, and its siblings idle while it queues them (docs/operations.md, "Load").
        "reuse_port": True,
        **control_options(s),
    } | tls_options(s)


def control_options(server: ServerSettings) -> dict[str, Any]:
    """gunicorn's control socket only where the operator put it.

    gunicorn's default is one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl): a second
    node (or the witness) run by the same user would take it over, and `gunicornc` would then reload
    or stop the wrong server. It is also a management surface, so it is off unless asked for.
    """
    if server.control_socket is None:
        return {"control_socket_disable": True}
    return {"control_socket": str(server.control_socket.expanduser().resolve()), "control_socket_mode": 0o600}


def _tls_context(config: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    """gunicorn's context (certificate, key, client CA, verify mode), with TLS 1.2 as the floor."""
    context: ssl.SSLContext = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_options(server: ServerSettings) -> dict[str, Any]:
    """gunicorn's TLS settings for ``server.tls_*``; empty (plain HTTP) when no certificate is set."""
    if server.tls_cert_file is None or server.tls_key_file is None:
        return {}
    options: dict[str, Any] = {
        "certfile": str(server.tls_cert_file),
        "keyfile": str(server.tls_key_file),
        "ssl_context": _tls_context,
        "cert_reqs": ssl.CERT_NONE,
    }
    if server.tls_client_ca_file is not None:
        options |= {"ca_certs": str(server.tls_client_ca_file), "cert_reqs": ssl.CERT_REQUIRED}
    return options


def check_tls_files(server: ServerSettings) -> None:
    """Refuse to start with TLS files that are missing, or a private key others may read."""
    for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
        path = getattr(server, name)
        if path is not None and not Path(path).is_file():
            raise SettingsError(f"server.{name}: {path} is not a file; fix the path")
    if server.tls_key_file is not None:
        read_secret(Path(server.tls_key_file))  # KeyFileError unless the mode is 0600 (or stricter)
    try:
        if server.tls_cert_file is not None:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                str(server.tls_cert_file), str(server.tls_key_file)
            )
        if server.tls_client_ca_file is not None:
            ssl.create_default_context(cafile=str(server.tls_client_ca_file))
    except ssl.SSLError as exc:
        raise SettingsError(
            f"server.tls_*: the certificate, key or client CA cannot be loaded ({exc.reason or exc}); "
            "give PEM files, the key matching the certificate"
        ) from exc


class _JsonLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's own lines (booting, worker exits, errors) through the node's JSON handler, not its own."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True
        configure_logging(cfg.loglevel.upper())


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, config: str | None, scheduler: bool) -> None:
        self.settings = settings
        self.config_path = config
        self.with_scheduler = scheduler
        self.scheduler_proc: subprocess.Popen[bytes] | None = None
        # Before any worker forks: every worker (and the scheduler) writes its samples there.
        self.metrics_dir, self.metrics_dir_made = metrics.use_multiprocess_dir(
            settings.metrics.multiprocess_dir
        )
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("on_exit", self._on_exit)
        self.cfg.set("child_exit", self._child_exit)
        self.cfg.set("logger_class", _JsonLogger)

    def load(self) -> Any:
        from appliance.server import create_app

        configure_logging(self.settings.logging.level)
        return create_app(self.settings)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["APPLIANCE_NODE__DATA_DIR"] = str(self.settings.data_dir)
        if self.config_path:
            env["APPLIANCE_CONFIG"] = self.config_path
        return env

    def _when_ready(self, arbiter: Any) -> None:
        s = self.settings.server
        url = f"{'https' if s.tls_cert_file else 'http'}://{s.host}:{s.port}"
        print(f"appliance serving on {url}  (OpenAPI: {url}/openapi.json, health: {url}/healthz)", flush=True)
        keys = Node.read_demo_keys(self.settings.data_dir)
        if keys:
            print("demo API keys (send as 'Authorization: Bearer <key>'):", flush=True)
            for role, token in keys.items():
                print(f"  {role:<10} {token}", flush=True)
        if self.with_scheduler:
            self.scheduler_proc = subprocess.Popen(
                [sys.executable, "-m", "appliance", "scheduler"], env=self._env()
            )

    def _on_exit(self, arbiter: Any) -> None:
        proc = self.scheduler_proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.metrics_dir_made:  # on_exit runs in the master only (workers also unwind serve())
            metrics.remove_multiprocess_dir(self.metrics_dir)

    def _child_exit(self, arbiter: Any, worker: Any) -> None:
        metrics.process_exited(worker.pid)


def check_port_free(server: ServerSettings) -> None:
    """Refuse a port that another server listens on, before gunicorn binds it.

    The workers listen with SO_REUSEPORT (see :func:`gunicorn_options`), so the kernel would let a
    second ``appliance serve`` on the same port bind too, and the two would silently share the
    traffic (and two nodes' ledgers the requests). A probe without SO_REUSEPORT is refused by any
    listener; SO_REUSEADDR keeps connections of a server that just stopped (TIME_WAIT) from counting.
    """
    if server.port == 0:
        return
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((server.host, server.port))
        except OSError as exc:
            raise SettingsError(
                f"cannot listen on {server.host}:{server.port} ({exc.strerror or exc}): another server, "
                "perhaps another `appliance serve`, holds it; stop that one or set server.port"
            ) from None


def serve(settings: Settings, config: str | None = None, *, scheduler: bool = True) -> None:
    """Serve until SIGTERM/SIGINT; raises SettingsError/KeyFileError for unusable TLS files or a port
    in use first."""
    check_tls_files(settings.server)
    check_port_free(settings.server)
    os.environ["APPLIANCE_NODE__DATA_DIR"] = str(settings.data_dir)
    _Application(settings, config, scheduler).run()
