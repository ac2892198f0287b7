"""The job system's threads in one process: the lease keeper, the webhook sender and the job runner.

``unmask serve`` runs all three beside its API (``--no-worker``: all but the
runner), ``unmask worker`` all three without HTTP. At start, the jobs that
this host's dead processes left running are re-queued (``store.recover``).
"""

from __future__ import annotations

import logging

from ..api.schemas import JobPublic
from ..core.config import Settings
from .callbacks import CallbackPolicy, CallbackSender
from .leases import LeaseKeeper
from .store import Job, JobStore
from .worker import JobRunner

log = logging.getLogger(__name__)


def render_job(job: Job) -> bytes:
    """A webhook's body: the job as ``GET /v1/jobs/{id}`` shows it."""
    return JobPublic.of(job).model_dump_json().encode()


class JobThreads:
    """Made from the settings; ``start()`` starts the keeper and the sender, ``runner.start(predictor)`` the workers."""

    def __init__(self, settings: Settings, store: JobStore, worker: bool) -> None:
        requeued, failed = store.recover(settings.job_max_attempts)
        if requeued or failed:
            log.info("job store: %d interrupted jobs re-queued, %d failed after %d attempts", requeued, failed, settings.job_max_attempts)
        self.keeper = LeaseKeeper(store, settings.job_max_attempts)
        self.policy = CallbackPolicy(settings.callback_hosts)
        self.sender: CallbackSender | None = None
        if self.policy.enabled:
            self.sender = CallbackSender(store, self.policy, settings.callback_secret or "", render_job,
                                         attempts=settings.callback_attempts, backoff_s=settings.callback_backoff_s,
                                         timeout_s=settings.callback_timeout_s)
        self.runner: JobRunner | None = None
        if worker:
            self.runner = JobRunner(store, None, settings.job_workers, settings.job_timeout_s, settings.job_retention_s,
                                    on_end=self.sender.notify if self.sender else None)

    def start(self) -> None:
        self.keeper.start()
        if self.sender is not None:
            self.sender.start()

    def stop(self) -> None:
        """The runner first (its jobs go back to the queue, uncounted), then the sender and the keeper."""
        if self.runner is not None:
            self.runner.stop()
        if self.sender is not None:
            self.sender.stop()
        self.keeper.stop()
