"""Batches: score many server-side files (folders expanded) as jobs of one batch."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from ...core.problems import Problem
from ..deps import RunnerDep, SettingsDep, StoreDep, check_options
from ..paths import expand_media, resolve_under_root
from ..schemas import BatchJob, BatchPublic, BatchRequest
from .jobs import _check_capacity

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post("", status_code=202, response_model=BatchPublic)
def submit_batch(request: BatchRequest, response: Response, settings: SettingsDep, store: StoreDep, runner: RunnerDep):
    """Queue every media file under the given server-side paths (files or folders)."""
    if not request.paths:
        raise Problem(422, "Invalid request", "paths is empty", "invalid-request")
    files = []
    for given in request.paths:
        files.extend((p, given) for p in expand_media(resolve_under_root(given, settings.allowed_root)))
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


@router.get("/{batch_id}", response_model=BatchPublic)
def get_batch(batch_id: str, store: StoreDep):
    """Counts by state and each file's job."""
    return _public(batch_id, store)


@router.get("/{batch_id}/results", responses={200: {"content": {"application/x-ndjson": {}}}})
def batch_results(batch_id: str, store: StoreDep):
    """The records of the batch's finished files, one JSON object per line."""
    jobs = _jobs(batch_id, store)
    lines = (json.dumps(job.result) + "\n" for job in jobs if job.result is not None)
    return StreamingResponse(lines, media_type="application/x-ndjson")


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
