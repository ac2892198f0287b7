"""The FastAPI app: routers, problem handlers, middleware, the OpenAPI document.

Start-up and shut-down (the model loads in the background, jobs, webhooks)
are in ``lifespan.py``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from ..model import __version__
from ..model.predictor import Predictor
from .api.deps import SyncSlots
from .api.main import api_router
from .api.openapi import install_openapi, operation_id
from .core.config import Settings
from .core.middleware import RequestMiddleware
from .core.problems import install_problem_handlers
from .lifespan import lifespan
from .web import install_web

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """Build the app; ``predictor`` lets tests share one loaded model."""
    settings = settings or Settings()
    # FastAPIOffline: /docs and /redoc load their scripts from the package, not a CDN (air-gapped servers).
    app = FastAPIOffline(
        title="unmask",
        version=__version__,
        summary="Deepfake face-forgery detection: per-face, per-frame and per-file scores.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
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
    app.add_middleware(RequestMiddleware, body_limit=_body_limits(settings), api_keys=settings.api_keys, routes=app.router.routes,
                       body_idle_s=settings.body_idle_timeout_s, body_min_rate=settings.body_min_bytes_per_s)
    install_openapi(app, settings.max_frames, keys_required=bool(settings.api_keys))
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
