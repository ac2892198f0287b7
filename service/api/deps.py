"""Typed dependencies that keep route signatures short."""

from __future__ import annotations

import threading
from typing import Annotated, Iterator, Literal, Optional, get_origin

from fastapi import Depends, Form, Request
from pydantic import BeforeValidator

from ...model.aggregation import STRATEGIES
from ...model.predictor import Predictor
from ..core.config import Settings
from ..core.problems import Problem
from ..jobs.store import JobStore
from ..jobs.worker import JobRunner

Aggregation = Literal[tuple(STRATEGIES.names())]  # type: ignore[valid-type]  # the registry's names, in the schema
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
        if len(values) > 1 and get_origin(field.annotation) is not list:
            raise Problem(422, "Invalid request", f"send one `{name}` part, not {len(values)}: a field that takes one value "
                          "would keep only one of them", "invalid-request")
        if any(value == "" for value in values):
            raise Problem(422, "Invalid request", f"`{name}` is empty: leave it out to take its default", "invalid-request")


def scoring_options(
    request: Request,
    frames: Optional[int] = Form(None, ge=1, description="frames sampled evenly from a video (default: the server's)"),
    aggregation: Optional[Aggregation] = Form(None, description="a track's score from its faces (default: the server's)"),
    explain: Annotated[FormBool, Form(description="add Grad-CAM heat maps for the highest-scoring faces: `true` or `false`")] = False,
) -> dict:
    """The per-request scoring options of a multipart request (absent ones keep the server's settings)."""
    return check_options(request.app.state.settings, frames=frames, aggregation=aggregation, explain=explain)


def check_options(settings: Settings, **options) -> dict:
    """Options as the predictor takes them; ``frames`` over the ``max_frames`` setting is refused."""
    frames = options.get("frames")
    if frames is not None and frames > settings.max_frames:
        raise Problem(422, "Invalid request", f"frames {frames} is over the limit of {settings.max_frames}", "invalid-request")
    return {k: v for k, v in options.items() if v is not None}


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
        raise Problem(503, "Not ready", f"the model failed to load ({failed}); the server log says why", "model-failed")


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
