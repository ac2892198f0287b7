"""Synchronous scoring of uploaded images and videos.

Every file of a request is checked (type, header, pixel and duration
limits, that it decodes; ``api.checks``) before any is scored, so a bad
last file fails the request at once, and the pixels they decode to are
summed against ``sync_max_request_pixels``; files are then decoded and
scored one at a time, so memory holds one decoded file per request.
"""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import JSONResponse

from ....model.errors import MediaError
from ....model.results import MediaKind
from ...core import prometheus
from ...core.problems import Problem, media_problem
from ..checks import admit
from ..deps import OptionsDep, PredictorDep, SettingsDep, sync_slot
from ..examples import IMAGE_RECORD, VIDEO_RECORD, example, problems
from ..schemas import Records
from ..uploads import saved_uploads

router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=[Depends(sync_slot)])
TO_JOBS = "; send larger files to POST /v1/jobs"
SYNC_PROBLEMS = problems(400, 401, 408, 413, 415, 422, 503, 507)


@router.post("/images", response_model=Records, responses={**example(200, {"results": [IMAGE_RECORD]}), **SYNC_PROBLEMS})
def score_images(files: Optional[list[UploadFile]] = File(None, description="one or more images"),
                 file: Optional[list[UploadFile]] = File(None, description="the same as `files`: either name is taken"), *,
                 options: OptionsDep, predictor: PredictorDep, settings: SettingsDep):
    """Score uploaded images: faces with boxes, landmarks and P(fake), and one verdict per file.

    Answers ``{"results": [...]}``: a record per file, in upload order. A
    file with no face gets status "no_face" and no score.
    """
    return _score(_uploads(files, file), "image", options, predictor, settings)


@router.post("/videos", response_model=Records, responses={**example(200, {"results": [VIDEO_RECORD]}), **SYNC_PROBLEMS})
def score_videos(files: Optional[list[UploadFile]] = File(None, description="one or more videos"),
                 file: Optional[list[UploadFile]] = File(None, description="the same as `files`: either name is taken"), *,
                 options: OptionsDep, predictor: PredictorDep, settings: SettingsDep):
    """Score uploaded videos (mp4, mov, webm, mkv, avi): sampled frames, face tracks, one verdict per file.

    Synchronous: meant for short clips. Answers ``{"results": [...]}``, a
    record per file in upload order; each lists every sampled frame with its
    time in seconds, the faces in it, and a score per track.
    """
    return _score(_uploads(files, file), "video", options, predictor, settings)


def _uploads(files: Optional[list[UploadFile]], file: Optional[list[UploadFile]]) -> list[UploadFile]:
    """The uploads sent under either field name, in order (``files`` first)."""
    uploads = (files or []) + (file or [])
    if not uploads:
        raise Problem(422, "Invalid request", "body.files: send one or more files as `files` (or `file`)", "invalid_request")
    return uploads


def _score(files: list[UploadFile], wanted: MediaKind, options: dict, predictor, settings):
    _check_count(files, settings.max_files)
    with saved_uploads(files, settings.sync_max_upload_bytes, settings.tmp_dir, TO_JOBS) as saved:
        for name, _, kind in saved:
            _expect(kind, wanted, name)
        checked = admit([(path, name) for name, path, _ in saved], settings, options, max_seconds=settings.sync_max_video_seconds,
                        pointer=TO_JOBS, budget=settings.sync_max_request_pixels, keep_open=True)
        results = []
        try:
            for file in checked:  # a video is read from the handle its checks opened: one open per file
                try:
                    results.append(predictor.predict(file.source, file.name, **options))
                except MediaError as exc:
                    raise media_problem(exc, file.name) from exc
        finally:
            for file in checked:
                file.close()
    for result in results:
        prometheus.record_result(result)
    if settings.legacy_single_record:  # the shape before {"results": [...]}, for one release (docs/api.md)
        data = [r.to_dict() for r in results]
        return JSONResponse(data[0] if len(data) == 1 else data)
    return Records(results=results)


def _expect(kind: MediaKind, wanted: MediaKind, name: str) -> None:
    if kind != wanted:
        other = "/v1/videos" if kind == "video" else "/v1/images"
        article = "an" if wanted == "image" else "a"
        detail = f"{name}: {'an' if kind == 'image' else 'a'} {kind}, not {article} {wanted}; send it to {other}"
        raise Problem(415, "Unsupported media type", detail, "unsupported_media")


def _check_count(files: list[UploadFile], limit: int) -> None:
    if len(files) > limit:
        raise Problem(413, "Limit exceeded", f"{len(files)} files in one request, over the limit of {limit}", "limit_exceeded")
