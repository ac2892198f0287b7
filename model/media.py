"""Media reading: sniff the type from content, decode images, read videos forward.

Videos are never seeked (32 seeks in a 1080p clip cost ~12 s): frames are
read in order with ``grab()`` and only the kept ones are ``retrieve()``d, so
memory is bounded by the frames kept, not the video's length.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CorruptMediaError, MediaLimitError, UnsupportedMediaError
from .results import MediaKind

log = logging.getLogger(__name__)

IMAGE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp", "tiff": "image/tiff"}
VIDEO_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "mkv": "video/x-matroska", "avi": "video/x-msvideo"}
SNIFF_BYTES = 64
MEDIA_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".mp4", ".mov", ".webm", ".mkv", ".avi"}


def media_files(folder: Path) -> list[Path]:
    """Media files (by suffix, hidden ones skipped) under ``folder``, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES and not p.name.startswith("."))


def sniff(head: bytes) -> tuple[MediaKind, str]:
    """(kind, format) from a file's first bytes; raises for anything else."""
    if not head:
        raise CorruptMediaError("the file is empty")
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "webp"
    if head.startswith(b"BM"):
        return "image", "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image", "tiff"
    if head[4:8] == b"ftyp":
        return "video", "mov" if head[8:10] == b"qt" else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "webm" if b"webm" in head else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "avi"
    raise UnsupportedMediaError(
        "not a supported image (JPEG, PNG, WebP, BMP, TIFF) or video (MP4, MOV, WebM, MKV, AVI); "
        "the type is read from the file's content, not its name"
    )


def sniff_file(path: str | Path) -> tuple[MediaKind, str]:
    with open(path, "rb") as fh:
        return sniff(fh.read(SNIFF_BYTES))


@dataclass
class Frame:
    """One decoded RGB frame and where it sits in the file."""

    index: int
    time: float
    image: np.ndarray


def check_image(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) from the header alone; raises for a bomb or an unreadable header."""
    with open(path, "rb") as fh:
        with _open_image(fh, max_pixels) as img:
            return img.size


def _open_image(fp, max_pixels: int | None) -> Image.Image:
    """Open lazily (header only) and refuse more than ``max_pixels`` (None: no limit of ours) before decoding."""
    limit = max_pixels if max_pixels is not None else 2 * (Image.MAX_IMAGE_PIXELS or 0)
    try:
        with warnings.catch_warnings():
            # We check the pixel count ourselves, right below, against our own limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except Image.DecompressionBombError as exc:  # Pillow's own guard fired first (past ~179 M pixels)
        raise MediaLimitError(f"image has over {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels, over the limit of {limit}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptMediaError(f"the image cannot be decoded: {exc}") from exc
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise MediaLimitError(f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}")
    return img


def decode_image(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """Bytes -> RGB uint8 (H, W, 3), EXIF orientation applied.

    The pixel count is checked from the header before decoding, so a
    decompression bomb is refused without allocating it. No extra copies:
    the rotation is done in place and an RGB image is not converted, so the
    peak is the decoded image plus the array (6 bytes a pixel for RGB;
    bench/memory.py).
    """
    with _open_image(io.BytesIO(data), max_pixels) as img:
        try:
            img.load()
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            ImageOps.exif_transpose(rgb, in_place=True)
            return np.asarray(rgb)
        except (OSError, SyntaxError, ValueError) as exc:
            raise CorruptMediaError(f"the image cannot be decoded: {exc}") from exc


def read_image(path: str | Path, max_pixels: int | None = None) -> Frame:
    return Frame(index=0, time=0.0, image=decode_image(Path(path).read_bytes(), max_pixels))


@dataclass
class VideoInfo:
    frame_count: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def probe_video(path: str | Path) -> VideoInfo:
    cap = _open(path)
    try:
        return _info(cap)
    finally:
        cap.release()


def check_video_limits(info: VideoInfo, max_pixels: int | None, max_duration: float | None) -> None:
    """Raise MediaLimitError for frames over ``max_pixels`` or a video over ``max_duration`` seconds (None: no limit)."""
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise MediaLimitError(f"video frames are {info.width}x{info.height}, over the limit of {max_pixels} pixels")
    if max_duration is not None and info.duration > max_duration:
        raise MediaLimitError(f"video lasts {info.duration:.1f} s, over the limit of {max_duration:g} s")


def sample_indices(frame_count: int, fps: float, frames: int | None = None, sample_fps: float | None = None) -> list[int]:
    """Frame indices to keep: ``frames`` evenly over the video (None: every frame), or ``sample_fps`` per second."""
    if frame_count <= 0:
        return []
    if sample_fps:
        step = max(fps / sample_fps, 1.0) if fps > 0 else 1.0
        count = max(1, int(frame_count / step))
    else:
        count = min(frames or frame_count, frame_count)
        step = frame_count / count
    # Centre each pick in its slice so a short clip is not biased to its start.
    return sorted({min(frame_count - 1, int(step * i + step / 2)) for i in range(count)})


def read_video(
    path: str | Path,
    frames: int | None = None,
    sample_fps: float | None = None,
    max_duration: float | None = None,
    max_pixels: int | None = None,
) -> Iterator[Frame]:
    """Yield the kept frames in order, reading forward only.

    Raises CorruptMediaError when nothing can be decoded, MediaLimitError
    when the video is longer or larger than allowed.
    """
    cap = _open(path)
    try:
        info = _info(cap)
        check_video_limits(info, max_pixels, max_duration)
        keep = sample_indices(info.frame_count, info.fps, frames, sample_fps)
        fps = info.fps if info.fps > 0 and math.isfinite(info.fps) else 25.0
        yielded = 0
        wanted = iter(keep)
        target = next(wanted, None)
        index = 0
        while target is not None:
            if not cap.grab():
                break  # truncated file or a frame count that overstated
            if index == target:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    yielded += 1
                    yield Frame(index=index, time=round(index / fps, 3), image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                target = next(wanted, None)
            index += 1
        if yielded == 0:
            raise CorruptMediaError("no frame of the video could be decoded (empty, truncated or corrupt)")
        if yielded < len(keep):
            log.warning("%s: decoded %d of %d sampled frames (file ends early)", path, yielded, len(keep))
    finally:
        cap.release()


def _open(path: str | Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise CorruptMediaError("the video cannot be opened (corrupt or unsupported codec)")
    return cap


def _info(cap: cv2.VideoCapture) -> VideoInfo:
    info = VideoInfo(
        frame_count=int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
        fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
    )
    if info.frame_count <= 0:
        raise CorruptMediaError("the video reports no frames (empty, truncated or corrupt)")
    return info


def check_decodes(path: str | Path, kind: MediaKind, max_pixels: int | None = None) -> None:
    """Raise CorruptMediaError unless the file decodes: an image in full (native mode, no copy), a video's first frame.

    The service runs this on every file before scoring any, so a truncated
    file is refused the same way on every route, before work is spent.
    """
    if kind == "image":
        with open(path, "rb") as fh, _open_image(fh, max_pixels) as img:
            try:
                img.load()
            except (OSError, SyntaxError, ValueError) as exc:
                raise CorruptMediaError(f"the image cannot be decoded: {exc}") from exc
        return
    cap = _open(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise CorruptMediaError("no frame of the video could be decoded (empty, truncated or corrupt)")
    finally:
        cap.release()


def read_frames_at(path: str | Path, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB frame) for the given frame indices, in order, reading forward only.

    For redrawing a record's sampled frames (``FrameResult.index``); stops
    quietly where the file ends early.
    """
    cap = _open(path)
    try:
        index = 0
        for target in sorted(set(indices)):
            while index < target and cap.grab():
                index += 1
            ok, bgr = cap.read()
            if index < target or not ok or bgr is None:
                return
            index += 1
            yield target, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
