"""The FastAPI app: the model is loaded once, at start-up, and shared.

Start-up: open the job store (re-queue what a previous process left
running), load the model, start the job workers. Shut-down: stop the
workers (a job they were running is re-queued at the next start).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from ..model import __version__
from ..model.predictor import Predictor
from .api.deps import SyncSlots
from .api.main import api_router
from .core import prometheus
from .core.config import Settings
from .core.middleware import RequestMiddleware
from .core.problems import install_problem_handlers
from .jobs.store import JobStore
from .jobs.worker import JobRunner
from .web import install_web

log = logging.getLogger(__name__)


def load_predictor(settings: Settings) -> Predictor:
    predictor = Predictor(settings.model, settings.scoring())
    if settings.warmup:
        predictor.warmup()
    ref = predictor.model_ref
    log.info("model %s v%s (%s) on %s, backend %s", ref.name, ref.version, ref.architecture, predictor.device, predictor.backend.name)
    return predictor


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """Build the app; ``predictor`` lets tests share one loaded model."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = JobStore(settings.data_dir / "jobs.db")
        requeued, failed = store.recover(settings.job_max_attempts)
        if requeued or failed:
            log.info("job store: %d interrupted jobs re-queued, %d failed after %d attempts", requeued, failed, settings.job_max_attempts)
        if app.state.predictor is None:
            app.state.predictor = load_predictor(settings)
        ref = app.state.predictor.model_ref
        prometheus.MODEL.info({"name": ref.name, "version": ref.version, "architecture": ref.architecture})
        runner = JobRunner(store, app.state.predictor, settings.job_workers, settings.job_timeout_s, settings.job_retention_s)
        app.state.store, app.state.runner = store, runner
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            store.close()

    # FastAPIOffline: /docs and /redoc load their scripts from the package, not a CDN (air-gapped servers).
    app = FastAPIOffline(
        title="unmask",
        version=__version__,
        summary="Deepfake face-forgery detection: per-face, per-frame and per-file scores.",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    )
    app.state.settings = settings
    app.state.predictor = predictor
    app.state.sync_slots = SyncSlots(settings.sync_max_pending)
    install_problem_handlers(app)
    app.include_router(api_router)
    install_web(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(RequestMiddleware, body_limit=_body_limits(settings))
    return app


def _body_limits(settings: Settings):
    def limit(path: str) -> tuple[int, str] | None:
        if path in ("/v1/images", "/v1/videos"):
            return settings.sync_max_upload_bytes, "; send larger files to POST /v1/jobs"
        if path == "/v1/jobs":
            return settings.max_upload_bytes, ""
        if path == "/v1/batches":
            return 1024 * 1024, ""
        return None

    return limit
