"""Typed dependencies that keep route signatures short."""

from __future__ import annotations

import inspect
import threading
from typing import Annotated, Iterator, Optional, get_args, get_origin

from fastapi import Depends, Form, Request
from pydantic import BeforeValidator

from ...model.options import ScoringOptions
from ...model.predictor import Predictor
from ..core.config import Settings
from ..core.problems import Problem
from ..jobs.store import JobStore
from ..jobs.worker import JobRunner

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _true_or_false(value: object) -> object:
    """A form's boolean as the schema says: ``true`` or ``false``, in any case (Python clients send ``True``).

    Pydantic alone would also take 1, 0, on, off, yes, no, t, f, y and n.
    """
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise ValueError("must be true or false")
        return value.lower() == "true"
    return value


FormBool = Annotated[bool, BeforeValidator(_true_or_false)]


async def form_as_sent(request: Request) -> None:
    """Refuse what form parsing would pass silently (every route; a no-op without a form body).

    A field that takes one value sent twice would keep one and drop the
    other; a field sent empty would read as absent, its default taken
    (``path=`` beside a ``file``, ``frames=``). The schema says neither is
    allowed (no arrays, ``minLength``, typed values), so both are 422.
    """
    body = getattr(request.scope.get("route"), "body_field", None)
    if body is None or not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return
    form = await request.form()  # parsed once: the route's fields read the same, cached form
    for name, field in body.field_info.annotation.model_fields.items():
        values = form.getlist(field.alias or name)
        if len(values) > 1 and not _takes_many(field.annotation):
            raise Problem(422, "Invalid request", f"send one `{name}` part, not {len(values)}: a field that takes one value "
                          "would keep only one of them", "invalid_request")
        if any(value == "" for value in values):
            raise Problem(422, "Invalid request", f"`{name}` is empty: leave it out to take its default", "invalid_request")


def _takes_many(annotation) -> bool:
    """A list field, optional or not (``list[X]``, ``Optional[list[X]]``)."""
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


def scoring_options(request: Request, **fields) -> dict:
    """The per-request scoring options of a form request (absent ones keep the server's settings).

    Its form fields are ``ScoringOptions``'s own (set as its signature below), so
    the names, limits and descriptions are stated once, in ``model.options``.
    """
    return check_options(request.app.state.settings, ScoringOptions(**fields))


def _form_field(name: str, field) -> inspect.Parameter:
    kind, description = field.annotation, field.description
    if bool in (kind, *get_args(kind)):  # a form's boolean is the text "true" or "false", as the schema says
        kind, description = (FormBool if kind is bool else Optional[FormBool]), f"{description}: `true` or `false`"
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                             annotation=Annotated[kind, Form(description=description), *field.metadata])


scoring_options.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)]
    + [_form_field(name, field) for name, field in ScoringOptions.model_fields.items()])


def check_options(settings: Settings, options: ScoringOptions) -> dict:
    """Options as the predictor and a job's stored options take them; ``frames`` over ``max_frames`` is refused."""
    if options.frames is not None and options.frames > settings.max_frames:
        raise Problem(422, "Invalid request", f"frames {options.frames} is over the limit of {settings.max_frames}",
                      "invalid_request")
    return options.given()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_predictor(request: Request) -> Predictor:
    """The loaded predictor; 503 while the model loads in the background (or if it failed to load)."""
    predictor = getattr(request.app.state, "predictor", None)
    if predictor is None:
        check_model_usable(request)
        raise Problem(503, "Not ready", "the model is still loading", "not-ready", headers={"Retry-After": "5"})
    return predictor


def check_model_usable(request: Request) -> None:
    """503 when the model failed to load: nothing could run, so jobs are not taken either (while it loads, they are).

    No Retry-After (it will not load without an operator), and no path or
    message from the server: the log says why.
    """
    failed = getattr(request.app.state, "load_error", None)
    if failed:
        raise Problem(503, "Not ready", f"the model failed to load ({failed}); the server log says why", "model_failed")


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_runner(request: Request) -> JobRunner | None:
    """This process's job runner; None in an API replica (``worker = false``)."""
    return request.app.state.runner


class SyncSlots:
    """Bounds synchronous scoring requests in flight; past the bound, 503."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._used >= self.limit:
                raise Problem(503, "Busy", f"{self.limit} synchronous requests are already being scored; retry, or use /v1/jobs",
                              "busy", headers={"Retry-After": "5"})
            self._used += 1
        try:
            yield
        finally:
            with self._lock:
                self._used -= 1


def sync_slot(request: Request) -> Iterator[None]:
    yield from request.app.state.sync_slots()


SettingsDep = Annotated[Settings, Depends(get_settings)]
OptionsDep = Annotated[dict, Depends(scoring_options)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
StoreDep = Annotated[JobStore, Depends(get_store)]
RunnerDep = Annotated[Optional[JobRunner], Depends(get_runner)]
