"""Response shapes of jobs and batches (the scoring record is model.results.MediaResult)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field

from ...model.results import MediaResult
from ..jobs.store import Job, JobState
from .deps import Aggregation


class Progress(BaseModel):
    done: int
    total: int


class JobPublic(BaseModel):
    id: str
    state: JobState
    name: str
    batch_id: Optional[str] = None
    created: float
    started: Optional[float] = None
    finished: Optional[float] = None
    attempts: int
    progress: Progress
    cancel_requested: bool
    error: Optional[str] = None
    options: dict = Field(default_factory=dict, description="the per-request options the job was queued with")
    result: Optional[MediaResult] = None
    url: str

    @classmethod
    def of(cls, job: Job) -> "JobPublic":
        return cls(
            id=job.id, state=job.state, name=job.name, batch_id=job.batch_id, created=job.created,
            started=job.started, finished=job.finished, attempts=job.attempts,
            progress=Progress(done=job.progress_done, total=job.progress_total),
            cancel_requested=job.cancel_requested, error=job.error, options=job.options, result=job.result, url=f"/v1/jobs/{job.id}",
        )


class BatchRequest(BaseModel):
    paths: list[str]
    frames: Optional[int] = Field(None, ge=1, description="frames sampled evenly from each video (default: the server's)")
    aggregation: Optional[Aggregation] = Field(None, description="a track's score from its faces (default: the server's)")
    explain: bool = Field(False, description="add Grad-CAM heat maps for the highest-scoring faces")


class BatchJob(BaseModel):
    id: str
    name: str
    state: JobState


class BatchPublic(BaseModel):
    id: str
    state: Literal["running", "done"]
    files: int
    counts: dict[str, int]
    jobs: list[BatchJob]
    results_url: str
