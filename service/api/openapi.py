"""The OpenAPI document, fit for client generators (openapi-python-client and the like).

FastAPI's own document is adjusted in one place:

- upload fields get ``format: binary`` (FastAPI writes only
  ``contentMediaType``, which generators read as a string);
- one ``Problem`` component (``core.problems.ProblemBody``) for every error
  response, which the routes declare with ``api.examples.problems``;
  FastAPI's validation-error components and automatic 422s (on routes
  whose only parameters are strings in the path, which never fail) are dropped;
- ``securitySchemes`` for the API key (``X-API-Key`` header, or bearer),
  required on every ``/v1/`` operation.
Operation ids are the route functions' names (``score_images``,
``create_job`` ...): see ``operation_id``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ..core.problems import ProblemBody
from ..core.security import PROTECTED_PREFIX

SECURITY_SCHEMES = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "an API key (unmask keygen); needed when the server has UNMASK_API_KEYS set"},
    "BearerKey": {"type": "http", "scheme": "bearer", "description": "the same API key as `Authorization: Bearer KEY`"},
}
UNUSED = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """A stable, readable operation id: the route function's name (FastAPI's default appends the path and method)."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    """Serve the adjusted document at ``app.openapi_url`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                               routes=app.routes, tags=app.openapi_tags)
            app.openapi_schema = adjust(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def adjust(spec: dict[str, Any]) -> dict[str, Any]:
    """The changes listed in the module docstring, applied to FastAPI's document."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = ProblemBody.model_json_schema()
    problem["title"] = "Problem"
    schemas["Problem"] = problem
    for name in UNUSED:
        schemas.pop(name, None)
    for schema in schemas.values():
        _binary_uploads(schema)
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in spec.get("paths", {}).items():
        for operation in item.values():
            # FastAPI's automatic 422 on operations that declare none: only their str path
            # parameters could fail, and never do.
            responses = operation.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                del responses["422"]
            if path.startswith(PROTECTED_PREFIX):
                operation["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
    return spec


def _binary_uploads(schema: dict[str, Any]) -> None:
    """Mark file fields (and lists of them) of a multipart body as binary strings."""
    for prop in schema.get("properties", {}).values():
        for candidate in (prop, prop.get("items", {}), *prop.get("anyOf", [])):
            if candidate.get("type") == "string" and "contentMediaType" in candidate:
                candidate["format"] = "binary"
            if candidate.get("type") == "array" and isinstance(candidate.get("items"), dict):
                items = candidate["items"]
                if items.get("type") == "string" and "contentMediaType" in items:
                    items["format"] = "binary"
