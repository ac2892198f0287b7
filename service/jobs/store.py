"""The job store: one SQLite file (WAL) under the data dir, so a restart loses no job.

States: queued -> running -> done | failed | cancelled. A job whose process
died while running is re-queued at the next start (up to ``max_attempts``),
then marked failed with the reason.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATES = ("done", "failed", "cancelled")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    source TEXT NOT NULL,          -- 'upload' or 'path'
    path TEXT NOT NULL,            -- file to score (an upload's copy, or a server-side path)
    name TEXT NOT NULL,            -- what the record's "path" says
    batch_id TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    result TEXT,                   -- the MediaResult as JSON, when done
    error TEXT,                    -- why it failed
    options TEXT NOT NULL DEFAULT '{}'  -- per-request scoring options (JSON)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch_id);
"""


@dataclass
class Job:
    id: str
    state: JobState
    source: str
    path: str
    name: str
    batch_id: Optional[str]
    created: float
    started: Optional[float]
    finished: Optional[float]
    attempts: int
    progress_done: int
    progress_total: int
    cancel_requested: bool
    result: Optional[dict[str, Any]]
    error: Optional[str]
    options: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        data = dict(row)
        data["result"] = json.loads(data["result"]) if data["result"] else None
        data["options"] = json.loads(data["options"] or "{}")
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)


class JobStore:
    """Thread-safe access to the jobs table (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        # Pragmas outside a transaction (SQLite refuses some inside one).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "options" not in columns:  # a jobs.db from before per-request options
            self._db.execute("ALTER TABLE jobs ADD COLUMN options TEXT NOT NULL DEFAULT '{}'")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, source: str, path: str, name: str, batch_id: str | None = None, options: dict | None = None) -> Job:
        job_id = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, state, source, path, name, batch_id, created, options) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job_id, source, path, name, batch_id, time.time(), json.dumps(options or {})),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list_batch(self, batch_id: str) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE batch_id = ? ORDER BY created, rowid", (batch_id,)).fetchall()
        return [Job.from_row(r) for r in rows]

    def count(self, state: JobState) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0])

    def claim_next(self) -> Job | None:
        """Move the oldest queued job to running and return it."""
        with self._tx() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, rowid LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1, progress_done = 0 WHERE id = ?",
                (time.time(), row["id"]),
            )
        return self.get(row["id"])

    def progress(self, job_id: str, done: int, total: int) -> bool:
        """Record progress; return True when a cancel was requested."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET progress_done = ?, progress_total = ? WHERE id = ?", (done, total, job_id))
            row = db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def finish(self, job_id: str, state: JobState, result: dict | None = None, error: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished = ?, result = ?, error = ? WHERE id = ? AND state = 'running'",
                (state, time.time(), json.dumps(result) if result is not None else None, error, job_id),
            )

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; ask a running one to stop."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state = 'queued'", (time.time(), job_id))
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,))
        return self.get(job_id)

    def recover(self, max_attempts: int) -> tuple[int, int]:
        """After a restart: re-queue jobs left running, or fail those out of attempts."""
        with self._tx() as db:
            failed = db.execute(
                "UPDATE jobs SET state = 'failed', finished = ?, error = ? WHERE state = 'running' AND attempts >= ?",
                (time.time(), f"the server stopped while this job ran, {max_attempts} times", max_attempts),
            ).rowcount
            requeued = db.execute("UPDATE jobs SET state = 'queued', started = NULL WHERE state = 'running'").rowcount
        return requeued, failed

    def expired_uploads(self, retention_s: float) -> list[Job]:
        """Finished upload jobs whose file outlived the retention time."""
        cutoff = time.time() - retention_s
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE source = 'upload' AND state IN ('done', 'failed', 'cancelled') AND finished < ? AND path != ''",
                (cutoff,),
            ).fetchall()
        return [Job.from_row(r) for r in rows]

    def forget_file(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET path = '' WHERE id = ?", (job_id,))
