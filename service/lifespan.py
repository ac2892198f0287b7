"""Start-up and shut-down of the service.

Start-up, before the port opens (fast): remove what killed processes left
(spool folders, half-received job uploads), open the job store and re-queue
what a crashed process left running, start the webhook sender. The model
then loads on a thread while the server already answers: ``/healthz`` is
200 at once, ``/readyz`` and the scoring routes answer 503 (Retry-After)
until it is loaded, and jobs can be queued meanwhile; the job workers start
once it is loaded.

Shut-down (SIGTERM): stop the workers (a running job goes back to the
queue without counting an attempt), the sender, then the store.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from ..model.predictor import Predictor
from .api.schemas import JobPublic
from .api.uploads import PART_PREFIX, SPOOL_PREFIX, remove_leftovers
from .core import prometheus
from .core.config import Settings
from .jobs.callbacks import CallbackPolicy, CallbackSender
from .jobs.store import JobStore
from .jobs.worker import JobRunner

log = logging.getLogger(__name__)
JOB_CHECKS = 2  # job submissions decoding a file to check it at once (the others wait): bounds their memory


def load_predictor(settings: Settings) -> Predictor:
    """The model the settings name, warmed up."""
    predictor = Predictor(settings.model, settings.scoring())
    if settings.warmup:
        predictor.warmup()
    ref = predictor.model_ref
    log.info("model %s v%s (%s) on %s, backend %s", ref.name, ref.version, ref.architecture, predictor.device, predictor.backend.name)
    return predictor


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    remove_leftovers(settings.tmp_dir or Path(tempfile.gettempdir()), SPOOL_PREFIX)
    remove_leftovers(settings.data_dir / "uploads", PART_PREFIX)
    store = JobStore(settings.data_dir / "jobs.db")
    requeued, failed = store.recover(settings.job_max_attempts)
    if requeued or failed:
        log.info("job store: %d interrupted jobs re-queued, %d failed after %d attempts", requeued, failed, settings.job_max_attempts)
    app.state.callback_policy = policy = CallbackPolicy(settings.callback_hosts)
    sender = None
    if policy.enabled:
        sender = CallbackSender(store, policy, settings.callback_secret or "", _render, attempts=settings.callback_attempts,
                                backoff_s=settings.callback_backoff_s, timeout_s=settings.callback_timeout_s)
        sender.start()
    runner = JobRunner(store, None, settings.job_workers, settings.job_timeout_s, settings.job_retention_s,
                       on_end=sender.notify if sender else None)
    app.state.store, app.state.runner, app.state.callbacks = store, runner, sender
    app.state.check_slots = threading.BoundedSemaphore(JOB_CHECKS)
    if app.state.predictor is not None:
        _ready(app, app.state.predictor)
    else:
        threading.Thread(target=_load, args=(app, settings), name="unmask-load-model", daemon=True).start()
    try:
        yield
    finally:
        runner.stop()
        if sender is not None:
            sender.stop()
        store.close()


def _load(app: FastAPI, settings: Settings) -> None:
    try:
        predictor = load_predictor(settings)
    except Exception as exc:  # the server stays up and says why in /readyz
        log.exception("the model failed to load")
        app.state.load_error = type(exc).__name__  # the message (paths) stays in the log
        return
    _ready(app, predictor)


def _ready(app: FastAPI, predictor: Predictor) -> None:
    ref = predictor.model_ref
    prometheus.MODEL.info({"name": ref.name, "version": ref.version, "architecture": ref.architecture})
    app.state.predictor = predictor
    app.state.runner.start(predictor)


def _render(job) -> bytes:
    """A webhook's body: the job as ``GET /v1/jobs/{id}`` shows it."""
    return JobPublic.of(job).model_dump_json().encode()
