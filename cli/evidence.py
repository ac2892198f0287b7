"""Pictures of a record for ``unmask score --save DIR``: annotated frame, contact sheet, timeline, heat maps.

Per scored file (``STEM`` = the file's name):

    STEM.annotated.png   the image, or the video frame that shows the verdict, full size:
                         a box per face coloured by its score (green real .. red fake) and a label
    STEM.frames.png      videos: every sampled frame, annotated, with its time and score
    STEM.timeline.png    videos: each track's per-frame scores over time, the threshold dashed
    STEM.heatmap-N.png   with --explain: the face crop beside its Grad-CAM heat map

Boxes and heat-map colours are drawn with OpenCV, the sheet and the timeline
with matplotlib (its object API, no pyplot state). The predictor keeps no
frame pixels, so the sampled frames are read again by the indices in the
record, forward only.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from matplotlib.figure import Figure

from ..model.config import CropConfig
from ..model.explain import decode_heatmap
from ..model.faces import crop_face
from ..model.media import read_frames_at, read_image
from ..model.results import FrameResult, MediaResult

THUMB_SIDE = 480  # longer side of a frame on the contact sheet
SHEET_COLUMNS = 6
SQUARE = CropConfig(scale=1.0, shift_y=0.0)  # crop_face on an explanation's square crop cuts exactly that square


def save_evidence(result: MediaResult, source: Path, out_dir: Path, stem: str) -> list[Path]:
    """Write the pictures of one record; returns the files written (none for an error record).

    Args:
        result: the file's record (``explanations`` drawn when present).
        source: the scored file, read again for its pixels.
        out_dir: the folder to write into (created).
        stem: the files' name prefix (unique per run).
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
    for index, image in _read(result, source):
        frame = frames[index]
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
        written.append(_write_rgb(out_dir / f"{stem}.heatmap-{n}.png", np.hstack([crop, overlay_heatmap(crop, heatmap)])))
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


def _read(result: MediaResult, source: Path) -> Iterator[tuple[int, np.ndarray]]:
    if result.media == "image":
        yield 0, read_image(source).image
        return
    yield from read_frames_at(source, [f.index for f in result.frames])


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    factor = side / max(image.shape[:2])
    if factor >= 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def _write_rgb(path: Path, image: np.ndarray) -> Path:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path
