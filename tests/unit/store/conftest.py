"""Store tests run on both backends: SQLite in tmp_path and a real PostgreSQL started for the session.

PostgreSQL is not optional: without its binaries the ``postgresql`` cases fail and
say to run ``make sysdeps``. ``APPLIANCE_SKIP_PG=1`` skips them deliberately.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgserver import SKIP_ENV, PgServer, PgUnavailable, running_server

from appliance.store import Store


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: the PostgreSQL cases are skipped on purpose")
    with contextlib.ExitStack() as stack:
        problem = None
        try:
            server = stack.enter_context(running_server("appliance_test"))
        except PgUnavailable as exc:
            problem = str(exc)
        if problem is not None:  # a failure, not a skip: the PostgreSQL half of the suite must run
            pytest.fail(problem, pytrace=False)
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend (PostgreSQL: the shared test database, emptied first)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    server.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public", database="appliance_test")
    return server.url("appliance_test")


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "field.keys"


@pytest.fixture
def store(store_url: str, keyring_path: Path) -> Iterator[Store]:
    s = Store.create(store_url, keyring_path)
    yield s
    s.close()
