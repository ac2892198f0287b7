"""Request middleware: request id, API key, body limit, HEAD, unexpected errors, access log, metrics.

Pure ASGI (no BaseHTTPMiddleware), outermost, so that:

- the API key is checked from the headers before any body is read;
- the body is read through ``core.body.guarded``: a request over the limit
  gets 413 after at most ``limit`` bytes, with or without a Content-Length;
  one that stalls or trickles gets 408; a multipart body cut short, 400;
- an unexpected exception becomes a 500 problem+json inside this request's
  context: it carries the request id, is logged once with that id, and the
  connection stays open (Starlette's outermost error layer would log it
  twice, without the id, and close the connection);
- HEAD is answered wherever GET is (HTTP requires it; uptime checks and
  load balancers use it): the request runs as GET and its body is dropped,
  its headers (Content-Length included) kept. FastAPI's routes answer GET
  only, and adding HEAD to them would put duplicate operations in the
  OpenAPI document.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from typing import Callable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...model.printable import TextFormatter
from . import prometheus
from .body import MULTIPART_SLACK, guarded, multipart_boundary, too_large
from .problems import Problem, internal_error
from .security import check_key, needs_key

log = logging.getLogger("unmask.access")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# A client's X-Request-ID is kept only if it is printable ASCII without spaces: it is echoed in a
# response header and written to every log line (a control character there could forge log lines
# or drive a terminal).
CLIENT_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,64}")
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}  # others share one metrics label
WITH_BODY = ("POST", "PUT", "PATCH")


class RequestMiddleware:
    """Wraps the app.

    Args:
        app: the ASGI app.
        body_limit: ``body_limit(path) -> (bytes, pointer) | None``: the largest
            body a route accepts and a hint added to the 413's detail.
        api_keys: SHA-256 digests of accepted keys (empty: no authentication).
        routes: the app's routes, to label metrics with route patterns.
        body_idle_s: the longest wait for the next bytes of a body (408 past it).
        body_min_rate: the slowest a whole body may arrive, bytes a second (0: no floor).
    """

    def __init__(self, app: ASGIApp, body_limit: Callable[[str], tuple[int, str] | None],
                 api_keys: Sequence[str] = (), routes: Sequence[BaseRoute] = (), body_idle_s: float = 15.0,
                 body_min_rate: float = 0.0) -> None:
        self.app = app
        self.body_limit = body_limit
        self.api_keys = list(api_keys)
        self.routes = routes
        self.body_idle_s, self.body_min_rate = body_idle_s, body_min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        rid = given if CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex  # a longer one is replaced, not cut
        token = request_id.set(rid)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        method = scope["method"] if scope["method"] in METHODS else "other"
        if method == "HEAD":
            scope = dict(scope, method="GET")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                # nosniff: a browser must not run an error body or an upload's echo as another type
                message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", rid.encode()),
                                                                        (b"x-content-type-options", b"nosniff")]
            elif method == "HEAD" and message["type"] == "http.response.body":
                message = dict(message, body=b"")
            await send(message)

        try:
            refusal = self._refusal(scope, headers)
            if refusal is not None:
                await refusal.response(scope["path"], scope.get("app"))(scope, receive, send_with_id)
                return
            if scope["method"] in WITH_BODY:
                receive = guarded(receive, self.body_limit(scope["path"]), self.body_idle_s, self.body_min_rate,
                                  multipart_boundary(headers.get("content-type", "")))
            await self.app(scope, receive, send_with_id)
        except Problem as exc:  # raised while the body streamed, outside the app's handlers
            if status["sent"]:
                raise
            await exc.response(scope["path"], scope.get("app"))(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not status["sent"]:
                await internal_error().response(scope["path"], scope.get("app"))(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(self.routes, scope)
            prometheus.REQUESTS.labels(method, route, str(status["code"])).inc()
            prometheus.LATENCY.labels(route).observe(elapsed)
            log.info("%s %s %s %.0fms", method, scope["path"], status["code"], elapsed * 1000)
            request_id.reset(token)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> Problem | None:
        """A 401 or 413 decided from the headers alone, before the body is read."""
        if needs_key(scope["method"], scope["path"]):
            problem = check_key(headers, self.api_keys)
            if problem is not None:
                return problem
        limit = self.body_limit(scope["path"]) if scope["method"] in WITH_BODY else None
        declared = headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit[0] + MULTIPART_SLACK:
            return too_large(limit)
        return None


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The pattern of the route a request matched (/v1/jobs/{job_id}, /docs): bounded label values.

    API routes leave themselves in the scope once routed; the others (docs,
    the OpenAPI document, static files) are matched here as the router would.
    """
    routed = getattr(scope.get("route"), "path", None)
    if routed:
        return routed
    partial = None
    for route in routes:
        path = getattr(route, "path", None)
        if not path:  # a group of included routers: routed above
            continue
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return path
        if match == Match.PARTIAL and partial is None:
            partial = path
    return partial or "unmatched"


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
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
