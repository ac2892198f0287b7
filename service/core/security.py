"""API keys: which requests need one, and whether the one sent is accepted.

Checked from the headers alone in ``core.middleware``, before any body is
read: an unauthenticated upload is refused after its headers, not after
streaming it. Only SHA-256 digests of keys are configured; the digest of
the key sent is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from .problems import Problem

PROTECTED_PREFIX = "/v1/"  # the API; probes, metrics and docs stay open
AUTH_HEADERS = {"WWW-Authenticate": "Bearer"}
BEARER = re.compile(r"bearer +[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)  # RFC 6750's b64token


def needs_key(method: str, path: str) -> bool:
    """Every API route needs a key, except CORS preflights (browsers send them without one)."""
    return path.startswith(PROTECTED_PREFIX) and method != "OPTIONS"


def sent_key(headers: dict[str, str]) -> str:
    """The key from ``X-API-Key`` or ``Authorization: Bearer KEY`` (lower-cased header names)."""
    key = headers.get("x-api-key", "")
    auth = headers.get("authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key


def check_key(headers: dict[str, str], digests: list[str]) -> Problem | None:
    """None when the request may go on; else the 401 to answer."""
    if not digests:
        return None
    auth = headers.get("authorization")
    if auth is not None and not BEARER.fullmatch(auth.strip()):  # credentials sent but unreadable: never guess past them
        return Problem(401, "Unauthorized", "the Authorization header is not `Bearer KEY`", "unauthorized", headers=AUTH_HEADERS)
    key = sent_key(headers)
    if not key:
        return Problem(401, "Unauthorized", "an API key is required (X-API-Key or Authorization: Bearer)", "unauthorized",
                       headers=AUTH_HEADERS)
    digest = hashlib.sha256(key.encode()).hexdigest()
    if not any(hmac.compare_digest(digest, d) for d in digests):
        return Problem(401, "Unauthorized", "the API key is not valid", "unauthorized", headers=AUTH_HEADERS)
    return None
