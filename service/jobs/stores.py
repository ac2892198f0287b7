"""Which job store a database URL names.

Apart from ``store`` so that the backends, which build on ``store.JobStore``,
are imported by this door and never by their own base module.
"""

from __future__ import annotations

from .store import JobStore, StoreError


def open_store(url: str, lease_s: float = 30.0) -> JobStore:
    """The store a database URL names: ``sqlite:///PATH`` (``sqlite:////abs/path``) or ``postgresql://...``.

    Raises:
        StoreError: an unsupported scheme, or a database that cannot be opened (one line, no password).
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .store_sqlite import SqliteJobStore, sqlite_path

        return SqliteJobStore(sqlite_path(url), lease_s)
    if scheme in ("postgresql", "postgres"):
        from .store_postgres import PostgresJobStore

        return PostgresJobStore(url, lease_s)
    raise StoreError(f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB")
