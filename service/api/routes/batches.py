"""Batches: score many server-side files (folders expanded) as jobs of one batch."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from ....model.media import kind_from_name
from ....model.printable import printable
from ....model.results import ErrorInfo, MediaResult
from ...core.problems import Problem
from ...jobs.store import QueueFull
from ..checks import admit
from ..deps import RunnerDep, SettingsDep, StoreDep, check_model_usable, check_options
from ..examples import problems
from ..paths import expand_media, resolve_under_root
from ..schemas import BatchJob, BatchPublic, BatchRequest
from .jobs import queue_full

router = APIRouter(prefix="/v1/batches", tags=["batches"])
NDJSON = "application/x-ndjson"


@router.post("", status_code=202, response_model=BatchPublic, responses=problems(400, 401, 403, 404, 408, 413, 415, 422, 429, 503))
def create_batch(batch: BatchRequest, request: Request, response: Response, settings: SettingsDep, store: StoreDep, runner: RunnerDep):
    """Queue every media file under the given server-side paths (files or folders), each file once.

    A file named on its own gets the type and header checks of ``POST
    /v1/jobs`` (415, 413, 422 for the request); a folder's files are picked
    by suffix, and one that turns out bad ends with an error record.
    """
    check_model_usable(request)
    if not batch.paths:
        raise Problem(422, "Invalid request", "paths is empty", "invalid_request")
    options = check_options(settings, batch)
    files: dict[Path, None] = {}  # resolved paths in first-seen order: overlapping paths queue a file once
    for given in batch.paths:
        resolved = resolve_under_root(given, settings.allowed_root)
        if resolved.is_file():
            admit([(resolved, given)], settings, options, max_seconds=settings.max_video_seconds, decode=False)
        files.update(dict.fromkeys(expand_media(resolved, settings.allowed_root)))
    if not files:
        raise Problem(422, "Invalid request", "no media files under the given paths", "invalid_request")
    if len(files) > settings.max_batch_files:
        raise Problem(413, "Limit exceeded", f"{len(files)} files, over the limit of {settings.max_batch_files} per batch", "limit_exceeded")
    if len(files) > settings.max_queue:  # could never be queued: not a retry-later 429
        raise Problem(413, "Limit exceeded", f"{len(files)} files, over the job queue's limit of {settings.max_queue} "
                      "(UNMASK_MAX_QUEUE); split the batch or raise the limit", "limit_exceeded")
    batch_id = uuid.uuid4().hex
    root = settings.allowed_root.resolve()  # type: ignore[union-attr]
    try:
        names = [printable(str(path.relative_to(root))) for path in files]  # as records show them; the path itself is kept
        store.add_many("path", list(zip(map(str, files), names)), batch_id=batch_id, options=options, max_queued=settings.max_queue)
    except QueueFull as exc:
        raise queue_full(exc.queued, exc.limit) from exc
    if runner is not None:
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
    """The records of the batch's ended files, in the batch's order: a JSON array, or one JSON object per line when asked for JSON lines.

    A file whose job failed (e.g. past the job timeout) or was cancelled has
    an error record (``job_failed``, ``cancelled``), so every ended file is
    listed; files still queued or running are not (see the batch's state).
    """
    jobs = _jobs(batch_id, store)
    records = [record for record in map(_record, jobs) if record is not None]
    if _prefers_ndjson(request.headers.get("accept", "")):
        return StreamingResponse((json.dumps(r) + "\n" for r in records), media_type=NDJSON)
    return JSONResponse(records)


def _prefers_ndjson(accept: str) -> bool:
    """Whether an Accept header asks for JSON lines: listed with a quality above 0, and not below JSON's."""
    quality = {}
    for media_range in accept.split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            quality[kind.lower()] = float(q)
        except ValueError:
            quality[kind.lower()] = 0.0
    ndjson = quality.get(NDJSON, 0.0)
    return ndjson > 0 and ndjson >= quality.get("application/json", 0.0)


def _record(job) -> dict | None:
    """An ended job's record: its result, or an error record when it failed or was cancelled; None while it runs."""
    if job.result is not None:
        return job.result
    if job.state == "failed":
        error = ErrorInfo("job_failed", job.error or "the job failed")
    elif job.state == "cancelled":
        error = ErrorInfo("cancelled", "the job was cancelled")
    else:
        return None
    return MediaResult(path=job.name, media=kind_from_name(job.name), status="error", error=error).to_dict()


def _jobs(batch_id: str, store):
    jobs = store.list_batch(batch_id)
    if not jobs:
        raise Problem(404, "Not found", f"no batch {batch_id}", "not_found")
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
