"""Runs queued jobs on worker threads, one model shared by all of them.

Inference runs here, outside the event loop. Progress (frames done / total)
goes to the store after every frame, which is also where a cancel request or
the job timeout is noticed. Finished uploads are deleted after the retention
time.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ...model.errors import MediaError
from ...model.predictor import Predictor, ScoringCancelled
from ..core import prometheus
from .store import JobStore

log = logging.getLogger(__name__)


class JobTimeout(Exception):
    pass


class JobRunner:
    """``threads`` workers pulling from the store until ``stop()``."""

    def __init__(
        self,
        store: JobStore,
        predictor: Predictor,
        threads: int = 1,
        timeout_s: float = 1800.0,
        retention_s: float = 3600.0,
        poll_s: float = 0.5,
    ) -> None:
        self.store, self.predictor = store, predictor
        self.timeout_s, self.retention_s, self.poll_s = timeout_s, retention_s, poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"unmask-job-{i}", daemon=True) for i in range(threads)]
        self._last_sweep = float("-inf")

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def notify(self) -> None:
        """A job was queued: wake a worker now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sweep_uploads()
            job = self.store.claim_next()
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
            return self.store.progress(job_id, done, total) or self._stop.is_set()

        log.info("job %s running: %s", job_id, name)
        try:
            prepared = self.predictor.prepare(path, name, progress=progress, **options)
            result = self.predictor.finish(prepared)
        except ScoringCancelled:
            if self._stop.is_set():
                return  # shutting down: left 'running', re-queued at the next start
            self.store.finish(job_id, "cancelled")
            log.info("job %s cancelled", job_id)
            return
        except (MediaError, OSError) as exc:
            result = self.predictor.error_record(path, exc, name)
        except JobTimeout as exc:
            self.store.finish(job_id, "failed", error=str(exc))
            return
        except Exception as exc:  # one broken job must not kill the worker
            log.exception("job %s failed unexpectedly", job_id)
            self.store.finish(job_id, "failed", error=f"internal error: {type(exc).__name__}")
            return
        prometheus.record_result(result)
        # A file that cannot be scored is a finished job with an error record.
        self.store.finish(job_id, "done", result=result.to_dict())
        log.info("job %s done: %s %s", job_id, result.status, result.score)

    def _sweep_uploads(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < 30:
            return
        self._last_sweep = now
        for job in self.store.expired_uploads(self.retention_s):
            Path(job.path).unlink(missing_ok=True)
            self.store.forget_file(job.id)
            log.info("job %s: upload deleted after retention", job.id)
