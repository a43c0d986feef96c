"""A throw-away PostgreSQL server for tests: initdb in a temp dir, postgres on 127.0.0.1, stopped at the end.

The Debian package (``make sysdeps`` installs it) ships the binaries under
``/usr/lib/postgresql/<version>/bin`` without putting them on PATH. PostgreSQL
refuses to run as root, so as root everything runs as the package's ``postgres``
user via ``runuser``. The cluster is tuned for tests (``fsync=off``): it is deleted
afterwards anyway.

Conftest files import this module by name (``tests/`` is on ``sys.path`` because
``tests/conftest.py`` lives there); never ``from conftest import``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PgServer", "PgUnavailable", "find_bindir", "running_server"]

SKIP_ENV = "APPLIANCE_SKIP_PG"


class PgUnavailable(RuntimeError):
    """No PostgreSQL server binaries here; the message says how to get them."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb (or initdb on PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PgUnavailable(
        "the PostgreSQL server binaries (initdb, postgres) are not installed; run `make sysdeps` "
        f"(it installs the Debian package postgresql), or set {SKIP_ENV}=1 to skip the PostgreSQL tests"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One running cluster; ``url(db)`` gives a SQLAlchemy URL for the psycopg 3 driver."""

    def __init__(self, bindir: Path, root: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.bindir = bindir
        self.root = root
        self.port = port
        self.proc = proc

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "appliance_test") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE DATABASE cannot run inside one)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def running_server(database: str = "appliance_test") -> Iterator[PgServer]:
    """initdb, start, wait until it answers, create ``database``; stop and delete everything after."""
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="appliance-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            raise PgUnavailable(
                "running as root but there is no `postgres` user to run the server as; run `make sysdeps` "
                f"(the Debian package creates it), or set {SKIP_ENV}=1"
            ) from None
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, sock, log = root / "data", root / "sock", root / "postgres.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(_as_postgres(["mkdir", "-m", "700", str(sock)]), check=True)
        initdb = subprocess.run(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if initdb.returncode:
            raise PgUnavailable(f"initdb failed: {initdb.stderr.decode(errors='replace')}")
        port = _free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                _as_postgres(
                    [
                        str(bindir / "postgres"),
                        "-D",
                        str(data),
                        "-p",
                        str(port),
                        "-k",
                        str(sock),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=50",
                    ]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = PgServer(bindir, root, port, proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                server.execute("SELECT 1")
                break
            except Exception as exc:  # noqa: BLE001 - any failure means "not up yet" until the deadline
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise PgUnavailable(
                        f"PostgreSQL did not start ({exc}); its log says:\n{log.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.1)
        server.execute(f"CREATE DATABASE {database}")
        yield server
    finally:
        if proc is not None:
            if proc.poll() is None:
                subprocess.run(
                    _as_postgres([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"]),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)
