"""The embedded job store: one SQLite file (WAL), nothing to install.

Several processes of one machine may share the file (``unmask serve
--no-worker`` and ``unmask worker`` beside each other): every write takes
SQLite's write lock (``BEGIN IMMEDIATE``), so a claim, a sweep or a count
and its inserts are whole. WAL needs shared memory between the processes:
the file must be on a local disk, never on a network share; across machines
use PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .store import JobStore, StoreError

# Columns a jobs.db from before schema versions may lack: (name, definition).
UNVERSIONED_COLUMNS = [
    ("options", "TEXT NOT NULL DEFAULT '{}'"),
    ("callback_url", "TEXT"),
    ("callback_state", "TEXT"),
    ("callback_attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("callback_next", "REAL"),
    ("callback_status", "INTEGER"),
    ("callback_error", "TEXT"),
]
BUSY_TIMEOUT_MS = 15_000  # how long a write waits for another process's


def sqlite_path(url: str) -> Path:
    """``sqlite:///jobs.db`` is relative, ``sqlite:////srv/jobs.db`` absolute (as SQLAlchemy reads them)."""
    if not url.lower().startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise StoreError(f"an SQLite URL is sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE/PATH, not {url!r}")
    return Path(url[len("sqlite:///"):])


class SqliteJobStore(JobStore):
    """One connection per process, one lock per connection."""

    SEQ = "rowid"
    SEQ_COLUMN = ""
    NOW = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: Path, lease_s: float = 30.0) -> None:
        self.path = path
        self._lock_db = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            # Pragmas outside a transaction (SQLite refuses some inside one).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            super().__init__(lease_s)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the job database {path}: {exc}") from exc

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock_db:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _adopt_unversioned(self, db: sqlite3.Connection) -> None:
        columns = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
        if not columns:
            return  # a new file
        for name, definition in UNVERSIONED_COLUMNS:
            if name not in columns:
                db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")

    def close(self) -> None:
        with self._lock_db:
            self._db.close()
