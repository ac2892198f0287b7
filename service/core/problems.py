"""Errors of a request as problem+json (RFC 9457), never a traceback.

``Problem`` is an HTTPException, so it passes through every layer that
re-raises those: FastAPI's body parser lets one raised while the body
streams (the size limit) reach the handler instead of becoming a 400.
Unexpected exceptions are answered in ``core.middleware`` (inside the
request's id and log line), not here.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...model.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedMediaError
from ...model.printable import printable
from .problem_types import slug

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "/problems/"  # the default of the problem_base_uri setting: relative, served by this server
# Problem types of the statuses Starlette raises on its own (routing, methods).
STATUS_KINDS = {404: "not_found", 405: "method_not_allowed", 413: "limit_exceeded"}


class ProblemBody(BaseModel):
    """The body of every error response (RFC 9457 problem details); the OpenAPI ``Problem`` component."""

    type: str = Field(description="URI naming the kind of problem, stable for machines: the problem_base_uri setting "
                      "(default relative, /problems/) and a slug; the server serves it as a page that explains it",
                      examples=[TYPE_BASE + "unsupported_media"])
    title: str = Field(description="short human summary of the kind of problem", examples=["Unsupported media type"])
    status: int = Field(description="the HTTP status code", examples=[415])
    detail: str = Field(description="what went wrong with this request: the file, the field or the limit", examples=["notes.txt: not a supported image or video"])
    instance: Optional[str] = Field(None, description="the request path the problem occurred on", examples=["/v1/images"])


class Problem(StarletteHTTPException):
    """Raise anywhere in a request to answer ``status`` with a problem+json body."""

    def __init__(self, status: int, title: str, detail: str, kind: str | None = None, headers: dict | None = None):
        super().__init__(status, detail, headers)
        self.status, self.title = status, title
        self.kind = slug(kind or title)  # one style: lower case with underscores (service.core.problem_types)

    def response(self, instance: str | None = None, app=None) -> JSONResponse:
        """The problem+json answer; its type under ``app``'s ``problem_base_uri`` setting (default ``TYPE_BASE``)."""
        # The detail and the path quote what a client sent (file names, paths): a person reads them.
        body = {"type": _type_base(app) + self.kind, "title": self.title, "status": self.status, "detail": printable(self.detail)}
        if instance:
            body["instance"] = printable(shortened(instance))  # a client's 5,000-character path is not echoed whole
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM_JSON, headers=self.headers)


def shortened(text: str, limit: int = 200) -> str:
    """``text`` as a problem quotes it: past ``limit`` characters, cut and marked with "..."."""
    return text if len(text) <= limit else text[:limit] + "..."


def media_problem(exc: MediaError, filename: str) -> Problem:
    """The HTTP answer for a file the scoring path refused."""
    if isinstance(exc, UnsupportedMediaError):
        return Problem(415, "Unsupported media type", f"{filename}: {exc.detail}", exc.kind)
    if isinstance(exc, MediaLimitError):
        return Problem(413, "Limit exceeded", f"{filename}: {exc.detail}", exc.kind)
    if isinstance(exc, CorruptMediaError):
        return Problem(422, "Unprocessable media", f"{filename}: {exc.detail}", exc.kind)
    return Problem(422, "Unprocessable media", f"{filename}: {exc.detail}", exc.kind)


def internal_error() -> Problem:
    return Problem(500, "Internal error", "an unexpected error occurred; it has been logged with this request's id", "internal")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if not isinstance(exc, Problem):  # Starlette's own: 404, 405
            headers = dict(exc.headers or {})
            if exc.status_code == 405:  # every method of the path (Starlette names only the first route's)
                headers["Allow"] = ", ".join(_allowed_methods(request.app.openapi(), request.url.path)) or headers.get("Allow", "")
            detail = _form_detail(exc) if exc.status_code == 400 else str(exc.detail)
            exc = Problem(exc.status_code, _title(exc.status_code), detail, STATUS_KINDS.get(exc.status_code), headers)
        return exc.response(request.url.path, request.app)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):  # not JSON at all: a malformed body, as for multipart
            return Problem(400, "Bad Request", describe_errors(errors), "bad_request").response(request.url.path, request.app)
        return Problem(422, "Invalid request", describe_errors(errors), "invalid_request").response(request.url.path, request.app)


def _type_base(app) -> str:
    """Where the app's problem types point (the ``problem_base_uri`` setting)."""
    settings = getattr(getattr(app, "state", None), "settings", None)
    return getattr(settings, "problem_base_uri", TYPE_BASE)


def _form_detail(exc: StarletteHTTPException) -> str:
    """Starlette's 400s for a form it could not parse, in words that say what is wrong with the body."""
    if exc.detail == "Missing boundary in multipart.":
        return "the Content-Type multipart/form-data names no boundary: let the HTTP library write that header with the body"
    parser_error = getattr(exc.__context__, "__cause__", None)  # the multipart parser's own message
    if exc.detail == "Invalid multipart data." and parser_error is not None:
        return f"the body is not valid multipart/form-data: {parser_error}"
    return str(exc.detail)


def describe_errors(errors) -> str:
    """Pydantic's errors as one line, ``where: what; ...`` (a request's fields, or the server's settings)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {_message(e)}" for e in errors)


def _message(error: dict) -> str:
    """Pydantic's message, except where it names Python types instead of what the client sent."""
    if "Expected UploadFile" in error["msg"]:  # a form part without a filename arrives as text
        return "must be a file: a multipart part with a filename (curl: -F 'field=@photo.jpg')"
    if error.get("type") == "value_error":  # one of our validators: its message, without pydantic's "Value error, "
        return str(error["ctx"]["error"])
    return error["msg"]


def _allowed_methods(spec: dict, path: str) -> list[str]:
    """The methods the OpenAPI document declares for the path template that ``path`` matches (HEAD with GET)."""
    for template, item in spec.get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
            methods = {method.upper() for method in item}
            return sorted(methods | {"HEAD"} if "GET" in methods else methods)
    return []


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
