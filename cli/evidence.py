"""Pictures of a record for ``unmask score --save DIR``: annotated frame, contact sheet, timeline, heat maps, video.

Per scored file (``STEM`` = the file's name):

    STEM.annotated.png   the image, or the video frame that shows the verdict, full size:
                         a box per face coloured by its score (green real .. red fake) and a label
    STEM.frames.png      videos: every sampled frame, annotated, with its time and score
    STEM.timeline.png    videos: each track's per-frame scores over time, the threshold dashed
    STEM.heatmap-N.png   with --explain: the face crop beside its Grad-CAM heat map, a colour
                         scale, and the face's score and verdict
    STEM.annotated.mp4   videos, with --save-video: the clip with the nearest sample's boxes on
                         every frame and a score timeline with a playhead below (H.264)

Boxes and heat-map colours are drawn with OpenCV, the sheet and the timeline
with matplotlib (its object API, no pyplot state), the video encoded with
PyAV. The predictor keeps no frame pixels, so the sampled frames are read
again by the indices in the record, forward only; with the video, in the same
pass that reads the clip's frames for it.
"""

from __future__ import annotations

import bisect
import colorsys
import contextlib
import dataclasses
import math
from fractions import Fraction
from pathlib import Path
from typing import Collection, Iterator

import av
import cv2
import numpy as np
from matplotlib.figure import Figure

from ..model.config import CropConfig
from ..model.explain import decode_heatmap
from ..model.faces import crop_face
from ..model.media import VideoInfo, probe_video, read_frames_at, read_image
from ..model.results import FrameResult, MediaResult

THUMB_SIDE = 480  # longer side of a frame on the contact sheet
SHEET_COLUMNS = 6
SQUARE = CropConfig(scale=1.0, shift_y=0.0)  # crop_face on an explanation's square crop cuts exactly that square
VIDEO_SIDE = 720  # longer side of the annotated MP4: encoding stays a fraction of decoding
VIDEO_FRAMES = 1800  # at most this many MP4 frames (a minute at 30 fps); a longer clip is written every k-th frame
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def save_evidence(result: MediaResult, source: Path, out_dir: Path, stem: str, video: bool = False) -> list[Path]:
    """Write the pictures of one record; returns the files written (none for an error record).

    Args:
        result: the file's record (``explanations`` drawn when present).
        source: the scored file, read again for its pixels.
        out_dir: the folder to write into (created).
        stem: the files' name prefix (unique per run).
        video: for a video, also write ``STEM.annotated.mp4`` (reads every frame: seconds per clip).
    """
    if result.status == "error" or not result.frames:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    verdict = _verdict_frame(result)
    explained = {result.frames[e.frame].index for e in result.explanations or []}
    keep = explained | {result.frames[verdict].index}
    frames = {f.index: f for f in result.frames}
    full: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # (annotated, plain) full size, only of the frames drawn so
    thumbs: list[tuple[FrameResult, np.ndarray]] = []
    movie = AnnotatedVideo(result, probe_video(source), out_dir / f"{stem}.annotated.mp4") if video and result.media == "video" else None
    with movie or contextlib.nullcontext():
        for index, image in _read(result, source, movie.indices if movie else ()):
            if movie is not None and index in movie.indices:
                movie.add(index, image)
            if (frame := frames.get(index)) is None:
                continue
            annotated = annotate(image, frame, result.threshold, tracks=result.media == "video")
            if index in keep:
                full[index] = (annotated, image)
            if result.media == "video":
                thumbs.append((frame, _shrink(annotated, THUMB_SIDE)))
    if result.frames[verdict].index not in full:
        raise OSError(f"{source}: the sampled frames cannot be read again (changed or truncated since it was scored)")
    written = [_write_rgb(out_dir / f"{stem}.annotated.png", full[result.frames[verdict].index][0])]
    if result.media == "video":
        written.append(contact_sheet(thumbs, out_dir / f"{stem}.frames.png"))
        if result.tracks:
            written.append(timeline(result, out_dir / f"{stem}.timeline.png"))
    for n, explanation in enumerate(result.explanations or [], 1):
        if (pixels := full.get(result.frames[explanation.frame].index)) is None:
            continue
        heatmap = decode_heatmap(explanation.heatmap)
        crop = crop_face(pixels[1], np.array(explanation.crop), SQUARE, heatmap.shape[0])
        face = result.frames[explanation.frame].faces[explanation.face]
        written.append(_write_rgb(out_dir / f"{stem}.heatmap-{n}.png", heatmap_picture(crop, heatmap, face.score, result.threshold)))
    if movie is not None:
        written.append(movie.path)
    return written


def score_color(score: float) -> tuple[int, int, int]:
    """RGB for a score: green (0, real) through yellow to red (1, fake)."""
    r, g, b = colorsys.hsv_to_rgb((1.0 - score) / 3.0, 0.85, 0.9)
    return round(r * 255), round(g * 255), round(b * 255)


def annotate(image: np.ndarray, frame: FrameResult, threshold: float | None, tracks: bool = False) -> np.ndarray:
    """A copy of an RGB frame with each face's box and label ("fake 0.91", plus "#track" for videos)."""
    out = image.copy()
    thickness = max(2, round(max(out.shape[:2]) / 400))
    scale = thickness * 0.35
    for face in frame.faces:
        color = score_color(face.score)
        x1, y1, x2, y2 = (round(v) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        verdict = "fake" if threshold is not None and face.score >= threshold else "real"
        text = f"{verdict} {face.score:.2f}" + (f" #{face.track}" if tracks else "")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thickness // 2))
        top = y1 - th - base - 2 * thickness if y1 - th - base - 2 * thickness >= 0 else y2  # above the box, else below
        cv2.rectangle(out, (x1, top), (x1 + tw + 2 * thickness, top + th + base + 2 * thickness), color, cv2.FILLED)
        cv2.putText(out, text, (x1 + thickness, top + th + thickness), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    max(1, thickness // 2), cv2.LINE_AA)
    return out


def overlay_heatmap(crop: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """An RGB crop blended with its [0, 1] heat map in the JET colours (blue low, red high)."""
    colors = cv2.cvtColor(cv2.applyColorMap(np.round(heatmap * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(crop, 1.0 - alpha, colors, alpha, 0.0)


def heatmap_picture(crop: np.ndarray, heatmap: np.ndarray, score: float, threshold: float | None) -> np.ndarray:
    """The crop beside its heat map, a colour scale, and a caption with the face's score and verdict.

    Grad-CAM follows the fake logit and each map is scaled to [0, 1] on its
    own (``model/explain.py``): the colours rank a face's regions by how much
    they raised its fake score, whatever the verdict, and say nothing of how
    fake the face is; the caption says so.
    """
    side = crop.shape[0]
    font = side / 560  # Hershey scale: ~0.4 on a 224 px crop
    top = np.hstack([crop, overlay_heatmap(crop, heatmap), _colour_scale(side, font)])
    return np.vstack([top, _caption(heatmap_caption(score, threshold), top.shape[1], font)])


def heatmap_caption(score: float, threshold: float | None) -> list[str]:
    """The lines under a heat map: the face's score and verdict, and what the colours mean (for either verdict)."""
    verdict = "" if threshold is None else f": {'fake' if score >= threshold else 'real'} (threshold {threshold:g})"
    return [f"this face scored {score:.2f}{verdict}",
            "red: the regions that raised its fake score most,",
            "blue: least; ranked within this face, not a verdict"]


def _colour_scale(height: int, font: float) -> np.ndarray:
    """A white column with the JET scale of ``overlay_heatmap``, "most" (1, red) at the top, "least" (0, blue) below."""
    bar, margin = max(10, height // 16), max(4, height // 40)
    labels = ("1 most", "0 least")
    text = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font, 1)[0][0] for t in labels)
    column = np.full((height, 3 * margin + bar + text, 3), 255, np.uint8)
    values = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(bar, axis=1)  # 1 at the top
    column[:, margin : margin + bar] = overlay_heatmap(np.zeros((height, bar, 3), np.uint8), values, alpha=1.0)
    x = 2 * margin + bar
    line = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, font, 1)[0][1]
    cv2.putText(column, labels[0], (x, line + margin), cv2.FONT_HERSHEY_SIMPLEX, font, BLACK, 1, cv2.LINE_AA)
    cv2.putText(column, labels[1], (x, height - margin), cv2.FONT_HERSHEY_SIMPLEX, font, BLACK, 1, cv2.LINE_AA)
    return column


def _caption(lines: list[str], width: int, font: float) -> np.ndarray:
    """Black lines of text on a white strip ``width`` wide (the font shrinks to fit)."""
    widest = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font, 1)[0][0] for t in lines)
    font = min(font, font * (width - 16) / widest)
    height = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font, 1)[0][1]
    step = round(height * 1.8)
    strip = np.full((step * len(lines) + step // 2, width, 3), 255, np.uint8)
    for n, text in enumerate(lines, 1):
        cv2.putText(strip, text, (8, n * step), cv2.FONT_HERSHEY_SIMPLEX, font, BLACK, 1, cv2.LINE_AA)
    return strip


def contact_sheet(thumbs: list[tuple[FrameResult, np.ndarray]], path: Path) -> Path:
    """Every sampled frame (annotated thumbnails) in a grid, each titled with its time and score."""
    columns = min(SHEET_COLUMNS, len(thumbs))
    rows = math.ceil(len(thumbs) / columns)
    height, width = thumbs[0][1].shape[:2]
    fig = Figure(figsize=(columns * 2.6, rows * 2.6 * height / width + rows * 0.35), layout="constrained")
    for ax, item in zip(fig.subplots(rows, columns, squeeze=False).flat, thumbs + [None] * (rows * columns)):
        ax.axis("off")
        if item is not None:
            frame, thumb = item
            ax.imshow(thumb)
            ax.set_title(f"{frame.time:.2f} s  " + ("no face" if frame.score is None else f"{frame.score:.2f}"), fontsize=9)
    fig.savefig(path, dpi=80)  # ~1250 px wide: 32 frames stay a few MB
    return path


def timeline(result: MediaResult, path: Path) -> Path:
    """Each track's per-frame scores over time (uncounted tracks dashed), the threshold as a dashed line."""
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.subplots()
    for track in result.tracks:
        points = [(f.time, face.score) for f in result.frames for face in f.faces if face.track == track.id]
        times, scores = zip(*points)
        style = "-" if track.counted else "--"
        note = "" if track.counted else ", not counted"
        ax.plot(times, scores, style, marker="o", markersize=3, label=f"track {track.id}: {track.score:.2f}{note}")
    if result.threshold is not None:
        ax.axhline(result.threshold, color="grey", linestyle=":", linewidth=1, label=f"threshold {result.threshold:g}")
    ax.set(xlabel="time (s)", ylabel="P(fake)", ylim=(0, 1), title=f"{Path(result.path).name}: per-frame face scores")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=110)
    return path


class AnnotatedVideo:
    """``STEM.annotated.mp4``: the clip, each frame with the boxes of its nearest sampled frame, a timeline below.

    H.264 (libx264, yuv420p) at the clip's pace, the longer side at most
    ``VIDEO_SIDE``. It covers the clip as far as the record does (the last
    sample and as many frames after it as the first sample has before it);
    past ``VIDEO_FRAMES`` frames, every k-th frame is written at 1/k of the
    frame rate, so the clip keeps its length. The timeline has a column per
    sample in its score's colour, as high as the score (none where no face
    was found), the threshold as a grey line and a white playhead.
    """

    def __init__(self, result: MediaResult, info: VideoInfo, path: Path) -> None:
        self.path = path
        self._result = result
        self._samples = sorted(result.frames, key=lambda f: f.index)
        self._at = [f.index for f in self._samples]
        self._end = min(info.frame_count, self._at[-1] + self._at[0] + 1) if info.frame_count > 0 else self._at[-1] + 1
        step = math.ceil(self._end / VIDEO_FRAMES)
        self.indices = range(0, self._end, step)  # the frames written (``in`` is arithmetic)
        fps = info.fps if info.fps > 0 and math.isfinite(info.fps) else 25.0
        self._rate = Fraction(fps / step).limit_denominator(1001)
        self._container: av.container.OutputContainer | None = None

    def __enter__(self) -> "AnnotatedVideo":
        return self

    def __exit__(self, kind, *exc) -> None:
        if self._container is None:
            return
        complete = False
        try:
            if kind is None:
                self._mux(None)  # flush the encoder
                self._container.close()
                complete = True
        except av.FFmpegError as exc:
            raise OSError(f"cannot write {self.path}: {exc}") from exc
        finally:
            if not complete:
                self._container.close()
                self.path.unlink(missing_ok=True)  # no half-written video is left
            self._container = None

    def add(self, index: int, image: np.ndarray) -> None:
        """Write the frame ``index`` (full-size RGB), annotated; frames come in order."""
        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        small = cv2.resize(image, (self._width, self._height), interpolation=cv2.INTER_AREA)
        nearest = self._scaled[self._nearest(index)]
        bar = self._bar.copy()
        x = min(self._width - 1, round((index + 0.5) / self._end * self._width))  # the middle of the frame's slot
        cv2.line(bar, (x, 0), (x, bar.shape[0] - 1), WHITE, 2)
        picture = np.vstack([annotate(small, nearest, self._result.threshold, tracks=True), bar])
        self._mux(av.VideoFrame.from_ndarray(picture, format="rgb24"))

    def _open(self, width: int, height: int) -> None:
        factor = min(1.0, VIDEO_SIDE / max(width, height))
        self._width, self._height = (max(2, round(v * factor / 2) * 2) for v in (width, height))  # yuv420p: even sides
        fx, fy = self._width / width, self._height / height
        self._scaled = [_scaled_boxes(f, fx, fy) for f in self._samples]
        self._bar = self._timeline_bar(max(24, round(min(self._width, self._height) / 20) * 2))
        self._container = av.open(str(self.path), "w")
        stream = self._container.add_stream("libx264", rate=self._rate)
        stream.width, stream.height, stream.pix_fmt = self._width, self._height + self._bar.shape[0], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        self._stream = stream

    def _mux(self, frame: av.VideoFrame | None) -> None:
        assert self._container is not None
        try:
            self._container.mux(self._stream.encode(frame))
        except av.FFmpegError as exc:
            raise OSError(f"cannot write {self.path}: {exc}") from exc

    def _nearest(self, index: int) -> int:
        """Position of the sample nearest frame ``index`` (the earlier one on a tie)."""
        after = bisect.bisect_left(self._at, index)
        if after == 0 or (after < len(self._at) and self._at[after] - index < index - self._at[after - 1]):
            return min(after, len(self._at) - 1)
        return after - 1

    def _timeline_bar(self, height: int) -> np.ndarray:
        bar = np.full((height, self._width, 3), 32, np.uint8)
        bounds = [0] + [(a + b) / 2 for a, b in zip(self._at, self._at[1:])] + [self._end]  # each sample's nearest frames
        for frame, start, stop in zip(self._samples, bounds, bounds[1:]):
            if frame.score is not None:
                x1, x2 = (round(v / self._end * self._width) for v in (start, stop))
                top = round((height - 1) * (1.0 - frame.score))
                bar[top:, x1:max(x2, x1 + 1)] = score_color(frame.score)
        if self._result.threshold is not None:
            y = round((height - 1) * (1.0 - self._result.threshold))
            bar[y, :: 2] = (160, 160, 160)  # dotted
        return bar


def _verdict_frame(result: MediaResult) -> int:
    """Position of the frame that shows the verdict (0 without faces).

    The deciding track is the counted track with the top score (it sets the
    file's score); its frame shown is the one where its face scores closest to
    that track score, so the picture matches the verdict's number rather than
    its most extreme frame.
    """
    counted = [t for t in result.tracks if t.counted]
    if not counted:
        return 0
    deciding = max(counted, key=lambda t: t.score)
    return min((abs(face.score - deciding.score), pos) for pos, f in enumerate(result.frames) for face in f.faces
               if face.track == deciding.id)[1]


def _scaled_boxes(frame: FrameResult, fx: float, fy: float) -> FrameResult:
    """The frame's record with its boxes in a picture resized by ``fx`` across and ``fy`` down."""
    faces = [dataclasses.replace(face, box=[face.box[0] * fx, face.box[1] * fy, face.box[2] * fx, face.box[3] * fy])
             for face in frame.faces]
    return dataclasses.replace(frame, faces=faces)


def _read(result: MediaResult, source: Path, more: Collection[int] = ()) -> Iterator[tuple[int, np.ndarray]]:
    """The record's frames (and a video's frames ``more``), in order, forward only."""
    if result.media == "image":
        yield 0, read_image(source).image
        return
    yield from read_frames_at(source, [f.index for f in result.frames] + list(more))


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    factor = side / max(image.shape[:2])
    if factor >= 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def _write_rgb(path: Path, image: np.ndarray) -> Path:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path
