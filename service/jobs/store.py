"""The job store: one interface, two backends chosen by URL (an SQLite file, or PostgreSQL).

States: queued -> running -> done | failed | cancelled; a job may be deleted
in any state (a running one stops at its next frame: its worker no longer
holds it). A worker claims the
oldest queued job and holds a lease on it (``worker_id``, ``lease_until``)
that its process renews while it scores. A job whose lease ran out (its
worker was killed, its machine lost) is re-queued by whichever live process
sweeps next (``expire_leases``), its attempt counted, or fails once out of
attempts; a job handed back by a clean shut-down is re-queued at once and
that start is not counted (``requeue``). Only the lease holder can write a
job's progress and result, so a job's result is written once.

A job may carry a callback URL: once it has ended, ``callback_state`` goes
from pending to delivered (or failed after the retries). A sender claims a
due delivery for a while before it posts it (``claim_callback``), so each
try goes out from one process only; a restart resumes them.

Every time is the database's clock (epoch seconds), so the hosts' clocks
need not agree. The SQL is written once here, with ``?`` placeholders; a
backend brings the connection, its clock, its row lock and its insertion
order column.
"""

from __future__ import annotations

import json
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any, Literal, Optional, Protocol

from ..core.processes import dead_on_this_host, worker_identity

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATES = ("done", "failed", "cancelled")
ENDED = "state IN ('done', 'failed', 'cancelled')"

# Schema versions, applied in order at start in one transaction and recorded in schema_version.
# {seq_column} is the backend's insertion-order column (SQLite's is the implicit rowid).
MIGRATIONS: list[list[str]] = [
    [  # 1: the jobs table as it was before versioning
        """CREATE TABLE IF NOT EXISTS jobs (
            {seq_column}
            id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            source TEXT NOT NULL,            -- 'upload' or 'path'
            path TEXT NOT NULL,              -- file to score (an upload's copy, or a server-side path)
            name TEXT NOT NULL,              -- what the record's "path" says
            batch_id TEXT,
            created DOUBLE PRECISION NOT NULL,
            started DOUBLE PRECISION,
            finished DOUBLE PRECISION,
            attempts INTEGER NOT NULL DEFAULT 0,
            progress_done INTEGER NOT NULL DEFAULT 0,
            progress_total INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            result TEXT,                     -- the MediaResult as JSON, when done
            error TEXT,                      -- why it failed
            options TEXT NOT NULL DEFAULT '{}', -- per-request scoring options (JSON)
            callback_url TEXT,               -- POST the job here when it ends
            callback_state TEXT,             -- pending, delivered, failed (NULL: no callback)
            callback_attempts INTEGER NOT NULL DEFAULT 0,
            callback_next DOUBLE PRECISION,  -- when the next delivery try is due
            callback_status INTEGER,         -- the receiver's last HTTP status
            callback_error TEXT              -- why the last try failed
        )""",
        "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created)",
        "CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch_id)",
    ],
    [  # 2: leases, so that processes on several machines share the queue; claimed webhook deliveries
        "ALTER TABLE jobs ADD COLUMN worker_id TEXT",              # who runs (or ran) it: HOST:PID:TOKEN
        "ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION",  # a running job past this is swept
        "ALTER TABLE jobs ADD COLUMN callback_claim TEXT",         # the process delivering its webhook now
        "UPDATE jobs SET lease_until = 0 WHERE state = 'running'",  # left running by an older release: swept at once
        "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (state, lease_until)",
        "CREATE INDEX IF NOT EXISTS jobs_callbacks ON jobs (callback_state, callback_next)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
# Advisory lock keys (PostgreSQL): one process migrates at a time, counts the queue at a time, sweeps at a time.
MIGRATE_LOCK, QUEUE_LOCK, SWEEP_LOCK = 7_438_001, 7_438_002, 7_438_003


class StoreError(Exception):
    """The job database cannot be used as configured (unreachable, refused, unsupported): one line for the operator."""


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
    worker_id: Optional[str] = None
    lease_until: Optional[float] = None
    callback_claim: Optional[str] = None
    seq: int = 0  # insertion order: the listing's cursor

    @classmethod
    def from_row(cls, row) -> "Job":
        data = dict(row)
        data["result"] = json.loads(data["result"]) if data["result"] else None
        data["options"] = json.loads(data["options"] or "{}")
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)


COLUMNS = ", ".join(f.name for f in fields(Job) if f.name != "seq")


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What a backend's transaction offers: rows are read by column name."""

    def execute(self, sql: str, params: tuple | list = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: list[tuple]) -> None: ...


class JobStore:
    """The job queue and its records; thread-safe, and safe for many processes on one database.

    Args:
        lease_s: how long a claim holds without renewal (``renew``, ``progress``).

    Attributes:
        worker_id: this store's identity in the leases and webhook claims it takes.
    """

    SEQ = "rowid"  # the insertion order column
    SEQ_COLUMN = ""  # its definition in CREATE TABLE
    NOW = ""  # the database's clock in epoch seconds, as SQL
    SKIP_LOCKED = ""  # the row lock of a claim

    def __init__(self, lease_s: float = 30.0) -> None:
        self.lease_s = lease_s
        self.worker_id = worker_identity()
        self._migrate()

    # -- what a backend provides -------------------------------------------------

    def _tx(self, write: bool = True) -> AbstractContextManager[Connection]:
        """A transaction (committed at the end, rolled back on an exception)."""
        raise NotImplementedError

    def _lock(self, db: Connection, key: int, wait: bool = True) -> bool:
        """Hold ``key`` until the transaction ends; False when taken and not ``wait``ing (SQLite: its write lock is already whole)."""
        return True

    def _adopt_unversioned(self, db: Connection) -> None:
        """Bring a database made before schema versions to version 1's shape (only SQLite has such files)."""

    def close(self) -> None:
        raise NotImplementedError

    # -- schema --------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._tx() as db:
            self._lock(db, MIGRATE_LOCK)  # two processes starting at once: one migrates, the other sees it done
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            version = db.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()["v"] or 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"the job database is at schema version {version}, this unmask knows up to {SCHEMA_VERSION}: "
                                 "upgrade unmask on this host")
            if version == 0:
                self._adopt_unversioned(db)
            for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                for sql in statements:
                    db.execute(sql.replace("{seq_column}", self.SEQ_COLUMN))
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    def schema_version(self) -> int:
        with self._tx(write=False) as db:
            return int(db.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()["v"])

    # -- queueing and reading --------------------------------------------------------

    def add(self, source: str, path: str, name: str, batch_id: str | None = None, options: dict | None = None,
            callback_url: str | None = None, max_queued: int | None = None) -> Job:
        """Queue one job (see ``add_many``)."""
        (job_id,) = self.add_many(source, [(path, name)], batch_id, options, callback_url, max_queued)
        job = self.get(job_id)
        assert job is not None
        return job

    def add_many(self, source: str, files: list[tuple[str, str]], batch_id: str | None = None, options: dict | None = None,
                 callback_url: str | None = None, max_queued: int | None = None) -> list[str]:
        """Queue one job per (path, name), all or none, and return their ids (random: not guessable).

        Raises:
            QueueFull: ``max_queued`` is set and the queued jobs would pass it. The
                count and the inserts are one transaction under one lock, so
                requests arriving together (in any process) cannot pass the limit.
        """
        ids = [uuid.uuid4().hex for _ in files]
        options_json = json.dumps(options or {})
        with self._tx() as db:
            if max_queued is not None:
                self._lock(db, QUEUE_LOCK)
                queued = int(db.execute("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'").fetchone()["n"])
                if queued + len(files) > max_queued:
                    raise QueueFull(queued, max_queued)
            db.executemany(
                "INSERT INTO jobs (id, state, source, path, name, batch_id, created, options, callback_url, callback_state) "
                f"VALUES (?, 'queued', ?, ?, ?, ?, {self.NOW}, ?, ?, ?)",
                [(job_id, source, path, name, batch_id, options_json, callback_url, "pending" if callback_url else None)
                 for job_id, (path, name) in zip(ids, files)],
            )
        return ids

    def get(self, job_id: str) -> Job | None:
        with self._tx(write=False) as db:
            return self._get(db, job_id)

    def _get(self, db: Connection, job_id: str) -> Job | None:
        row = db.execute(f"SELECT {self.SEQ} AS seq, {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def _select(self, where: str, params: tuple = (), order: str = "", limit: int | None = None) -> list[Job]:
        sql = f"SELECT {self.SEQ} AS seq, {COLUMNS} FROM jobs WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, limit)
        with self._tx(write=False) as db:
            return [Job.from_row(r) for r in db.execute(sql, params).fetchall()]

    def list_batch(self, batch_id: str) -> list[Job]:
        return self._select("batch_id = ?", (batch_id,), order=self.SEQ)

    def list_jobs(self, state: JobState | None = None, limit: int = 50, before: int | None = None) -> list[Job]:
        """Jobs newest first, optionally in one state; ``before`` (a job's ``seq``) continues a listing after it."""
        where, params = ["1 = 1"], []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if before is not None:
            where.append(f"{self.SEQ} < ?")
            params.append(before)
        return self._select(" AND ".join(where), tuple(params), order=f"{self.SEQ} DESC", limit=limit)

    def count(self, state: JobState) -> int:
        with self._tx(write=False) as db:
            return int(db.execute("SELECT COUNT(*) AS n FROM jobs WHERE state = ?", (state,)).fetchone()["n"])

    # -- running: claims and leases ------------------------------------------------------

    def claim_next(self) -> Job | None:
        """Move the oldest queued job to running under this store's lease and return it."""
        with self._tx() as db:
            row = db.execute(f"SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, {self.SEQ} LIMIT 1{self.SKIP_LOCKED}").fetchone()
            if row is None:
                return None
            db.execute(
                f"UPDATE jobs SET state = 'running', started = {self.NOW}, attempts = attempts + 1, progress_done = 0, "
                f"worker_id = ?, lease_until = {self.NOW} + ? WHERE id = ?",
                (self.worker_id, self.lease_s, row["id"]),
            )
            return self._get(db, row["id"])

    def renew(self) -> int:
        """The heartbeat: extend the lease of every job this store runs; return how many."""
        with self._tx() as db:
            return db.execute(f"UPDATE jobs SET lease_until = {self.NOW} + ? WHERE worker_id = ? AND state = 'running'",
                              (self.lease_s, self.worker_id)).rowcount

    def progress(self, job_id: str, done: int, total: int) -> bool | None:
        """Record progress and renew the lease; True when a cancel was requested, None when this store no longer holds the job."""
        with self._tx() as db:
            held = db.execute(
                f"UPDATE jobs SET progress_done = ?, progress_total = ?, lease_until = {self.NOW} + ? "
                "WHERE id = ? AND worker_id = ? AND state = 'running'",
                (done, total, self.lease_s, job_id, self.worker_id),
            ).rowcount
            if not held:
                return None
            return bool(db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()["cancel_requested"])

    def finish(self, job_id: str, state: JobState, result: dict | None = None, error: str | None = None) -> bool:
        """End a job this store holds; False (nothing written) when its lease was lost to another process."""
        with self._tx() as db:
            return bool(db.execute(
                f"UPDATE jobs SET state = ?, finished = {self.NOW}, result = ?, error = ?, callback_next = {self.NOW}, lease_until = NULL "
                "WHERE id = ? AND worker_id = ? AND state = 'running'",
                (state, json.dumps(result) if result is not None else None, error, job_id, self.worker_id),
            ).rowcount)

    def requeue(self, job_id: str) -> None:
        """A clean shut-down stopped this running job: queue it again, and do not count the start."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'queued', started = NULL, progress_done = 0, worker_id = NULL, lease_until = NULL, "
                "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
                "WHERE id = ? AND worker_id = ? AND state = 'running'",
                (job_id, self.worker_id),
            )

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; ask a running one to stop (its worker sees it at its next frame)."""
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET state = 'cancelled', finished = {self.NOW}, callback_next = {self.NOW} "
                       "WHERE id = ? AND state = 'queued'", (job_id,))
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,))
            return self._get(db, job_id)

    def delete(self, job_id: str) -> Job | None:
        """Remove a job, whatever its state, and return it as it was (None: no such job).

        A worker running it finds it gone at its next ``progress`` (None: not held)
        and stops; its ``finish`` then writes nothing. Its upload is the caller's to remove.
        """
        with self._tx() as db:
            job = self._get(db, job_id)
            if job is not None:
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            return job

    def expire_leases(self, max_attempts: int) -> tuple[int, int]:
        """End or re-queue the running jobs whose lease ran out; any live process may call it, one sweeps at a time.

        A job whose cancel was asked for is cancelled; one out of attempts
        fails with the reason; the others are queued again (the interrupted
        start stays counted). Ended ones get their webhook due now. Returns
        (re-queued, failed).
        """
        expired = f"state = 'running' AND lease_until < {self.NOW}"
        with self._tx() as db:
            if not self._lock(db, SWEEP_LOCK, wait=False):
                return 0, 0  # another process is sweeping right now
            db.execute(f"UPDATE jobs SET state = 'cancelled', finished = {self.NOW}, callback_next = {self.NOW}, lease_until = NULL "
                       f"WHERE {expired} AND cancel_requested = 1")
            failed = db.execute(
                f"UPDATE jobs SET state = 'failed', finished = {self.NOW}, error = ?, callback_next = {self.NOW}, lease_until = NULL "
                f"WHERE {expired} AND attempts >= ?",
                (f"the process running this job stopped (killed or lost) {max_attempts} times", max_attempts),
            ).rowcount
            requeued = db.execute(f"UPDATE jobs SET state = 'queued', started = NULL, progress_done = 0, worker_id = NULL, "
                                  f"lease_until = NULL WHERE {expired}").rowcount
        return requeued, failed

    def recover(self, max_attempts: int) -> tuple[int, int]:
        """At start: the jobs of this host's dead processes are swept at once (a restart after kill -9
        need not wait for their leases), with every other expired lease. Returns (re-queued, failed)."""
        with self._tx(write=False) as db:
            holders = {r["worker_id"] for r in db.execute(
                "SELECT DISTINCT worker_id FROM jobs WHERE state = 'running' AND worker_id IS NOT NULL").fetchall()}
        dead = sorted(h for h in holders if dead_on_this_host(h))
        if dead:
            with self._tx() as db:
                # Their leases end now (a second ago, so the sweep below takes them even within the clock's resolution);
                # not at 0, which would read as running 56 years past the lease until the sweep.
                db.execute(f"UPDATE jobs SET lease_until = {self.NOW} - 1 WHERE state = 'running' "
                           f"AND worker_id IN ({', '.join('?' * len(dead))})", dead)
        return self.expire_leases(max_attempts)

    # -- webhooks ------------------------------------------------------------------------

    def claim_callback(self, hold_s: float) -> Job | None:
        """The ended job whose webhook is due soonest, held for this store ``hold_s`` seconds (None: nothing due)."""
        with self._tx() as db:
            row = db.execute(
                f"SELECT id FROM jobs WHERE callback_state = 'pending' AND {ENDED} AND callback_next <= {self.NOW} "
                f"ORDER BY callback_next LIMIT 1{self.SKIP_LOCKED}"
            ).fetchone()
            if row is None:
                return None
            db.execute(f"UPDATE jobs SET callback_next = {self.NOW} + ?, callback_claim = ? WHERE id = ?",
                       (hold_s, self.worker_id, row["id"]))
            return self._get(db, row["id"])

    def callback_tried(self, job_id: str, state: str, status: int | None, error: str | None, retry_in: float | None) -> None:
        """Record one delivery try of a claimed webhook: ``state`` stays pending (due again in ``retry_in`` s), or becomes delivered or failed."""
        next_at, params = ("NULL", ()) if retry_in is None else (f"{self.NOW} + ?", (retry_in,))
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET callback_state = ?, callback_attempts = callback_attempts + 1, callback_status = ?, "
                f"callback_error = ?, callback_next = {next_at}, callback_claim = NULL WHERE id = ? AND callback_claim = ?",
                (state, status, error, *params, job_id, self.worker_id),
            )

    # -- uploads -------------------------------------------------------------------------

    def expired_uploads(self, retention_s: float) -> list[Job]:
        """Finished upload jobs whose file outlived the retention time."""
        return self._select(f"source = 'upload' AND {ENDED} AND finished < {self.NOW} - ? AND path != ''", (retention_s,))

    def forget_file(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET path = '' WHERE id = ?", (job_id,))
