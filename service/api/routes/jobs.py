"""Asynchronous jobs: submit a file (upload or server-side path), poll, cancel."""

from __future__ import annotations

import uuid
from typing import Optional

from fastapi import APIRouter, File, Form, Response, UploadFile

from ....model.errors import MediaError
from ....model.media import check_image, check_video_limits, probe_video, sniff_file
from ...core.problems import Problem, media_problem
from ..deps import OptionsDep, RunnerDep, SettingsDep, StoreDep
from ..examples import ERROR_RESPONSES
from ..paths import resolve_under_root
from ..schemas import JobPublic
from ..uploads import save_upload

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("", status_code=202, response_model=JobPublic, responses=ERROR_RESPONSES)
def submit_job(
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    runner: RunnerDep,
    options: OptionsDep,
    file: Optional[UploadFile] = File(None, description="an image or video to score"),
    path: Optional[str] = Form(None, description="or a server-side file under the allowed root"),
):
    """Queue one image or video; answers 202 at once with the job's id and URL.

    Poll ``GET /v1/jobs/{id}`` for state and progress; when done, its
    ``result`` is the same record as the synchronous endpoints return.
    """
    if (file is None) == (path is None):
        raise Problem(422, "Invalid request", "send exactly one of: a `file` upload or a server-side `path`", "invalid-request")
    _check_capacity(store, settings.max_queue, 1)
    if file is not None:
        uploads = settings.data_dir / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        dest = uploads / uuid.uuid4().hex
        try:
            name, _ = save_upload(file, dest, settings.max_upload_bytes)
            _check_media(dest, name, settings)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        job = store.add("upload", str(dest), name, options=options)
    else:
        resolved = resolve_under_root(path, settings.allowed_root)
        if not resolved.is_file():
            raise Problem(422, "Invalid request", f"{path}: a folder; use POST /v1/batches for folders", "invalid-request")
        _check_media(resolved, path, settings)
        job = store.add("path", str(resolved), path, options=options)
    runner.notify()
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobPublic.of(job)


@router.get("/{job_id}", response_model=JobPublic, responses={404: {"description": "No such job (problem+json)"}})
def get_job(job_id: str, store: StoreDep):
    """State (queued, running, done, failed, cancelled), progress and, when done, the record."""
    return JobPublic.of(_job(store, job_id))


@router.delete("/{job_id}", status_code=202, response_model=JobPublic)
def cancel_job(job_id: str, store: StoreDep):
    """Cancel: a queued job at once, a running one at its next frame. 409 once it has ended."""
    job = _job(store, job_id)
    if job.state in ("done", "failed", "cancelled"):
        raise Problem(409, "Conflict", f"job {job_id} has already ended ({job.state})", "job-ended")
    job = store.cancel(job_id)
    assert job is not None
    return JobPublic.of(job)


def _job(store, job_id: str):
    job = store.get(job_id)
    if job is None:
        raise Problem(404, "Not found", f"no job {job_id}", "not-found")
    return job


def _check_capacity(store, max_queue: int, adding: int) -> None:
    queued = store.count("queued")
    if queued + adding > max_queue:
        raise Problem(429, "Too many requests", f"{queued} jobs are queued, the limit is {max_queue}; retry later",
                      "queue-full", headers={"Retry-After": "30"})


def _check_media(path, name: str, settings) -> None:
    """Refuse at submission what would fail for sure: wrong type, bombs, too long, unreadable."""
    try:
        kind, _ = sniff_file(path)
        if kind == "image":
            check_image(path, settings.max_pixels)
            return
        check_video_limits(probe_video(path), settings.max_pixels, settings.max_video_seconds)
    except MediaError as exc:
        raise media_problem(exc, name) from exc
