"""Runs queued jobs on worker threads, one model shared by all of them.

Inference runs here, outside the event loop (in ``unmask serve``, or in an
``unmask worker`` process with no HTTP). Progress (frames done / total)
goes to the store after every frame and before each classifier batch,
renewing the job's lease; that is also where a cancel request (from any
process), the job timeout, a shut-down or a lost lease is noticed. A
shut-down (SIGTERM, a deploy) puts the running job back in the queue
without counting that start: only a process that dies while a job runs (a
crash, kill -9, OOM) costs an attempt, once its lease runs out. Finished
uploads are deleted after the retention time.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from ...model.errors import MediaError
from ...model.predictor import Predictor, ScoringCancelled
from ..core import prometheus
from .store import JobState, JobStore

log = logging.getLogger(__name__)


class JobTimeout(Exception):
    pass


class LeaseLost(Exception):
    """Another process swept this job (this one stalled past its lease): its result must not be written."""


class JobRunner:
    """``threads`` workers pulling from the store from ``start()`` until ``stop()``.

    The predictor may come later than the runner (``start(predictor)``): the
    service takes jobs while its model loads, and runs them once it is loaded.
    """

    def __init__(
        self,
        store: JobStore,
        predictor: Predictor | None = None,
        threads: int = 1,
        timeout_s: float = 1800.0,
        retention_s: float = 3600.0,
        poll_s: float = 0.5,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.predictor, self.on_end = store, predictor, on_end
        self.timeout_s, self.retention_s, self.poll_s = timeout_s, retention_s, poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"unmask-job-{i}", daemon=True) for i in range(threads)]
        self._last_sweep = float("-inf")

    def start(self, predictor: Predictor | None = None) -> None:
        if predictor is not None:
            self.predictor = predictor
        if self.predictor is None:
            raise ValueError("JobRunner.start needs a predictor")
        if self._stop.is_set():
            return  # stopped while the model loaded
        for t in self._threads:
            t.start()

    def notify(self) -> None:
        """A job was queued: wake a worker now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers: a running job is re-queued at its next frame (a job still running after ``timeout`` counts as a crash)."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout)
                if t.is_alive():
                    log.warning("%s still running after %g s: its job is re-queued as interrupted when its lease runs out", t.name, timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sweep_uploads()
                job = self.store.claim_next()
            except Exception:  # the database went away for a moment: wait, then claim again
                log.exception("cannot claim a job; retrying")
                self._stop.wait(max(self.poll_s, 1.0))
                continue
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self._run(job.id, job.path, job.name, job.options)

    def _run(self, job_id: str, path: str, name: str, options: dict) -> None:
        started = time.monotonic()

        def progress(done: int, total: int) -> bool:
            if time.monotonic() - started > self.timeout_s:
                raise JobTimeout(f"the job ran past its timeout of {self.timeout_s:g} s")
            cancel = self.store.progress(job_id, done, total)
            if cancel is None:
                raise LeaseLost
            return cancel or self._stop.is_set()

        log.info("job %s running: %s", job_id, name)
        try:
            prepared = self.predictor.prepare(path, name, progress=progress, **options)
            result = self.predictor.finish(prepared, progress)
        except ScoringCancelled:
            if self._stop.is_set():
                self.store.requeue(job_id)  # a clean shut-down: not an attempt
                log.info("job %s re-queued: this process is shutting down", job_id)
                return
            self._end(job_id, "cancelled")
            return
        except LeaseLost:
            log.warning("job %s: no longer held (deleted, or its lease ran out and another process took it); this run is dropped", job_id)
            return
        except (MediaError, OSError) as exc:
            result = self.predictor.error_record(path, exc, name)
        except JobTimeout as exc:
            self._end(job_id, "failed", error=str(exc))
            return
        except Exception as exc:  # one broken job (or a database gone for a moment) must not kill the worker
            log.exception("job %s failed unexpectedly", job_id)
            self._end(job_id, "failed", error=f"internal error: {type(exc).__name__}")
            return
        prometheus.record_result(result)
        # A file that cannot be scored is a finished job with an error record.
        if self._end(job_id, "done", result=result.to_dict()):
            log.info("job %s done: %s %s", job_id, result.status, result.score)

    def _end(self, job_id: str, state: JobState, **fields) -> bool:
        """Write the job's end; False when another process had taken it over (nothing written)."""
        try:
            written = self.store.finish(job_id, state, **fields)
        except Exception:  # the lease runs out and another process runs the job again
            log.exception("job %s: its end (%s) could not be written", job_id, state)
            return False
        if not written:
            log.warning("job %s: its lease ran out and another process took it over; this run's %s is dropped", job_id, state)
            return False
        if state != "done":
            log.info("job %s %s", job_id, state)
        if self.on_end is not None:
            self.on_end()  # e.g. wake the callback sender
        return True

    def _sweep_uploads(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < 30:
            return
        self._last_sweep = now
        for job in self.store.expired_uploads(self.retention_s):
            Path(job.path).unlink(missing_ok=True)
            self.store.forget_file(job.id)
            log.info("job %s: upload deleted after retention", job.id)
