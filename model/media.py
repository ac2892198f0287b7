"""Media reading: sniff the type from content, decode images, read videos forward.

Videos are never seeked (32 seeks in a 1080p clip cost ~12 s): packets are
read in order with PyAV (FFmpeg, threaded decoding) and only the kept frames
are converted to RGB, so memory is bounded by the frames kept, not the
video's length. Frames that nothing refers to (about half of an H.264 clip's
B-frames) are not decoded at all unless they are kept: the decoder is told
to skip them packet by packet (``skip_frame``), which cut decoding by about a
third on the shared clips (``bench/decode_speed.py``, against OpenCV's
grab/retrieve).
"""

from __future__ import annotations

import heapq
import io
import itertools
import logging
import math
import os
import re
import stat
import tempfile
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence, Union

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError, features

from .errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedMediaError
from .results import MediaKind

log = logging.getLogger(__name__)

IMAGE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp", "tiff": "image/tiff"}
if features.check("avif"):  # Pillow's wheels carry libavif since 11.3
    IMAGE_TYPES["avif"] = "image/avif"
IMAGE_NAMES = ", ".join({"webp": "WebP"}.get(name, name.upper()) for name in IMAGE_TYPES)  # for messages
VIDEO_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "mkv": "video/x-matroska", "avi": "video/x-msvideo"}
SNIFF_BYTES = 64
DECODE_ERRORS = (OSError, SyntaxError, ValueError)  # what Pillow raises on a damaged image
# .heic/.heif are listed so that a folder's iPhone photos get a clear error each, not silence.
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi"}
MEDIA_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif"} | VIDEO_SUFFIXES
# ISO base media (ftyp) brands of still images: AVIF (AV1) and HEIF (HEVC, the iPhone camera's default).
AVIF_BRANDS = {b"avif", b"avis"}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}


def media_files(folder: Path) -> list[Path]:
    """Media files (by suffix, hidden ones skipped) under ``folder``, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES and not p.name.startswith("."))


def kind_from_name(name: str | Path) -> MediaKind:
    """Image or video by the name's suffix: a guess, for the record of a file that was never read."""
    return "video" if Path(name).suffix.lower() in VIDEO_SUFFIXES else "image"


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
        return _iso_media(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "webm" if b"webm" in head else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "avi"
    raise UnsupportedMediaError(
        f"not a supported image ({IMAGE_NAMES}) or video (MP4, MOV, WebM, MKV, AVI); "
        "the type is read from the file's content, not its name"
    )


def _iso_media(head: bytes) -> tuple[MediaKind, str]:
    """An ISO base media file (``ftyp`` box) by its brands: MP4/MOV video, AVIF image, or a refused HEIC."""
    size = int.from_bytes(head[:4], "big")
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}  # major, then compatible
    if brands & AVIF_BRANDS:
        if "avif" not in IMAGE_TYPES:
            raise UnsupportedMediaError("AVIF images need Pillow >= 11.3 with AVIF support; convert to JPEG or PNG")
        return "image", "avif"
    if brands & HEIF_BRANDS:
        # libheif's Python wheel bundles the GPL x265 encoder: not a dependency we ship.
        raise UnsupportedMediaError("HEIC/HEIF images (an iPhone camera's default) are not supported; "
                                    "convert to JPEG or PNG (iPhone: Settings > Camera > Formats > Most Compatible)")
    return "video", "mov" if head[8:10] == b"qt" else "mp4"


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for reading in binary; a pipe, device or socket raises UnsupportedMediaError without waiting.

    Opened without blocking and checked on the open handle, so a pipe swapped
    in for the file after a check is refused too (a plain ``open`` of a FIFO
    with no writer waits for ever). Non-blocking changes nothing for a
    regular file's reads.
    """
    fh = open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb")
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.close()
        raise UnsupportedMediaError("not a regular file (a pipe, device or socket)")
    return fh


def sniff_file(path: str | Path) -> tuple[MediaKind, str]:
    """(kind, format) from a file's first bytes; a pipe, device or socket is refused without waiting on it."""
    with open_regular(path) as fh:
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
        claimed = re.search(r"\((\d+) pixels\)", str(exc))  # the header's size, in the guard's message
        size = pixels_text(int(claimed.group(1))) if claimed else f"over {pixels_text(2 * (Image.MAX_IMAGE_PIXELS or 0))}"
        raise MediaLimitError(f"image is {size}, over the limit of {pixels_text(limit)}") from exc
    except UnidentifiedImageError as exc:  # its message names the server's file object: say what it means instead
        raise CorruptMediaError("the image cannot be decoded: its header is damaged, or it is not the format "
                                "its first bytes claim") from exc
    except DECODE_ERRORS as exc:
        raise _undecodable(exc) from exc
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise MediaLimitError(f"image is {width}x{height} ({pixels_text(width * height)}), over the limit of {pixels_text(max_pixels)}")
    return img


def _deep_grey_as_8bit(img: Image.Image) -> Image.Image | None:
    """16-bit (modes I;16, I) or float (mode F) greyscale -> 8-bit "L"; None for any other mode.

    ``convert("RGB")`` clips 16-bit greyscale to 255 and float greyscale
    (often 0-1) to 0 or 1: a white or black picture with no face. 16-bit
    keeps its top 8 bits; float is scaled to 0-255 (when it is 0-1),
    rounded, and clipped by Pillow without a float copy in numpy.
    """
    if img.mode.startswith("I"):
        deep = np.asarray(img)
        if deep.dtype.itemsize > 2:  # mode I (int32): keep the 16-bit range
            deep = np.clip(deep, 0, 65535)
        return Image.fromarray((deep >> 8).astype(np.uint8), "L")
    if img.mode == "F":
        top = img.getextrema()[1]
        if math.isnan(top):  # Pillow's extrema start from the first pixel, and a NaN there sticks
            top = float(np.nanmax(np.asarray(img), initial=0.0))
        scale = 255.0 if top <= 1.0 else 1.0
        return img.point(lambda v: v * scale + 0.5).convert("L")  # convert truncates: + 0.5 rounds
    return None


def decode_image(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """Bytes -> RGB uint8 (H, W, 3), EXIF orientation applied.

    The pixel count is checked from the header before decoding, so a
    decompression bomb is refused without allocating it. Few copies: the
    rotation is done in place, an RGB image is not converted, and a deep or
    float greyscale image becomes 8 bits before it is widened to RGB, so it
    peaks no higher than RGB (about 10 bytes a pixel for an RGB PNG: Pillow's
    4-byte pixels, the array, and the copy ``tobytes`` makes; 7 for 16-bit
    greyscale, 9 for float: ``python bench/decode_memory.py``).
    """
    with _open_image(io.BytesIO(data), max_pixels) as img:
        try:
            img.load()
            grey = _deep_grey_as_8bit(img)
            if grey is None:
                rgb = img if img.mode == "RGB" else img.convert("RGB")
                ImageOps.exif_transpose(rgb, in_place=True)
                return np.asarray(rgb)
            grey.info = dict(img.info)  # the EXIF orientation
            img.close()  # the deep pixels are no longer needed
            ImageOps.exif_transpose(grey, in_place=True)
            return np.repeat(np.asarray(grey)[..., None], 3, axis=2)  # RGB from 8 bits: Pillow's RGB costs 4 bytes a pixel
        except DECODE_ERRORS as exc:
            raise _undecodable(exc) from exc


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
    """Frame count, frame rate and size from the container's header."""
    with OpenVideo(path) as video:
        return video.info


class OpenVideo:
    """A video file opened once (one ``av.open``) for its header, a first-frame check and the forward read.

    The synchronous routes open each uploaded video once: ``admit`` reads
    its header and checks that it decodes, and the predictor reads it
    (``Predictor.predict`` takes an OpenVideo as its source). The check
    decodes the first frame with a decoder of its own and keeps the packets
    it read, which the read then replays: nothing is read twice and nothing
    seeks. ``read`` closes the file when it ends; ``close`` is safe to repeat.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.container = _open(path)
        try:
            self.stream = self.container.streams.video[0]
            self.info = _info(self.container)
        except BaseException:
            self.container.close()
            raise
        self._demux: Iterator | None = None  # the one demuxer, shared by the check and the read
        self._replay: list = []  # packets the check read, in file order

    def __enter__(self) -> "OpenVideo":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def check_decodes(self) -> None:
        """CorruptMediaError unless the first frame decodes."""
        try:
            decoder = _decoder_like(self.stream.codec_context)
        except (av.FFmpegError, ValueError, TypeError, AttributeError):  # a codec whose parameters cannot be copied
            decoder = None
        if decoder is not None and self._first_frame_decodes(decoder):
            return
        # Not decoded by a copied decoder: ask the file's own, from a second open, so no file is refused for the copy.
        with _open(self.path) as container:
            try:
                frame = next(container.decode(container.streams.video[0]), None)
            except av.FFmpegError:
                frame = None
        if frame is None:
            raise CorruptMediaError("no frame of the video could be decoded (empty, truncated or corrupt)")

    def _first_frame_decodes(self, decoder) -> bool:
        """Whether the copied decoder gives a frame within the first ``_CHECK_PACKETS`` packets.

        Bounded: the packets read are kept for the read to replay, so a copy that never decodes must not
        hold a whole file in memory; past the bound, the caller asks the file's own decoder instead.
        """
        self._demux = self._demux or self.container.demux(self.stream)
        try:
            for packet in itertools.islice(self._demux, _CHECK_PACKETS):
                self._replay.append(packet)
                if decoder.decode(packet if packet.size else None):  # size 0: the end marker; None flushes
                    return True
        except av.FFmpegError:
            return False
        return False

    def read(self, frames: int | None = None, sample_fps: float | None = None, max_duration: float | None = None,
             max_pixels: int | None = None) -> Iterator[Frame]:
        """Yield the kept frames in order, reading forward only; the file is closed when this ends.

        A frame's index counts the frames in presentation order from 0, as a
        player shows them. Raises CorruptMediaError when nothing can be
        decoded, MediaLimitError when the video is longer or larger than allowed.
        """
        try:
            check_video_limits(self.info, max_pixels, max_duration)
            keep = sample_indices(self.info.frame_count, self.info.fps, frames, sample_fps)
            fps = self.info.fps if self.info.fps > 0 and math.isfinite(self.info.fps) else 25.0
            self.stream.thread_type = "AUTO"  # frame and slice threads
            packets = itertools.chain(self._replay, self._demux or self.container.demux(self.stream))
            yielded = 0
            try:
                for index, frame in _decode_kept(self.container, self.stream, keep, packets):
                    yielded += 1
                    yield Frame(index=index, time=round(index / fps, 3), image=_upright_rgb(frame))
            except av.FFmpegError as exc:  # a damaged packet: keep what was decoded, as for a truncated file
                log.warning("%s: decoding stopped at a damaged packet: %s", self.path, exc)
            if yielded == 0:
                raise CorruptMediaError("no frame of the video could be decoded (empty, truncated or corrupt)")
            if yielded < len(keep):
                log.warning("%s: decoded %d of %d sampled frames (file ends early)", self.path, yielded, len(keep))
        finally:
            self.close()


# Packets the first-frame check may read (and keep for the read) before it falls back to a second open: a
# first frame needs one keyframe plus the decoder's delay, a few packets in any codec met so far.
_CHECK_PACKETS = 64


def _decoder_like(codec):
    """A fresh decoder with the stream's parameters (codec, extradata, size, pixel format)."""
    decoder = av.CodecContext.create(codec.name, "r")
    if codec.extradata:
        decoder.extradata = codec.extradata
    decoder.width, decoder.height = codec.width, codec.height
    if codec.format is not None:
        decoder.pix_fmt = codec.format.name
    return decoder


def check_video_limits(info: VideoInfo, max_pixels: int | None, max_duration: float | None) -> None:
    """Raise MediaLimitError for frames over ``max_pixels`` or a video over ``max_duration`` seconds (None: no limit)."""
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise MediaLimitError(f"video frames are {info.width}x{info.height} ({pixels_text(info.width * info.height)}), "
                              f"over the limit of {pixels_text(max_pixels)}")
    if max_duration is not None and info.duration > max_duration:
        raise MediaLimitError(f"video lasts {info.duration:.1f} s, over the limit of {max_duration:g} s")


def sample_indices(frame_count: int, fps: float, frames: int | None = None, sample_fps: float | None = None) -> list[int]:
    """Frame indices to keep: ``frames`` evenly over the video (None: every frame), or ``sample_fps`` per second, at most ``frames``."""
    if frame_count <= 0:
        return []
    if sample_fps:
        step = max(fps / sample_fps, 1.0) if fps > 0 else 1.0
        count = max(1, int(frame_count / step))
        if frames and count > frames:  # the cap that bounds a long video's work and memory: evenly over all of it
            count, step = frames, frame_count / frames
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
    """Yield the kept frames of the video at ``path`` in order, reading forward only (``OpenVideo.read``)."""
    yield from OpenVideo(path).read(frames, sample_fps, max_duration, max_pixels)


# Packets wait this many packets for their presentation index: more than any
# H.264/HEVC reorder depth (16), so the smallest waiting time stamp is final.
_REORDER_WINDOW = 32
# Containers whose packets carry presentation time stamps; AVI stores decode
# order only (FFmpeg's guessed pts are wrong with B-frames), so there every
# frame is decoded and counted.
_TRUE_PTS_FORMATS = {"mov", "mp4", "matroska", "webm", "mpegts"}


def _decode_kept(container, stream, keep: list[int], packets: Iterable | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
    """(index, frame) for each kept index, in order, decoding as little as possible (``packets``: the stream's, from
    its start; default: demuxed now)."""
    packets = (p for p in (container.demux(stream) if packets is None else packets) if p.size)  # size 0: the end marker
    first = next(packets, None)
    if first is None or not keep:
        return
    packets = itertools.chain([first], packets)
    if first.pts is None or not _TRUE_PTS_FORMATS & set(container.format.name.split(",")):
        yield from _decode_counting(stream.codec_context, packets, set(keep))
    else:
        yield from _decode_ranked(stream.codec_context, packets, set(keep))


def _decode_counting(codec, packets: Iterator, wanted: set[int]) -> Iterator[tuple[int, av.VideoFrame]]:
    index, last = 0, max(wanted)
    for packet in itertools.chain(packets, [None]):  # None: flush the decoder
        for frame in codec.decode(packet):
            if index in wanted:
                yield index, frame
            index += 1
            if index > last:
                return


def _decode_ranked(codec, packets: Iterator, wanted: set[int]) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decode only what the kept frames need.

    A packet's presentation index is the rank of its time stamp, known once
    ``_REORDER_WINDOW`` later packets have been read. Packets go to the
    decoder in file order; those of frames not kept go with ``skip_frame =
    NONREF``, so the decoder drops them when no other frame refers to them
    (H.264 non-reference B-frames, MPEG-4 B-frames, VP8 non-reference
    frames) and decodes them otherwise. Reading stops once the last kept
    frame's packet is sent.
    """
    rank_of: dict[int, int] = {}  # pts -> presentation index
    waiting: list[int] = []  # heap of time stamps not ranked yet
    pending: deque = deque()  # packets read, in file order, not sent yet
    ranked = sent = 0

    def ready(packet) -> bool:  # edit-list packets (discard) and ones without a time stamp are never shown
        return packet.pts in rank_of or packet.pts is None or packet.is_discard

    def decode(packet) -> Iterator[tuple[int, av.VideoFrame]]:
        for frame in codec.decode(packet):
            if rank_of.get(frame.pts) in wanted:
                yield rank_of[frame.pts], frame

    finished = False
    while not finished:
        packet = next(packets, None)
        if packet is None:
            finished, window = True, 0  # end of file: every time stamp is final
        else:
            pending.append(packet)
            if packet.pts is not None and not packet.is_discard:
                heapq.heappush(waiting, packet.pts)
            window = _REORDER_WINDOW
        while len(waiting) > window:
            rank_of[heapq.heappop(waiting)] = ranked
            ranked += 1
        while pending and ready(pending[0]):
            packet = pending.popleft()
            kept = rank_of.get(packet.pts) in wanted
            codec.skip_frame = "DEFAULT" if kept else "NONREF"
            sent += kept
            yield from decode(packet)
        if sent == len(wanted):
            break
    codec.skip_frame = "DEFAULT"
    yield from decode(None)  # flush: frames still inside the decoder's threads


def _upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The frame as RGB uint8, turned as its display matrix says (phones record sideways)."""
    rgb = frame.to_ndarray(format="rgb24")
    turn = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}.get(round(frame.rotation) % 360)
    return np.ascontiguousarray(cv2.rotate(rgb, turn) if turn is not None else rgb)


def _undecodable(exc: Exception) -> MediaError:
    """What Pillow's errors while opening or decoding an image become.

    Pillow refuses text chunks (PNG metadata) that inflate past its limits in
    messages naming its own constants: those become a limit in plain words.
    """
    message = str(exc)
    if "MAX_TEXT_CHUNK" in message:
        return MediaLimitError(f"a compressed text chunk (PNG metadata) inflates to over {_mb(PngImagePlugin.MAX_TEXT_CHUNK)}, "
                               "the most read of one")
    if "MAX_TEXT_MEMORY" in message:
        return MediaLimitError(f"its text chunks (PNG metadata) hold over {_mb(PngImagePlugin.MAX_TEXT_MEMORY)} in all, the most read")
    return CorruptMediaError(f"the image cannot be decoded: {_reason(exc)}")


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def pixels_text(pixels: int) -> str:
    """A pixel count as people say it: "950 pixels", "50 megapixels", "3.6 gigapixels"."""
    for unit, scale in (("gigapixel", 10**9), ("megapixel", 10**6)):
        if pixels >= scale:
            amount = f"{pixels / scale:.3g}"
            return f"{amount} {unit}{'' if amount == '1' else 's'}"
    return f"{pixels} pixel{'' if pixels == 1 else 's'}"


def _reason(exc: Exception) -> str:
    """An error's message without the file name it carries: a client's problem detail must not show
    the server's temp or data paths."""
    return getattr(exc, "strerror", None) or str(exc)


def _open(path: str | Path):
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise CorruptMediaError(f"the video cannot be opened (corrupt or unsupported codec): {_reason(exc)}") from exc
    if not container.streams.video:
        container.close()
        raise CorruptMediaError("the file has no video stream")
    return container


def _info(container) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    frame_count = stream.frames
    if frame_count <= 0 and fps > 0:  # no count in the header (MKV, WebM): duration x rate, as OpenCV does
        if container.duration:
            seconds = container.duration / av.time_base
        else:
            seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        frame_count = int(math.floor(seconds * fps + 0.5))
    info = VideoInfo(frame_count=frame_count, fps=fps, width=stream.codec_context.width, height=stream.codec_context.height)
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
            except DECODE_ERRORS as exc:
                raise _undecodable(exc) from exc
        return
    with OpenVideo(path) as video:
        video.check_decodes()


def read_frames_at(path: str | Path, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB frame) for the given frame indices, in order, reading forward only.

    For redrawing a record's sampled frames (``FrameResult.index``; the same
    numbering as ``read_video``); stops quietly where the file ends early.
    """
    keep = sorted(set(indices))
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for index, frame in _decode_kept(container, stream, keep):
                yield index, _upright_rgb(frame)
        except av.FFmpegError as exc:
            log.warning("%s: decoding stopped at a damaged packet: %s", path, exc)


Source = Union[str, Path, bytes, np.ndarray, Sequence[Frame], "OpenVideo"]


@dataclass
class MediaStream:
    """A source ready to read: its kind, its frames (a video's decode as they are read), and how many will come."""

    name: str
    kind: MediaKind
    frames: Iterable[Frame]
    total: int
    decode_ms: float = 0.0  # decoding already done (an image is decoded when opened)
    decoding: bool = False  # the frames decode as they are read: worth a thread running ahead
    close: Callable[[], None] = field(default=lambda: None)


def open_media(source: Source, name: str | None = None, *, frames: int | None = None, sample_fps: float | None = None,
               max_duration: float | None = None, max_pixels: int | None = None) -> MediaStream:
    """Every source the predictor takes, as frames to read: the one place that tells them apart.

    A path or bytes is sniffed (image or video); an RGB array is an image; a
    sequence of Frames a decoded video; an ``OpenVideo`` a video already
    opened (read from that one open). Call ``close`` when done: it closes a
    video and removes the temporary copy of video bytes.
    """
    if isinstance(source, OpenVideo):
        return _video_stream(source, name or str(source.path), frames, sample_fps, max_duration, max_pixels)
    if isinstance(source, np.ndarray):
        return MediaStream(name or "image", "image", [Frame(0, 0.0, source)], 1)
    if isinstance(source, (str, Path)):
        path, name = Path(source), name or str(source)
        if sniff_file(path)[0] == "image":
            return _image_stream(name, lambda: read_image(path, max_pixels))
        return _video_stream(OpenVideo(path), name, frames, sample_fps, max_duration, max_pixels)
    if isinstance(source, bytes):
        name = name or "upload"
        if sniff(source[:64])[0] == "image":
            return _image_stream(name, lambda: Frame(0, 0.0, decode_image(source, max_pixels)))
        fd, tmp = tempfile.mkstemp(prefix="unmask-", suffix=".video")  # FFmpeg reads a file; removed by close
        with os.fdopen(fd, "wb") as fh:
            fh.write(source)
        try:
            stream = _video_stream(OpenVideo(tmp), name, frames, sample_fps, max_duration, max_pixels)
        except BaseException:
            os.unlink(tmp)
            raise
        close = stream.close
        stream.close = lambda: (close(), Path(tmp).unlink(missing_ok=True))
        return stream
    decoded = list(source)
    return MediaStream(name or "frames", "video", decoded, len(decoded))


def _image_stream(name: str, decode: Callable[[], Frame]) -> MediaStream:
    started = time.perf_counter()
    frame = decode()
    return MediaStream(name, "image", [frame], 1, decode_ms=(time.perf_counter() - started) * 1000)


def _video_stream(video: OpenVideo, name: str, frames, sample_fps, max_duration, max_pixels) -> MediaStream:
    total = len(sample_indices(video.info.frame_count, video.info.fps, frames, sample_fps))
    return MediaStream(name, "video", video.read(frames, sample_fps, max_duration, max_pixels), total, decoding=True,
                       close=video.close)
