"""The OpenAPI document, fit for client generators (openapi-python-client and the like).

FastAPI's own document is adjusted in one place:

- upload fields get ``format: binary`` (FastAPI writes only
  ``contentMediaType``, which generators read as a string);
- one ``Problem`` component (``core.problems.ProblemBody``) for every error
  response, which the routes declare with ``api.examples.problems``;
  FastAPI's validation-error components and automatic 422s (on routes
  whose only parameters are strings in the path, which never fail) are dropped;
- optional multipart fields are plain (``anyOf [X, null]`` becomes ``X``:
  a form cannot send null; absent is the default), and ``frames`` carries
  the server's ``max_frames`` as its maximum;
- the upload fields' ``encoding`` lists the media types the content sniff
  accepts;
- ``create_job``'s body takes exactly one of ``file`` and ``path``, said
  with ``if``/``then``/``else`` on ``required`` beside its properties:
  validators and fuzzers read it, and generated clients keep their typed
  body class (a ``oneOf`` turns it into ``Any`` in openapi-python-client);
- ``securitySchemes`` for the API key (``X-API-Key`` header, or bearer),
  required on every ``/v1/`` operation when the server has keys configured;
- response ``links`` from ``create_job`` and ``create_batch`` to the
  operations that take the id they return, so clients and stateful fuzzers
  can follow a job or batch from its creation.
Operation ids are the route functions' names (``score_images``,
``create_job`` ...): see ``operation_id``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ...model.media import IMAGE_TYPES, VIDEO_TYPES
from ..core.problems import ProblemBody
from ..core.security import PROTECTED_PREFIX

SECURITY_SCHEMES = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "an API key (unmask keygen); needed when the server has UNMASK_API_KEYS set"},
    "BearerKey": {"type": "http", "scheme": "bearer", "description": "the same API key as `Authorization: Bearer KEY`"},
}
UNUSED = ("HTTPValidationError", "ValidationError")
# operation -> (path parameter, operations that take the id in the 202 body's ``id``)
LINKS = {"create_job": ("job_id", ("get_job", "cancel_job", "delete_job")),
         "create_batch": ("batch_id", ("get_batch", "get_batch_results"))}
# multipart bodies that take exactly one of two fields
EXACTLY_ONE = {"Body_create_job": ("file", "path")}
UPLOAD_TYPES = {"score_images": list(IMAGE_TYPES.values()), "score_videos": list(VIDEO_TYPES.values()),
                "create_job": [*IMAGE_TYPES.values(), *VIDEO_TYPES.values()]}  # what the content sniff accepts


def operation_id(route: APIRoute) -> str:
    """A stable, readable operation id: the route function's name (FastAPI's default appends the path and method)."""
    return route.name


def install_openapi(app: FastAPI, max_frames: int, keys_required: bool) -> None:
    """Serve the adjusted document at ``app.openapi_url`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                               routes=app.routes, tags=app.openapi_tags)
            app.openapi_schema = adjust(spec, max_frames, keys_required)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def adjust(spec: dict[str, Any], max_frames: int, keys_required: bool) -> dict[str, Any]:
    """The changes listed in the module docstring, applied to FastAPI's document."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = ProblemBody.model_json_schema()
    problem["title"] = "Problem"
    schemas["Problem"] = problem
    for name in UNUSED:
        schemas.pop(name, None)
    for name, schema in schemas.items():
        if name.startswith("Body_"):  # multipart bodies
            _plain_form_fields(schema)
            _binary_uploads(schema)
        if "frames" in schema.get("properties", {}):
            frames = schema["properties"]["frames"]
            for candidate in (frames, *frames.get("anyOf", [])):
                if candidate.get("type") == "integer":
                    candidate["maximum"] = max_frames
    for op in ("score_images", "score_videos"):
        if f"Body_{op}" in schemas:
            schemas[f"Body_{op}"]["properties"]["files"]["minItems"] = 1
    for name, (first, second) in EXACTLY_ONE.items():
        if name in schemas:  # with the first, not the second; without it, the second
            schemas[name] |= {"if": {"required": [first]}, "then": {"not": {"required": [second]}}, "else": {"required": [second]}}
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in spec.get("paths", {}).items():
        for operation in item.values():
            # FastAPI's automatic 422 on operations that declare none: only their str path
            # parameters could fail, and never do.
            responses = operation.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                del responses["422"]
            form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if form is not None and operation.get("operationId") in UPLOAD_TYPES:
                field = "file" if operation["operationId"] == "create_job" else "files"
                form["encoding"] = {field: {"contentType": ", ".join(UPLOAD_TYPES[operation["operationId"]])}}
            if keys_required and path.startswith(PROTECTED_PREFIX):
                operation["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
            if operation.get("operationId") in LINKS:
                parameter, targets = LINKS[operation["operationId"]]
                responses["202"]["links"] = {target: {"operationId": target, "parameters": {parameter: "$response.body#/id"}}
                                             for target in targets}
    return spec


def _plain_form_fields(schema: dict[str, Any]) -> None:
    """``anyOf [X, null]`` -> ``X`` for the fields of a form (optional fields are left out, never null)."""
    for name, prop in schema.get("properties", {}).items():
        options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
        if "anyOf" in prop and len(options) == 1:
            plain = {k: v for k, v in prop.items() if k not in ("anyOf", "default")} | options[0]
            schema["properties"][name] = plain


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
