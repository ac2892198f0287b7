"""Start-up and shut-down of the service.

Start-up, before the port opens (fast): remove what killed processes left
(spool folders, half-received job uploads), open the job store (applying
its migrations) and re-queue what a crashed process of this host left
running, start the lease keeper and the webhook sender. The model then
loads on a thread while the server already answers: ``/healthz`` is 200 at
once, ``/readyz`` and the scoring routes answer 503 (Retry-After) until it
is loaded, and jobs can be queued meanwhile; the job workers start once it
is loaded (none with ``worker = false``: an API replica).

Shut-down (SIGTERM): stop the workers (a running job goes back to the
queue without counting an attempt), the sender, the keeper, then the store.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from ..model.predictor import Predictor
from .api.uploads import PART_PREFIX, SPOOL_PREFIX, remove_leftovers
from .core import prometheus
from .core.config import Settings
from .jobs.background import JobThreads
from .jobs.stores import open_store

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
    remove_leftovers(settings.uploads_dir, PART_PREFIX)
    store = open_store(settings.database, settings.job_lease_s)
    jobs = JobThreads(settings, store, worker=settings.worker)
    jobs.start()
    app.state.callback_policy = jobs.policy
    app.state.store, app.state.runner, app.state.callbacks = store, jobs.runner, jobs.sender
    app.state.check_slots = threading.BoundedSemaphore(JOB_CHECKS)
    if app.state.predictor is not None:
        _ready(app, app.state.predictor)
    else:
        threading.Thread(target=_load, args=(app, settings), name="unmask-load-model", daemon=True).start()
    try:
        yield
    finally:
        jobs.stop()
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
    prometheus.record_model(predictor.model_ref)
    app.state.predictor = predictor
    if app.state.runner is not None:
        app.state.runner.start(predictor)
