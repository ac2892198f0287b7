"""The result record: one typed shape for the CLI, the API, jobs and eval.

An image is a video of one frame. Boxes are [x1, y1, x2, y2] in pixels of the
original file; times are seconds. See ../shared/DESIGN.md for the contract.
These dataclasses are also the API's response schema (FastAPI reads them
directly), so the shape is written once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

Status = Literal["ok", "no_face", "error"]
MediaKind = Literal["image", "video"]


@dataclass
class FaceResult:
    """One face: box and 5 landmarks in original pixels, detector and fake probability."""

    box: list[float]
    detection: float
    landmarks: list[list[float]]
    score: float
    track: int = 0

    def __post_init__(self) -> None:
        if len(self.box) != 4:
            raise ValueError("box needs 4 numbers")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"face score {self.score} outside [0, 1]")


@dataclass
class FrameResult:
    """A sampled frame; ``score`` is its highest face score (None without faces)."""

    index: int
    time: float
    faces: list[FaceResult] = field(default_factory=list)
    score: Optional[float] = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.score = max((f.score for f in self.faces), default=None)


@dataclass
class TrackResult:
    """One person across frames: aggregated score, face count, first and last time.

    ``counted`` says whether the track sets the file's score: a track seen in
    too few of the sampled frames (an intermittent false face, a passer-by) is
    reported but does not decide the verdict.
    """

    id: int
    score: float
    frames: int
    start: float
    end: float
    counted: bool = True


@dataclass
class ModelRef:
    name: str
    version: str
    architecture: str


@dataclass
class ErrorInfo:
    type: str
    detail: str


@dataclass
class Explanation:
    """A Grad-CAM heat map of one face crop: which regions pushed its score towards fake.

    ``heatmap`` covers the square ``crop`` (the classifier's input, cut
    around the face's box; it may reach past the frame's edges, where the
    crop was black): draw it stretched over that square.
    """

    frame: int  # position in ``frames``
    face: int  # position in that frame's ``faces``
    method: str
    heatmap: str  # PNG (grayscale, the crop's size, 0-255 = [0, 1]), base64
    crop: list[float] = field(default_factory=list)  # [x1, y1, x2, y2] of the square crop, original pixels


CSV_FIELDS = ["path", "media", "status", "label", "score", "threshold", "faces", "tracks", "error_type", "error_detail",
              "model", "total_ms"]


@dataclass
class MediaResult:
    """The record for one file. ``score``/``label`` are set only when status is ok."""

    path: str
    media: MediaKind
    status: Status
    error: Optional[ErrorInfo] = None
    score: Optional[float] = None
    label: Optional[Literal["fake", "real"]] = field(init=False, default=None)
    threshold: Optional[float] = None
    aggregation: Optional[str] = None
    model: Optional[ModelRef] = None
    frames: list[FrameResult] = field(default_factory=list)
    tracks: list[TrackResult] = field(default_factory=list)
    options: Optional[dict[str, Any]] = None  # the per-request options used (frames, sample_fps, aggregation, explain)
    explanations: Optional[list[Explanation]] = None  # only when explain was asked
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status == "ok" and self.score is None:
            raise ValueError("an ok result needs a score")
        if self.status != "ok" and self.score is not None:
            raise ValueError(f"a {self.status} result must not carry a score")
        if self.status == "error" and not self.error:
            raise ValueError("an error result needs an error")
        if self.score is not None and self.threshold is not None:
            self.label = "fake" if self.score >= self.threshold else "real"

    @property
    def face_count(self) -> int:
        return sum(len(f.faces) for f in self.frames)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the API's and the CLI's record)."""
        data = dataclasses.asdict(self)
        data["timings_ms"] = {k: round(v, 1) for k, v in self.timings_ms.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MediaResult":
        """Rebuild a record from ``to_dict``'s output (derived fields, label and frame scores, are recomputed)."""
        data = dict(data)
        data.pop("label", None)
        frames = [FrameResult(f["index"], f["time"], [FaceResult(**face) for face in f["faces"]]) for f in data.pop("frames", [])]
        error, model, explanations = data.pop("error", None), data.pop("model", None), data.pop("explanations", None)
        tracks = [TrackResult(**t) for t in data.pop("tracks", [])]
        return cls(
            **data,
            error=ErrorInfo(**error) if error else None,
            model=ModelRef(**model) if model else None,
            frames=frames,
            tracks=tracks,
            explanations=[Explanation(**e) for e in explanations] if explanations is not None else None,
        )

    def to_row(self) -> dict[str, Any]:
        """One flat row (CSV_FIELDS): the verdict, not the per-face detail."""
        return {
            "path": self.path,
            "media": self.media,
            "status": self.status,
            "label": self.label or "",
            "score": "" if self.score is None else f"{self.score:.4f}",
            "threshold": "" if self.threshold is None else self.threshold,
            "faces": self.face_count,
            "tracks": len(self.tracks),
            "error_type": self.error.type if self.error else "",
            "error_detail": self.error.detail if self.error else "",
            "model": f"{self.model.name}:{self.model.version}" if self.model else "",
            "total_ms": round(self.timings_ms.get("total", 0.0)),
        }
