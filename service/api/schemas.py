"""Response shapes of jobs, batches and the model (the scoring record is model.results.MediaResult)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from ...model.options import ScoringOptions
from ...model.results import MediaResult
from ..jobs.store import Job, JobState
from .paths import MAX_PATH_CHARS, NO_NUL


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch is not None else None


class Progress(BaseModel):
    done: int = Field(description="frames scored so far")
    total: int = Field(description="frames to score (0 until the file is opened)")


class CallbackPublic(BaseModel):
    """Delivery of the job's webhook."""

    url: str = Field(description="where the job is POSTed when it ends")
    state: Literal["pending", "delivered", "failed"] = Field(
        description="pending (waiting for the job to end, or for a retry), delivered (a 2xx answer), failed (tries exhausted)"
    )
    attempts: int = Field(description="delivery tries so far")
    last_status: Optional[int] = Field(None, description="the receiver's HTTP status on the last try")
    last_error: Optional[str] = Field(None, description="why the last try failed")


class JobPublic(BaseModel):
    id: str = Field(description="the job's id")
    state: JobState = Field(description="queued, running, done, failed or cancelled")
    name: str = Field(description="the upload's file name or the server-side path, control and invisible format characters "
                      "escaped (\\xNN, \\uNNNN)")
    batch_id: Optional[str] = Field(None, description="the batch this job belongs to")
    created: datetime = Field(description="when the job was queued (ISO 8601, UTC)")
    started: Optional[datetime] = Field(None, description="when its last start began (ISO 8601, UTC)")
    finished: Optional[datetime] = Field(None, description="when it ended (ISO 8601, UTC)")
    attempts: int = Field(description="starts so far; a start interrupted by a crash counts, a clean shut-down does not")
    progress: Progress = Field(description="frames done / total of the current start")
    cancel_requested: bool = Field(description="a cancel was asked while it ran; it stops at its next frame")
    error: Optional[str] = Field(None, description="why the job failed (timeout, interrupted too often); a file that cannot "
                                 "be scored is a done job whose result has status error")
    options: dict = Field(default_factory=dict, description="the per-request options the job was queued with")
    callback: Optional[CallbackPublic] = Field(None, description="the webhook's delivery, when a callback_url was given")
    result: Optional[MediaResult] = Field(None, description="the record, once done (left out of listings)")
    result_status: Optional[Literal["ok", "no_face", "error"]] = Field(
        None, description="the record's status once done (also in listings): ok, no_face or error")
    label: Optional[Literal["fake", "real"]] = Field(None, description="the record's verdict once done and scored (also in listings)")
    confidence: Optional[Literal["high", "low"]] = Field(None, description="the record's confidence once done and scored "
                                                         "(also in listings): low means show the verdict as uncertain")
    score: Optional[float] = Field(None, description="the record's P(fake) once done and scored (also in listings)")
    url: str = Field(description="this job's URL")

    @classmethod
    def of(cls, job: Job, with_result: bool = True) -> "JobPublic":
        callback = None
        if job.callback_url:
            callback = CallbackPublic(url=job.callback_url, state=job.callback_state or "pending", attempts=job.callback_attempts,
                                      last_status=job.callback_status, last_error=job.callback_error)
        return cls(
            id=job.id, state=job.state, name=job.name, batch_id=job.batch_id, created=_time(job.created),
            started=_time(job.started), finished=_time(job.finished), attempts=job.attempts,
            progress=Progress(done=job.progress_done, total=job.progress_total), cancel_requested=job.cancel_requested,
            error=job.error, options=job.options, callback=callback, result=job.result if with_result else None,
            result_status=(job.result or {}).get("status"), label=(job.result or {}).get("label"),
            confidence=(job.result or {}).get("confidence"), score=(job.result or {}).get("score"),
            url=f"/v1/jobs/{job.id}",
        )


class Records(BaseModel):
    """The answer of the synchronous scoring routes."""

    results: list[MediaResult] = Field(description="a record per uploaded file, in upload order")


class ModelInfo(BaseModel):
    """The loaded checkpoint, for people: what scores the files and under which terms its weights may be used."""

    name: str = Field(description="the checkpoint's name")
    version: str = Field(description="the checkpoint's version")
    architecture: str = Field(description="the network architecture (lite0, efficientnet_b4, ...)")
    threshold: float = Field(description="a file scoring at or above it is called fake")
    licence: Optional[str] = Field(None, description="the weights' licence as the model card states it (its Licence section's first "
                                   "paragraph); null when the checkpoint has no card or the card no such section")
    card: Optional[str] = Field(None, description="the URL of the model card (Markdown); null when the checkpoint has none")


class JobList(BaseModel):
    jobs: list[JobPublic] = Field(description="newest first, without their records (each done job's result_status, label, "
                                  "confidence and score are there)")
    next_cursor: Optional[str] = Field(None, description="pass as `cursor` for the next page; null on the last page")


class BatchRequest(ScoringOptions):
    """Server-side paths and the scoring options (``model.options``) for every file."""

    model_config = ConfigDict(strict=True, extra="ignore")  # JSON as the schema types it: no "5" for 5, no 1 for true

    paths: list[Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS, pattern=NO_NUL)]] = Field(min_length=1, description="server-side files or folders (searched recursively), relative to the allowed root or absolute under it",
                             examples=[["incoming/2024-05-01", "clips/interview.mp4"]])


class BatchJob(BaseModel):
    id: str = Field(description="the file's job id")
    name: str = Field(description="the file's path relative to the allowed root, control and invisible format characters escaped")
    state: JobState = Field(description="the job's state")


class BatchPublic(BaseModel):
    id: str = Field(description="the batch's id")
    state: Literal["running", "done"] = Field(description="done once every job has ended")
    files: int = Field(description="how many files (one job each)")
    counts: dict[str, int] = Field(description="jobs by state")
    jobs: list[BatchJob] = Field(description="each file's job, in path order")
    results_url: str = Field(description="the finished records")
