"""The result record: one typed shape for the CLI, the API, jobs and eval.

An image is a video of one frame. Boxes are [x1, y1, x2, y2] in pixels of the
original file; times are seconds. See ../shared/DESIGN.md for the contract.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "no_face", "error"]


@dataclass
class FaceResult:
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
    index: int
    time: float
    faces: list[FaceResult] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        """The highest face score in the frame (None without faces)."""
        return max((f.score for f in self.faces), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time": self.time,
            "score": self.score,
            "faces": [dataclasses.asdict(f) for f in self.faces],
        }


@dataclass
class TrackResult:
    id: int
    score: float
    frames: int
    start: float
    end: float


@dataclass
class ModelRef:
    name: str
    version: str
    architecture: str


@dataclass
class MediaResult:
    path: str
    media: Literal["image", "video"]
    status: Status
    model: ModelRef | None = None
    threshold: float | None = None
    aggregation: str | None = None
    score: float | None = None
    frames: list[FrameResult] = field(default_factory=list)
    tracks: list[TrackResult] = field(default_factory=list)
    error: dict[str, str] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status == "ok" and self.score is None:
            raise ValueError("an ok result needs a score")
        if self.status != "ok" and self.score is not None:
            raise ValueError(f"a {self.status} result must not carry a score")
        if self.status == "error" and not self.error:
            raise ValueError("an error result needs an error")

    @property
    def label(self) -> str | None:
        if self.score is None or self.threshold is None:
            return None
        return "fake" if self.score >= self.threshold else "real"

    @property
    def faces(self) -> int:
        return sum(len(f.faces) for f in self.frames)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "media": self.media,
            "status": self.status,
            "error": self.error,
            "score": self.score,
            "label": self.label,
            "threshold": self.threshold,
            "aggregation": self.aggregation,
            "model": dataclasses.asdict(self.model) if self.model else None,
            "frames": [f.to_dict() for f in self.frames],
            "tracks": [dataclasses.asdict(t) for t in self.tracks],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }

    @classmethod
    def failed(cls, path: str, media: Literal["image", "video"], kind: str, detail: str, **kw: Any) -> "MediaResult":
        return cls(path=path, media=media, status="error", error={"type": kind, "detail": detail}, **kw)
