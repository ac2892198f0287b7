"""Job store fixtures: the same tests run on the SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import importlib.util
import os

import pytest

from .postgres import PostgresServer, server_binaries


def _missing(reason: str):
    """Skip with the reason, except in CI (CI=true), where the Postgres tests must run: fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests (.ci/run installs postgresql)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the whole session."""
    binaries = server_binaries()
    if binaries is None:
        _missing("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    if importlib.util.find_spec("psycopg") is None or importlib.util.find_spec("psycopg_pool") is None:
        _missing("psycopg is not installed (pip install 'unmask[postgres]')")
    server = PostgresServer(binaries).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """A new, empty job database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def store(store_url):
    from unmask.service.jobs.store import open_store

    s = open_store(store_url)
    yield s
    s.close()
