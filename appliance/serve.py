"""Run the HTTP API under gunicorn, with the scheduler as a sibling process.

Each gunicorn worker opens its own Node (the ledger is safe for several
processes); the scheduler runs once, in its own process, started when
gunicorn is ready and stopped when it exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from appliance.logs import configure_logging
from appliance.node import Node
from appliance.settings import Settings

__all__ = ["gunicorn_options", "serve"]


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    s = settings.server
    return {
        "bind": f"{s.host}:{s.port}",
        "workers": s.workers,
        "worker_class": "gthread",
        "threads": s.threads,
        "timeout": s.timeout,
        "graceful_timeout": 10,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.logging.level.lower(),
        "proc_name": "appliance",
    }


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, config: str | None, scheduler: bool) -> None:
        self.settings = settings
        self.config_path = config
        self.with_scheduler = scheduler
        self.scheduler_proc: subprocess.Popen[bytes] | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("on_exit", self._on_exit)

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
        url = f"http://{s.host}:{s.port}"
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


def serve(settings: Settings, config: str | None = None, *, scheduler: bool = True) -> None:
    """Serve until SIGTERM/SIGINT."""
    os.environ["APPLIANCE_NODE__DATA_DIR"] = str(settings.data_dir)
    _Application(settings, config, scheduler).run()
