"""The API's routers in one place (the FastAPI template's ``api/main.py``); ``service/main.py`` mounts it.

API keys are checked in ``core.middleware`` from the headers, before any
body is read (a dependency here would run after the upload is parsed).
"""

from fastapi import APIRouter, Depends

from .deps import form_as_sent
from .routes import batches, health, jobs, media, model, problems

api_router = APIRouter(dependencies=[Depends(form_as_sent)])  # a form's fields each once, none empty
api_router.include_router(health.router)  # open: probes and metrics need no key
api_router.include_router(model.router)  # open: the model's name, licence and card, as /readyz names it
api_router.include_router(media.router)
api_router.include_router(jobs.router)
api_router.include_router(batches.router)
api_router.include_router(problems.router)  # open: the pages that problem types point to
