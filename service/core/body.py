"""Reading a request body: its size limit, its read deadline, a multipart body's closing boundary.

``guarded`` wraps the ASGI ``receive`` of a request that has a body, and
raises the Problem as the body streams, before the route sees a form:

- over the route's limit: 413 after at most ``limit`` bytes, with or
  without a Content-Length (chunked bodies are counted too);
- too slow: no bytes for ``idle_s``, or the body as a whole arriving slower
  than ``min_rate`` bytes a second (after ``idle_s`` of grace): 408, and the
  connection is closed. A client that declares 5 MB and sends a trickle
  (slowloris) would otherwise hold a connection, a file descriptor and a
  spool file for as long as it likes. Starlette closes the spooled parts of
  a form it was parsing when a read fails, so nothing is left on disk;
- a multipart body that ends without its closing boundary (``--BOUNDARY--``:
  cut short, or a Content-Length smaller than the body): 400 saying so. The
  form parser takes such a body as a form with its last part missing, which
  would read as "field required".
"""

from __future__ import annotations

import asyncio
import time

from python_multipart.multipart import parse_options_header
from starlette.types import Message, Receive

from .problems import Problem

MULTIPART_SLACK = 64 * 1024  # form boundaries and headers around the file bytes


def multipart_boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type (None for any other type, or none given)."""
    kind, params = parse_options_header(content_type)
    return params.get(b"boundary") or None if kind == b"multipart/form-data" else None


def guarded(receive: Receive, limit: tuple[int, str] | None, idle_s: float, min_rate: float, boundary: bytes | None) -> Receive:
    """``receive`` that raises the 413, 408 or 400 Problem described in the module docstring.

    Args:
        receive: the request's ``receive``.
        limit: (largest body in bytes, a hint for the 413's detail), or None.
        idle_s: the longest wait for the next bytes, and the grace before ``min_rate`` applies.
        min_rate: the slowest a whole body may arrive, in bytes a second (0: no floor).
        boundary: the multipart boundary when the body is a form (None: not checked).
    """
    started = time.monotonic()
    seen = 0
    ended = False
    opening = b"--" + boundary if boundary else b""
    closed, head, tail = not opening, b"", b""

    async def wrapped() -> Message:
        nonlocal seen, ended, closed, head, tail
        if ended:  # after the body only a disconnect can come, whenever it comes
            return await receive()
        wait = idle_s
        if min_rate:
            wait = min(wait, started + idle_s + seen / min_rate - time.monotonic())
            if wait <= 0:
                raise _too_slow(seen, time.monotonic() - started, min_rate)
        try:
            async with asyncio.timeout(wait):
                message = await receive()
        except TimeoutError:
            if wait < idle_s:
                raise _too_slow(seen, time.monotonic() - started, min_rate) from None
            raise Problem(408, "Request timeout", f"no bytes of the request body arrived for {idle_s:g} s ({seen} received)",
                          "request-timeout", headers={"Connection": "close"}) from None
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        seen += len(chunk)
        if limit is not None and seen > limit[0] + MULTIPART_SLACK:
            raise too_large(limit)
        if not closed:
            head = (head + chunk)[:len(opening)] if len(head) < len(opening) else head
            window = tail + chunk
            closed, tail = opening + b"--" in window, window[-len(opening) - 1:]
        if not message.get("more_body", False):
            ended = True
            if not closed:
                raise Problem(400, "Bad Request", _unclosed(opening.decode("latin-1"), head == opening, seen), "bad_request")
        return message

    return wrapped


def _unclosed(opening: str, opened: bool, seen: int) -> str:
    """What is wrong with a multipart body that never reached its closing boundary."""
    if not seen:
        return f"the multipart body is empty: a form is parts, each opened by {opening}, then {opening}-- to close it"
    if not opened:
        return (f"the body does not start with {opening}, the boundary its Content-Type names: it is not that multipart form")
    return (f"the multipart body ends before its closing boundary {opening}-- after {seen} bytes: it was cut short, "
            "or its Content-Length is smaller than the body")


def too_large(limit: tuple[int, str]) -> Problem:
    max_bytes, pointer = limit
    return Problem(413, "Limit exceeded", f"the request body is over the limit of {max_bytes} bytes{pointer}", "limit_exceeded")


def _too_slow(seen: int, elapsed: float, min_rate: float) -> Problem:
    return Problem(408, "Request timeout", f"the request body arrived too slowly: {seen} bytes in {elapsed:.0f} s, under the "
                   f"floor of {min_rate:g} bytes a second", "request-timeout", headers={"Connection": "close"})
