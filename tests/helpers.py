"""Helpers the test files share (plain functions; fixtures live in the conftest.py files)."""

from __future__ import annotations

import io

from PIL import Image

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:
    """The problem+json body of ``response``, after checking it is one with this ``status``, a title and a detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    return body


def png_bytes(width: int, height: int, mode: str = "L", colour: int | tuple = 0) -> bytes:
    """A plain PNG of this size (a large one of one colour compresses to a few kB: a pixel bomb)."""
    buf = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def records(response) -> list[dict]:
    """The records of a 200 answer from /v1/images or /v1/videos (``{"results": [...]}``)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"results"}, body
    return body["results"]


def record(response) -> dict:
    """The one record of a 200 answer for one file."""
    (only,) = records(response)
    return only
