"""The API's routers in one place (the FastAPI template's ``api/main.py``); ``service/main.py`` mounts it."""

from fastapi import APIRouter, Depends

from .deps import require_api_key
from .routes import batches, health, jobs, media

api_router = APIRouter()
api_router.include_router(health.router)  # open: probes and metrics need no key
_auth = [Depends(require_api_key)]
api_router.include_router(media.router, dependencies=_auth)
api_router.include_router(jobs.router, dependencies=_auth)
api_router.include_router(batches.router, dependencies=_auth)
