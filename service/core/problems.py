"""Errors of a request as problem+json (RFC 9457), never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...model.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedMediaError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://unmask.dev/problems/"


class Problem(Exception):
    """Raise in a route to answer ``status`` with a problem+json body."""

    def __init__(self, status: int, title: str, detail: str, kind: str | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.headers = headers

    def response(self, instance: str | None = None) -> JSONResponse:
        body = {"type": TYPE_BASE + self.kind, "title": self.title, "status": self.status, "detail": self.detail}
        if instance:
            body["instance"] = instance
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM_JSON, headers=self.headers)


def media_problem(exc: MediaError, filename: str) -> Problem:
    """The HTTP answer for a file the scoring path refused."""
    if isinstance(exc, UnsupportedMediaError):
        return Problem(415, "Unsupported media type", f"{filename}: {exc.detail}", exc.kind)
    if isinstance(exc, MediaLimitError):
        return Problem(413, "Limit exceeded", f"{filename}: {exc.detail}", exc.kind)
    if isinstance(exc, CorruptMediaError):
        return Problem(422, "Unprocessable media", f"{filename}: {exc.detail}", exc.kind)
    return Problem(422, "Unprocessable media", f"{filename}: {exc.detail}", exc.kind)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return Problem(exc.status_code, _title(exc.status_code), str(exc.detail)).response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return Problem(422, "Invalid request", detail, "invalid-request").response(request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return Problem(500, "Internal error", "an unexpected error occurred; it has been logged").response(
            request.url.path
        )


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
