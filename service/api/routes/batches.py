"""Batches: score many server-side files (folders expanded) as jobs of one batch."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from ....model.results import MediaResult
from ...core.problems import Problem
from ..deps import RunnerDep, SettingsDep, StoreDep, check_options
from ..examples import problems
from ..paths import expand_media, resolve_under_root
from ..schemas import BatchJob, BatchPublic, BatchRequest
from .jobs import _check_capacity

router = APIRouter(prefix="/v1/batches", tags=["batches"])
NDJSON = "application/x-ndjson"


@router.post("", status_code=202, response_model=BatchPublic, responses=problems(400, 401, 403, 404, 413, 422, 429))
def create_batch(request: BatchRequest, response: Response, settings: SettingsDep, store: StoreDep, runner: RunnerDep):
    """Queue every media file under the given server-side paths (files or folders)."""
    if not request.paths:
        raise Problem(422, "Invalid request", "paths is empty", "invalid-request")
    files = []
    for given in request.paths:
        files.extend((p, given) for p in expand_media(resolve_under_root(given, settings.allowed_root), settings.allowed_root))
    if not files:
        raise Problem(422, "Invalid request", "no media files under the given paths", "invalid-request")
    if len(files) > settings.max_batch_files:
        raise Problem(413, "Limit exceeded", f"{len(files)} files, over the limit of {settings.max_batch_files} per batch", "limit_exceeded")
    _check_capacity(store, settings.max_queue, len(files))
    options = check_options(settings, frames=request.frames, aggregation=request.aggregation, explain=request.explain)
    batch_id = uuid.uuid4().hex
    root = settings.allowed_root.resolve()  # type: ignore[union-attr]
    for path, _ in files:
        store.add("path", str(path), str(path.relative_to(root)), batch_id=batch_id, options=options)
    runner.notify()
    response.headers["Location"] = f"/v1/batches/{batch_id}"
    return _public(batch_id, store)


@router.get("/{batch_id}", response_model=BatchPublic, responses=problems(401, 404))
def get_batch(batch_id: str, store: StoreDep):
    """Counts by state and each file's job."""
    return _public(batch_id, store)


@router.get("/{batch_id}/results", response_model=list[MediaResult],
            responses={200: {"description": "The records; as JSON lines with `Accept: application/x-ndjson`",
                             "content": {NDJSON: {"schema": {"type": "string", "description": "one MediaResult per line"}}}},
                       **problems(401, 404)})
def get_batch_results(batch_id: str, store: StoreDep, request: Request):
    """The records of the batch's finished files: a JSON array, or one JSON object per line when asked for JSON lines."""
    jobs = _jobs(batch_id, store)
    records = [job.result for job in jobs if job.result is not None]
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse((json.dumps(r) + "\n" for r in records), media_type=NDJSON)
    return JSONResponse(records)


def _jobs(batch_id: str, store):
    jobs = store.list_batch(batch_id)
    if not jobs:
        raise Problem(404, "Not found", f"no batch {batch_id}", "not-found")
    return jobs


def _public(batch_id: str, store) -> BatchPublic:
    jobs = _jobs(batch_id, store)
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.state] = counts.get(job.state, 0) + 1
    ended = all(job.state in ("done", "failed", "cancelled") for job in jobs)
    return BatchPublic(
        id=batch_id, state="done" if ended else "running", files=len(jobs), counts=counts,
        jobs=[BatchJob(id=j.id, name=j.name, state=j.state) for j in jobs], results_url=f"/v1/batches/{batch_id}/results",
    )
