"""The checks a file passes before any scoring, the same on every route: ``admit`` is the one door.

Type (sniffed) and header limits (pixels, duration) first, for every file
of a request, and the pixels they would decode to summed against the
request's budget; then that each decodes (an image in full in its native
mode, a video's first frame): a truncated JPEG is 422 on ``/v1/images``
and on ``/v1/jobs`` alike, and a request with one bad file is refused
before its good files are scored. Decoding here holds one file at a time
per request; job submissions decode under ``check_slots`` (two at once),
so concurrent uploads cannot multiply memory.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...model.errors import MediaError
from ...model.media import OpenVideo, check_decodes, check_image, check_video_limits, pixels_text, sample_indices, sniff_file
from ...model.results import MediaKind
from ..core.config import Settings
from ..core.problems import Problem, media_problem


@dataclass
class Checked:
    """A file that passed: what scoring will decode (``pixels``: an image's, or frame size x frames sampled)."""

    name: str
    path: Path
    kind: MediaKind
    pixels: int
    video: OpenVideo | None = None  # a video, opened once: checked here, read by the predictor (``source``)

    @property
    def source(self) -> Path | OpenVideo:
        """What the predictor scores: the open video, or the image's path."""
        return self.video or self.path

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def admit(files: Sequence[tuple[Path, str]], settings: Settings, options: dict, *, max_seconds: float, pointer: str = "",
          budget: int | None = None, decode: bool = True, slots: AbstractContextManager | None = None,
          keep_open: bool = False) -> list[Checked]:
    """The one admission every route calls: (path, name) pairs in, checked files out, or the Problem (413, 415, 422).

    Every file's type and header first, then the pixels they decode to
    against ``budget`` (a synchronous request's), then (``decode``) that each
    decodes, one at a time under ``slots`` (the job routes' bound on
    concurrent decodes). A bad last file is refused before any work on the
    others. With ``keep_open`` each video stays open for the predictor to
    read (the caller closes them: ``Checked.close``), so it is opened once.
    """
    checked: list[Checked] = []
    try:
        for path, name in files:
            checked.append(check_file(path, name, settings, options, max_seconds, pointer))
        if budget is not None:
            check_request_pixels(checked, budget, pointer)
        if decode:
            for file in checked:
                with slots or nullcontext():
                    check_decodable(file, settings.max_pixels)
    except BaseException:
        keep_open = False
        raise
    finally:
        if not keep_open:
            for file in checked:
                file.close()
    return checked


def check_file(path: Path, name: str, settings: Settings, options: dict, max_seconds: float, pointer: str = "") -> Checked:
    """Raise the Problem (413, 415, 422) a file's type or header would get, or describe it (nothing is decoded).

    Args:
        path: the file on disk.
        name: what the problem's detail calls it.
        settings: the limits.
        options: the request's scoring options (frames sampled count towards pixels).
        max_seconds: the longest video this route takes.
        pointer: a hint added to a 413 (synchronous routes point to /v1/jobs).
    """
    try:
        kind, _ = sniff_file(path)
        if kind == "image":
            width, height = check_image(path, settings.max_pixels)
            return Checked(name, path, kind, width * height)
        video = OpenVideo(path)
    except MediaError as exc:
        raise media_problem(exc, name) from exc
    try:
        info = video.info
        check_video_limits(info, settings.max_pixels, None)
        config = settings.scoring().with_options(**options)
        sampled = len(sample_indices(info.frame_count, info.fps, config.frames, config.sample_fps))
        if info.duration > max_seconds:
            raise Problem(413, "Limit exceeded", f"{name}: video lasts {info.duration:.1f} s, over the limit of "
                          f"{max_seconds:g} s{pointer}", "limit_exceeded")
    except BaseException as exc:
        video.close()
        if isinstance(exc, MediaError):
            raise media_problem(exc, name) from exc
        raise
    return Checked(name, path, kind, info.width * info.height * sampled, video)


def check_decodable(checked: Checked, max_pixels: int) -> None:
    """422 (or 413) unless the file decodes: an image in full, a video's first frame."""
    try:
        if checked.video is not None:
            checked.video.check_decodes()
        else:
            check_decodes(checked.path, checked.kind, max_pixels)
    except MediaError as exc:
        raise media_problem(exc, checked.name) from exc


def check_request_pixels(checked: list[Checked], limit: int, pointer: str = "") -> None:
    """413 when a request's files together would decode more than ``limit`` pixels."""
    total = sum(c.pixels for c in checked)
    if total > limit:
        raise Problem(413, "Limit exceeded", f"the files of this request decode to {pixels_text(total)}, over the limit of "
                      f"{pixels_text(limit)} per request{pointer}", "limit_exceeded")
