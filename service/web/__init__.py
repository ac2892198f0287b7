"""The web page at ``/``: static files in ``static/`` (plain HTML, CSS and JS; no CDN, no build step).

The page talks to the same API as any client (``POST /v1/jobs``, then polls
``GET /v1/jobs/{id}``), so it needs no route of its own beyond serving files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install_web(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/web/`` (open: the API calls it makes carry the key)."""
    app.mount("/web", StaticFiles(directory=STATIC), name="web")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")
