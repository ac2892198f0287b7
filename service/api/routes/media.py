"""Synchronous scoring of uploaded images and videos."""

from __future__ import annotations

import time
from typing import Union

from fastapi import APIRouter, Depends, File, UploadFile
from unmask.model.errors import MediaError
from unmask.model.media import Frame, MediaKind, decode_image, probe_video
from unmask.model.results import MediaResult

from ... import metrics
from ...problems import Problem, media_problem
from ...uploads import saved_uploads
from ..deps import PredictorDep, SettingsDep, sync_slot
from ..examples import ERROR_RESPONSES, IMAGE_EXAMPLE

router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=[Depends(sync_slot)])
TO_JOBS = "; send larger files to POST /v1/jobs"
Records = Union[MediaResult, list[MediaResult]]


@router.post("/images", response_model=Records, responses={200: IMAGE_EXAMPLE, **ERROR_RESPONSES})
def score_images(files: list[UploadFile] = File(..., description="one or more images"), *, predictor: PredictorDep, settings: SettingsDep):
    """Score uploaded images: faces with boxes, landmarks and P(fake), and one verdict per file.

    One file gives one record, several give a list in upload order. A file
    with no face gets status "no_face" and no score.
    """
    _check_count(files, settings.max_files)
    with saved_uploads(files, settings.sync_max_upload_bytes, settings.tmp_dir, TO_JOBS) as saved:
        decoded = []
        for name, path, kind in saved:
            _expect(kind, "image", name)
            started = time.perf_counter()
            try:
                image = decode_image(path.read_bytes(), settings.max_pixels)
            except MediaError as exc:
                raise media_problem(exc, name) from exc
            decoded.append((name, image, (time.perf_counter() - started) * 1000))
    results = [predictor.score_frames([Frame(0, 0.0, img)], name, "image", decode_ms=ms) for name, img, ms in decoded]
    return _answer(results)


@router.post("/videos", response_model=Records, responses=ERROR_RESPONSES)
def score_videos(files: list[UploadFile] = File(..., description="one or more videos"), *, predictor: PredictorDep, settings: SettingsDep):
    """Score uploaded videos (mp4, mov, webm, mkv, avi): sampled frames, face tracks, one verdict.

    Synchronous: meant for short clips. Each record lists every sampled frame
    with its time in seconds, the faces in it, and a score per track.
    """
    _check_count(files, settings.max_files)
    results = []
    with saved_uploads(files, settings.sync_max_upload_bytes, settings.tmp_dir, TO_JOBS) as saved:
        for name, path, kind in saved:
            _expect(kind, "video", name)
            try:
                info = probe_video(path)
                if info.duration > settings.sync_max_video_seconds:
                    detail = f"{name}: video lasts {info.duration:.1f} s, over the limit of {settings.sync_max_video_seconds:g} s{TO_JOBS}"
                    raise Problem(413, "Limit exceeded", detail, "limit_exceeded")
                results.append(predictor.score_media(path, name))
            except MediaError as exc:
                raise media_problem(exc, name) from exc
    return _answer(results)


def _answer(results: list[MediaResult]) -> Records:
    for result in results:
        metrics.record_result(result)
    return results[0] if len(results) == 1 else results


def _expect(kind: MediaKind, wanted: MediaKind, name: str) -> None:
    if kind != wanted:
        other = "/v1/videos" if kind == "video" else "/v1/images"
        article = "an" if wanted == "image" else "a"
        detail = f"{name}: a {kind}, not {article} {wanted}; send it to {other}"
        raise Problem(415, "Unsupported media type", detail, "unsupported_media")


def _check_count(files: list[UploadFile], limit: int) -> None:
    if len(files) > limit:
        raise Problem(413, "Limit exceeded", f"{len(files)} files in one request, over the limit of {limit}", "limit_exceeded")
