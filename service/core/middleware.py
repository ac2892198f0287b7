"""Request middleware: request id, access log, metrics, streamed body limit.

Pure ASGI (no BaseHTTPMiddleware) so the body can be counted as it streams:
a request over the limit gets 413 after at most ``limit`` bytes are read,
whether or not it sent a Content-Length.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid
from typing import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import prometheus
from .problems import Problem

log = logging.getLogger("unmask.access")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
MULTIPART_SLACK = 64 * 1024  # form boundaries and headers around the file bytes


class BodyTooLarge(Exception):
    pass


class RequestMiddleware:
    """``body_limit(path) -> bytes | None`` gives the largest body a route accepts."""

    def __init__(self, app: ASGIApp, body_limit: Callable[[str], tuple[int, str] | None]) -> None:
        self.app = app
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        limit = self.body_limit(scope["path"]) if scope["method"] in ("POST", "PUT", "PATCH") else None
        try:
            if limit is not None:
                max_bytes, pointer = limit
                declared = headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes + MULTIPART_SLACK:
                    raise BodyTooLarge()
                receive = _counting(receive, max_bytes + MULTIPART_SLACK)
            await self.app(scope, receive, send_with_id)
        except BodyTooLarge:
            if status["sent"]:
                raise
            max_bytes, pointer = limit  # type: ignore[misc]
            detail = f"the request body is over the limit of {max_bytes} bytes{pointer}"
            await Problem(413, "Limit exceeded", detail, "limit_exceeded").response(scope["path"])(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            prometheus.REQUESTS.labels(scope["method"], route, str(status["code"])).inc()
            prometheus.LATENCY.labels(route).observe(elapsed)
            log.info("%s %s %s %.0fms", scope["method"], scope["path"], status["code"], elapsed * 1000)
            request_id.reset(token)


def _counting(receive: Receive, max_bytes: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise BodyTooLarge()
        return message

    return wrapped


def _route_template(scope: Scope) -> str:
    """The route's pattern (/v1/jobs/{job_id}), not the raw path: bounded label values."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Log lines carry the request id; ``json`` gives one JSON object per line."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
