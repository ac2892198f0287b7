"""The job store: one SQLite file (WAL) under the data dir, so a restart loses no job.

States: queued -> running -> done | failed | cancelled; a job may be deleted
in any state (a running one stops at its next frame). A job whose process
died while running is re-queued at the next start (up to ``max_attempts``),
then marked failed with the reason; a job stopped by a clean shut-down is
re-queued at once and that start is not counted (``requeue``).

A job may carry a callback URL: once it has ended, ``callback_state`` goes
from pending to delivered (or failed after the retries); the delivery
thread (``jobs.callbacks``) finds due deliveries here, so a restart resumes
them.
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
    options TEXT NOT NULL DEFAULT '{}', -- per-request scoring options (JSON)
    callback_url TEXT,             -- POST the job here when it ends
    callback_state TEXT,           -- pending, delivered, failed (NULL: no callback)
    callback_attempts INTEGER NOT NULL DEFAULT 0,
    callback_next REAL,            -- when the next delivery try is due
    callback_status INTEGER,       -- the receiver's last HTTP status
    callback_error TEXT            -- why the last try failed
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch_id);
"""
# Columns added after the first release: (name, definition) for ALTER TABLE on an older jobs.db.
ADDED_COLUMNS = [
    ("options", "TEXT NOT NULL DEFAULT '{}'"),
    ("callback_url", "TEXT"),
    ("callback_state", "TEXT"),
    ("callback_attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("callback_next", "REAL"),
    ("callback_status", "INTEGER"),
    ("callback_error", "TEXT"),
]


class QueueFull(Exception):
    """Queuing would pass the ``max_queue`` limit."""

    def __init__(self, queued: int, limit: int) -> None:
        super().__init__(f"{queued} jobs are queued, the limit is {limit}")
        self.queued, self.limit = queued, limit


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
    callback_url: Optional[str] = None
    callback_state: Optional[str] = None
    callback_attempts: int = 0
    callback_next: Optional[float] = None
    callback_status: Optional[int] = None
    callback_error: Optional[str] = None
    seq: int = 0  # insertion order (SQLite rowid): the listing's cursor

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
        for name, definition in ADDED_COLUMNS:  # a jobs.db from an older release
            if name not in columns:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")

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

    def add(self, source: str, path: str, name: str, batch_id: str | None = None, options: dict | None = None,
            callback_url: str | None = None, max_queued: int | None = None) -> Job:
        """Queue one job (see ``add_many``)."""
        (job_id,) = self.add_many(source, [(path, name)], batch_id, options, callback_url, max_queued)
        job = self.get(job_id)
        assert job is not None
        return job

    def add_many(self, source: str, files: list[tuple[str, str]], batch_id: str | None = None, options: dict | None = None,
                 callback_url: str | None = None, max_queued: int | None = None) -> list[str]:
        """Queue one job per (path, name), all or none, and return their ids.

        Raises:
            QueueFull: ``max_queued`` is set and the queued jobs would pass it. The
                count and the inserts are one transaction, so requests arriving
                together cannot pass the limit between them.
        """
        ids = [uuid.uuid4().hex for _ in files]
        now, options_json = time.time(), json.dumps(options or {})
        with self._tx() as db:
            if max_queued is not None:
                queued = int(db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0])
                if queued + len(files) > max_queued:
                    raise QueueFull(queued, max_queued)
            db.executemany(
                "INSERT INTO jobs (id, state, source, path, name, batch_id, created, options, callback_url, callback_state) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                [(job_id, source, path, name, batch_id, now, options_json, callback_url, "pending" if callback_url else None)
                 for job_id, (path, name) in zip(ids, files)],
            )
        return ids

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT rowid AS seq, * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list_batch(self, batch_id: str) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT rowid AS seq, * FROM jobs WHERE batch_id = ? ORDER BY rowid", (batch_id,)).fetchall()
        return [Job.from_row(r) for r in rows]

    def list_jobs(self, state: JobState | None = None, limit: int = 50, before: int | None = None) -> list[Job]:
        """Jobs newest first, optionally in one state; ``before`` (a job's ``seq``) continues a listing after it."""
        where, params = ["1 = 1"], []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if before is not None:
            where.append("rowid < ?")
            params.append(before)
        sql = f"SELECT rowid AS seq, * FROM jobs WHERE {' AND '.join(where)} ORDER BY rowid DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*params, limit)).fetchall()
        return [Job.from_row(r) for r in rows]

    def upload_paths(self) -> set[str]:
        """Every upload file a job still refers to (the others are leftovers of a killed request)."""
        with self._lock:
            rows = self._db.execute("SELECT path FROM jobs WHERE source = 'upload' AND path != ''").fetchall()
        return {r["path"] for r in rows}

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
        """Record progress; return True when the job should stop: a cancel was requested, or it was deleted."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET progress_done = ?, progress_total = ? WHERE id = ?", (done, total, job_id))
            row = db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is None or bool(row["cancel_requested"])

    def finish(self, job_id: str, state: JobState, result: dict | None = None, error: str | None = None) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished = ?, result = ?, error = ?, callback_next = ? WHERE id = ? AND state = 'running'",
                (state, now, json.dumps(result) if result is not None else None, error, now, job_id),
            )

    def requeue(self, job_id: str) -> None:
        """A clean shut-down stopped this running job: queue it again, and do not count the start."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'queued', started = NULL, progress_done = 0, attempts = MAX(attempts - 1, 0) "
                "WHERE id = ? AND state = 'running'",
                (job_id,),
            )

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; ask a running one to stop."""
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = 'cancelled', finished = ?, callback_next = ? WHERE id = ? AND state = 'queued'",
                       (now, now, job_id))
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,))
        return self.get(job_id)

    def delete(self, job_id: str) -> Job | None:
        """Remove a job, whatever its state, and return it as it was (None: no such job).

        A worker running it finds it gone at its next ``progress`` and stops;
        the ends it then records change nothing. Its upload is the caller's to remove.
        """
        with self._tx() as db:
            row = db.execute("SELECT rowid AS seq, * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(row) if row else None

    def callbacks_due(self, now: float) -> list[Job]:
        """Ended jobs whose callback is pending and due."""
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid AS seq, * FROM jobs WHERE callback_state = 'pending' AND state IN ('done', 'failed', 'cancelled') "
                "AND callback_next <= ? ORDER BY callback_next",
                (now,),
            ).fetchall()
        return [Job.from_row(r) for r in rows]

    def callback_tried(self, job_id: str, state: str, status: int | None, error: str | None, next_at: float | None) -> None:
        """Record one delivery try: ``state`` stays pending (with ``next_at``), or becomes delivered or failed."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET callback_state = ?, callback_attempts = callback_attempts + 1, callback_status = ?, "
                "callback_error = ?, callback_next = ? WHERE id = ?",
                (state, status, error, next_at, job_id),
            )

    def recover(self, max_attempts: int) -> tuple[int, int]:
        """After a restart: end or re-queue the jobs a killed process left running.

        A job whose cancel was asked for is cancelled; one out of attempts
        fails with the reason; the others are queued again. Ended ones get
        their webhook due now. Returns (re-queued, failed).
        """
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = 'cancelled', finished = ?, callback_next = ? WHERE state = 'running' AND cancel_requested = 1",
                       (now, now))
            failed = db.execute(
                "UPDATE jobs SET state = 'failed', finished = ?, error = ?, callback_next = ? WHERE state = 'running' AND attempts >= ?",
                (now, f"the server stopped while this job ran, {max_attempts} times", now, max_attempts),
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
