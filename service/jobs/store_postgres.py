"""The shared job store: PostgreSQL through psycopg 3 and its connection pool (``pip install 'unmask[postgres]'``).

API replicas and workers on any number of machines use one database. A
claim locks the row it takes with ``FOR UPDATE SKIP LOCKED``, so workers
claiming at once take different jobs without waiting for each other; the
queue limit, the lease sweep and the migrations take advisory locks, so one
process at a time does each.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .store import JobStore, StoreError

POOL_SIZE = 16  # connections per process: request threads, job workers, the lease keeper and the webhook sender
CONNECT_TIMEOUT_S = 10


class _Connection:
    """A psycopg connection that takes the store's ``?`` placeholders."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple | list = ()):
        return self.conn.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)


def describe(url: str) -> str:
    """``user@host:port/db`` of a URL: what an error may show (never the password)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:
        return "the database URL"
    host = info.get("host") or "localhost"
    return f"{info.get('user') or ''}{'@' if info.get('user') else ''}{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


class PostgresJobStore(JobStore):
    SEQ = "seq"
    SEQ_COLUMN = "seq BIGINT GENERATED ALWAYS AS IDENTITY,"
    NOW = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, lease_s: float = 30.0, pool_size: int = POOL_SIZE) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise StoreError(f"a postgresql:// database needs the postgres extra ({exc.name} is missing): "
                             "pip install 'unmask[postgres]'") from None
        try:  # one plain connection first: the pool would retry quietly where this says why (refused, wrong password)
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {describe(url)}: {' '.join(str(exc).split())}") from None
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True, name="unmask-jobs",
                                    kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S},
                                    check=ConnectionPool.check_connection)
        try:
            super().__init__(lease_s)
        except BaseException:
            self._pool.close()
            raise

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[_Connection]:
        with self._pool.connection() as conn:  # commits at the end, rolls back on an exception
            yield _Connection(conn)

    def _lock(self, db: _Connection, key: int, wait: bool = True) -> bool:
        if wait:
            db.execute("SELECT pg_advisory_xact_lock(?)", (key,))
            return True
        return bool(db.execute("SELECT pg_try_advisory_xact_lock(?) AS taken", (key,)).fetchone()["taken"])

    def close(self) -> None:
        self._pool.close()
