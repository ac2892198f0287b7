"""The FastAPI app: the model is loaded once, at start-up, and shared."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from unmask.model import __version__
from unmask.model.predictor import Predictor

from .api.routes import health, media
from .core.config import Settings
from .problems import install_problem_handlers

log = logging.getLogger(__name__)


def load_predictor(settings: Settings) -> Predictor:
    predictor = Predictor(
        settings.model,
        device=settings.device,
        backend=settings.backend,
        aggregation=settings.aggregation,
        frames=settings.frames,
        max_pixels=settings.max_pixels,
        max_duration=settings.max_video_seconds,
    )
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
        if app.state.predictor is None:
            app.state.predictor = load_predictor(settings)
        yield

    app = FastAPI(
        title="unmask",
        version=__version__,
        summary="Deepfake face-forgery detection: per-face, per-frame and per-file scores.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.predictor = predictor
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(media.router)
    return app
