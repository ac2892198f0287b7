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
# The page runs only its own script and style; images are the upload (blob:) and heat maps (data:);
# no other site may frame it (clickjacking), and it sends its requests only to this server.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def install_web(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/web/`` (open: the API calls it makes carry the key)."""
    app.mount("/web", StaticFiles(directory=STATIC), name="web")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})
