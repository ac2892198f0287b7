"""Asynchronous jobs: submit a file (upload or server-side path), list, poll, cancel, delete; optional webhook.

Cancel (``POST /v1/jobs/{id}/cancel``) stops a job and keeps it, cancelled,
for its client to read; delete (``DELETE /v1/jobs/{id}``) forgets it, as
HTTP's DELETE means: a read after it is 404, which clients, caches and
stateful fuzzers rely on.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from ....model.printable import printable
from ...core.problems import Problem
from ...jobs.store import JobState, QueueFull
from ..checks import admit
from ..deps import OptionsDep, RunnerDep, SettingsDep, StoreDep, check_model_usable
from ..examples import JOB_DONE, JOB_QUEUED, example, problems
from ..paths import MAX_PATH_CHARS, NO_NUL, resolve_under_root
from ..schemas import JobList, JobPublic
from ..uploads import PART_PREFIX, owned_name, save_upload

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
FINAL: tuple[JobState, ...] = ("done", "failed", "cancelled")


@router.post("", status_code=202, response_model=JobPublic,
             responses={**example(202, JOB_QUEUED), **problems(400, 401, 403, 404, 408, 413, 415, 422, 429, 503, 507)})
def create_job(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    runner: RunnerDep,
    options: OptionsDep,
    file: Optional[UploadFile] = File(None, description="an image or video to score (send this or `path`)"),
    files: Optional[UploadFile] = File(None, description="the same as `file`: either name is taken (one file a job)"),
    path: Optional[str] = Form(None, min_length=1, max_length=MAX_PATH_CHARS, pattern=NO_NUL,
                               description="or a server-side file under the allowed root (send this or `file`)"),
    callback_url: Optional[str] = Form(None, min_length=1, max_length=2048, description="POST the job here when it ends, signed (X-Unmask-Signature); "
                                       "the host must be in the server's callback allow-list"),
):
    """Queue one image or video; answers 202 at once with the job's id and URL.

    The file is checked first (type, limits, that it decodes), as the
    synchronous endpoints check it. Poll ``GET /v1/jobs/{id}`` for state and
    progress; when done, its ``result`` is the same record as the
    synchronous endpoints return.
    """
    check_model_usable(request)
    if file is not None and files is not None:
        raise Problem(422, "Invalid request", "one file a job: send it as `file` or `files`, not both", "invalid_request")
    file = file or files
    if (file is None) == (path is None):
        raise Problem(422, "Invalid request", "send exactly one of: a `file` upload or a server-side `path`", "invalid_request")
    if callback_url is not None:
        refusal = request.app.state.callback_policy.refusal(callback_url)
        if refusal:
            raise Problem(422, "Invalid request", f"callback_url: {refusal}", "callback_not_allowed")
    _check_capacity(store, settings.max_queue, 1)  # before copying and decoding the upload; queuing checks again, atomically
    check_slots = request.app.state.check_slots
    if file is not None:
        uploads = settings.uploads_dir
        uploads.mkdir(parents=True, exist_ok=True)
        job_file = uuid.uuid4().hex
        part = uploads / (owned_name(PART_PREFIX) + job_file)  # removed at the next start if this process dies
        dest = uploads / job_file
        try:
            name, _ = save_upload(file, part, settings.max_upload_bytes)
            admit([(part, name)], settings, options, max_seconds=settings.max_video_seconds, slots=check_slots)
            os.replace(part, dest)
            job = _queue(store, settings.max_queue, "upload", str(dest), name, options, callback_url)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        finally:
            part.unlink(missing_ok=True)
    else:
        resolved = resolve_under_root(path, settings.allowed_root)
        if resolved.is_dir():
            raise Problem(422, "Invalid request", f"{path}: a folder; use POST /v1/batches for folders", "invalid_request")
        if not resolved.is_file():
            raise Problem(422, "Invalid request", f"{path}: not a regular file (a pipe, device or socket)", "invalid_request")
        admit([(resolved, path)], settings, options, max_seconds=settings.max_video_seconds, slots=check_slots)
        job = _queue(store, settings.max_queue, "path", str(resolved), printable(path), options, callback_url)
    if runner is not None:  # this process scores jobs: wake it now (workers elsewhere find it at their next poll)
        runner.notify()
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobPublic.of(job)


@router.get("", response_model=JobList, responses=problems(401, 422))
def list_jobs(
    store: StoreDep,
    state: Optional[JobState] = Query(None, description="only jobs in this state"),
    limit: int = Query(50, ge=1, le=500, description="jobs per page"),
    cursor: Optional[str] = Query(None, pattern=r"^[0-9]{1,18}$", description="the `next_cursor` of the previous page"),
):
    """Jobs, newest first, a page at a time (without their results: get a job for its record)."""
    jobs = store.list_jobs(state, limit + 1, _decode_cursor(cursor))
    more = len(jobs) > limit
    page = jobs[:limit]
    next_cursor = str(page[-1].seq) if more else None
    return JobList(jobs=[JobPublic.of(j, with_result=False) for j in page], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic, responses={**example(200, JOB_DONE), **problems(401, 404)})
def get_job(job_id: str, store: StoreDep):
    """State (queued, running, done, failed, cancelled), progress, the webhook's delivery and, when done, the record."""
    return JobPublic.of(_job(store, job_id))


@router.post("/{job_id}/cancel", status_code=202, response_model=JobPublic, responses=problems(401, 404, 409))
def cancel_job(job_id: str, store: StoreDep, request: Request):
    """Cancel: a queued job at once, a running one at its next frame; it stays readable, cancelled. 409 once it has ended."""
    job = _job(store, job_id)
    if job.state in FINAL:
        raise Problem(409, "Conflict", f"job {job_id} has already ended ({job.state})", "job_ended")
    job = store.cancel(job_id)
    assert job is not None
    if request.app.state.callbacks is not None:
        request.app.state.callbacks.notify()
    return JobPublic.of(job)


@router.delete("/{job_id}", status_code=204, response_class=Response, responses={204: {"description": "Deleted"}, **problems(401, 404)})
def delete_job(job_id: str, store: StoreDep) -> Response:
    """Delete: the job is forgotten at once (a running one stops at its next frame) with its record, its upload and any
    webhook not yet sent; reading it is then 404. Cancel instead to keep its record."""
    job = store.delete(job_id)
    if job is None:
        raise Problem(404, "Not found", f"no job {job_id[:64]}", "not_found")
    if job.source == "upload" and job.path:
        Path(job.path).unlink(missing_ok=True)  # a worker scoring it keeps its open file until it stops
    return Response(status_code=204)


def _job(store, job_id: str):
    job = store.get(job_id)
    if job is None:
        raise Problem(404, "Not found", f"no job {job_id[:64]}", "not_found")
    return job


def _check_capacity(store, max_queue: int, adding: int) -> None:
    queued = store.count("queued")
    if queued + adding > max_queue:
        raise queue_full(queued, max_queue)


def queue_full(queued: int, max_queue: int) -> Problem:
    return Problem(429, "Too many requests", f"{queued} jobs are queued, the limit is {max_queue}; retry later",
                   "queue-full", headers={"Retry-After": "30"})


def _queue(store, max_queue: int, source: str, path: str, name: str, options: dict, callback_url: str | None):
    try:
        return store.add(source, path, name, options=options, callback_url=callback_url, max_queued=max_queue)
    except QueueFull as exc:
        raise queue_full(exc.queued, exc.limit) from exc


def _decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor continues after (the last listed job's ``seq``)."""
    return int(cursor) if cursor is not None else None
