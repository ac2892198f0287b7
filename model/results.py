"""The result record: one typed shape for the CLI, the API, jobs and eval.

An image is a video of one frame. Boxes are [x1, y1, x2, y2] in pixels of the
original file; times are seconds. See ../shared/DESIGN.md for the contract.
These dataclasses are also the API's response schema (FastAPI reads them
directly), so the shape is written once: the docstring under each field
is its description in the OpenAPI schema (``DOCUMENTED`` turns that on),
and ``Len`` types boxes as 4 numbers and landmarks as pairs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

from annotated_types import Len

DOCUMENTED = {"use_attribute_docstrings": True}  # pydantic reads each field's docstring as its description
Box = Annotated[list[float], Len(4, 4)]
Point = Annotated[list[float], Len(2, 2)]
Band = Annotated[list[float], Len(2, 2)]
Status = Literal["ok", "no_face", "error"]
MediaKind = Literal["image", "video"]


@dataclass
class FaceResult:
    """One face: box and 5 landmarks in original pixels, detector and fake probability."""

    __pydantic_config__ = DOCUMENTED
    box: Box
    """[x1, y1, x2, y2] in pixels of the original file"""
    detection: float
    """the face detector's confidence (0-1)"""
    landmarks: list[Point]
    """five [x, y] points in pixels of the original file: eyes, nose, mouth corners"""
    score: float
    """P(fake) of this face (0-1)"""
    track: int = 0
    """the id of the track (person across frames) this face belongs to"""

    def __post_init__(self) -> None:
        if len(self.box) != 4:
            raise ValueError("box needs 4 numbers")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"face score {self.score} outside [0, 1]")


@dataclass
class FrameResult:
    """A sampled frame; ``score`` is its highest face score (None without faces)."""

    __pydantic_config__ = DOCUMENTED
    index: int
    """the frame's index in the file (0 for an image)"""
    time: float
    """seconds from the start of the video (0.0 for an image)"""
    faces: list[FaceResult] = field(default_factory=list)
    """the faces found in this frame"""
    score: Optional[float] = field(init=False, default=None)
    """the highest face score of the frame; null without faces"""

    def __post_init__(self) -> None:
        self.score = max((f.score for f in self.faces), default=None)


@dataclass
class TrackResult:
    """One person across frames: aggregated score, face count, first and last time.

    ``counted`` says whether the track sets the file's score: a track seen in
    too few of the sampled frames (an intermittent false face, a passer-by) is
    reported but does not decide the verdict.
    """

    __pydantic_config__ = DOCUMENTED
    id: int
    """the track's id (faces carry it in ``track``)"""
    score: float
    """the track's P(fake): its faces' scores under the record's aggregation"""
    frames: int
    """how many sampled frames the track is seen in"""
    start: float
    """seconds: first sighting"""
    end: float
    """seconds: last sighting"""
    counted: bool = True
    """whether the track sets the file's score (false: seen in under a quarter of the sampled frames)"""


@dataclass
class ModelRef:
    """The checkpoint that scored the file."""

    __pydantic_config__ = DOCUMENTED
    name: str
    """the checkpoint's name"""
    version: str
    """the checkpoint's version"""
    architecture: str
    """the network architecture (lite0, efficientnet_b4, ...)"""


@dataclass
class ErrorInfo:
    """Why a file could not be scored."""

    __pydantic_config__ = DOCUMENTED
    type: str
    """a stable machine-readable kind: unsupported_media, corrupt_media, limit_exceeded, unreadable; in a batch's
    results also job_failed (e.g. past the job timeout) and cancelled"""
    detail: str
    """what went wrong, for a person"""


@dataclass
class Explanation:
    """A Grad-CAM heat map of one face crop: which regions pushed its score towards fake.

    ``heatmap`` covers the square ``crop`` (the classifier's input, cut
    around the face's box; it may reach past the frame's edges, where the
    crop was black): draw it stretched over that square.
    """

    __pydantic_config__ = DOCUMENTED
    frame: int
    """position of the face's frame in ``frames``"""
    face: int
    """position of the face in that frame's ``faces``"""
    method: str
    """how the map was made (gradcam)"""
    heatmap: str
    """a grayscale PNG of the crop's size, base64-encoded; 0-255 stands for 0-1"""
    crop: list[float] = field(default_factory=list)
    """[x1, y1, x2, y2] of the square crop in original pixels (it may reach past the frame's edges)"""


@dataclass
class Provenance:
    """Content Credentials (a C2PA manifest) read from the file: who signed it, whether it checks out, what it declares.

    It sits beside the score and never changes it: a valid manifest that
    declares AI generation is the maker's own statement; a file without one
    says nothing either way (most files carry none, and most sites strip them).
    """

    __pydantic_config__ = DOCUMENTED
    present: bool
    """whether the file carries a C2PA manifest"""
    validation_state: Optional[Literal["valid", "trusted", "invalid", "malformed"]] = None
    """valid: signature and hashes check out; trusted: valid and signed under a trusted root; invalid: the file or
    manifest changed after signing, or the signature fails; malformed: the manifest cannot be read; null when not present"""
    claim_generator: Optional[str] = None
    """the software that wrote the manifest (name and version)"""
    signer: Optional[str] = None
    """who signed it: the signing certificate's organisation and common name"""
    signed_at: Optional[str] = None
    """when it was signed (ISO 8601), from a trusted time-stamp; null without one"""
    ai_content: Optional[Literal["generated", "edited"]] = None
    """what the manifest declares: generated (created by a trained AI model), edited (AI-edited); null when it declares
    neither"""
    detail: Optional[str] = None
    """a line for a person: why invalid or malformed, or what was found"""


@dataclass
class Work:
    """How much work scoring did, and which shortcuts cut it (docs/speed.md)."""

    __pydantic_config__ = DOCUMENTED
    frames_sampled: int
    """frames the sampling picked (``frames``, ``sample_fps``); 1 for an image"""
    frames_scored: int
    """frames searched for faces and scored: fewer than frames_sampled when early stopping stopped at the first pass"""
    stopped: Literal["all_frames", "clear_verdict"]
    """all_frames: every sampled frame was scored; clear_verdict: the first pass left every counted person's score
    clear of the threshold, so the rest were not scored"""
    faces: int
    """face crops classified"""
    views: int
    """classifier passes run over those crops (faces times TTA views; fewer with adaptive TTA)"""


CSV_FIELDS = ["path", "media", "status", "label", "confidence", "score", "threshold", "faces", "tracks", "error_type",
              "error_detail", "model", "total_ms"]


@dataclass
class MediaResult:
    """The record for one file. ``score``/``label`` are set only when status is ok."""

    __pydantic_config__ = DOCUMENTED
    path: str
    """the upload's file name, or the file's path (the API escapes control and invisible format characters in it: \\xNN, \\uNNNN)"""
    media: MediaKind
    """image or video"""
    status: Status
    """ok (scored), no_face (no face found: no score), error (could not be scored: see error)"""
    error: Optional[ErrorInfo] = None
    """why the file could not be scored; null unless status is error"""
    score: Optional[float] = None
    """P(fake) of the file: the highest counted track's score; null unless status is ok"""
    label: Optional[Literal["fake", "real"]] = field(init=False, default=None)
    """fake when score >= threshold, else real; null unless status is ok"""
    confidence: Optional[Literal["high", "low"]] = field(init=False, default=None)
    """low when score lies in uncertain_band (show the verdict as uncertain), else high; null unless status is ok"""
    threshold: Optional[float] = None
    """the checkpoint's decision threshold"""
    uncertain_band: Optional[Band] = None
    """[lo, hi]: the scores (inclusive) around the threshold where the verdict is uncertain; the model's band fitted
    on validation data, or the request's uncertain_margin; null when there is none"""
    aggregation: Optional[str] = None
    """how a track's score is made from its faces: confident, mean or max"""
    model: Optional[ModelRef] = None
    """the checkpoint that scored the file"""
    frames: list[FrameResult] = field(default_factory=list)
    """every sampled frame (one for an image), with its faces"""
    tracks: list[TrackResult] = field(default_factory=list)
    """one per person followed across frames"""
    options: Optional[dict[str, Any]] = None
    """the per-request options used: frames, sample_fps, aggregation, explain, early_stop, min_face_px, adaptive_tta,
    uncertain_margin (an image's: explain, min_face_px, adaptive_tta, uncertain_margin)"""
    work: Optional[Work] = None
    """frames scored, why scoring stopped, faces and classifier views run; null for an error"""
    explanations: Optional[list[Explanation]] = None
    """heat maps of the highest-scoring faces; only when explain was asked"""
    provenance: Optional[Provenance] = None
    """Content Credentials (C2PA) read from the file, independent of the score; null when no file was read"""
    timings_ms: dict[str, float] = field(default_factory=dict)
    """milliseconds per stage: decode, detect, classify, total"""

    def __post_init__(self) -> None:
        if self.status == "ok" and self.score is None:
            raise ValueError("an ok result needs a score")
        if self.status != "ok" and self.score is not None:
            raise ValueError(f"a {self.status} result must not carry a score")
        if self.status == "error" and not self.error:
            raise ValueError("an error result needs an error")
        if self.uncertain_band is not None and (len(self.uncertain_band) != 2 or self.uncertain_band[0] > self.uncertain_band[1]):
            raise ValueError(f"uncertain_band {self.uncertain_band} is not [lo, hi] with lo <= hi")
        if self.score is not None and self.threshold is not None:
            self.label = "fake" if self.score >= self.threshold else "real"
        if self.score is not None:
            band = self.uncertain_band
            self.confidence = "low" if band is not None and band[0] <= self.score <= band[1] else "high"

    @property
    def verdict(self) -> str | None:
        """What a reader shows: "uncertain" when confidence is low, else the label (None unless status is ok)."""
        return "uncertain" if self.confidence == "low" else self.label

    @property
    def face_count(self) -> int:
        return sum(len(f.faces) for f in self.frames)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the API's and the CLI's record)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MediaResult":
        """Rebuild a record from ``to_dict``'s output (derived fields, label, confidence and frame scores, are recomputed)."""
        data = dict(data)
        data.pop("label", None)
        data.pop("confidence", None)
        frames = [FrameResult(f["index"], f["time"], [FaceResult(**face) for face in f["faces"]]) for f in data.pop("frames", [])]
        error, model, explanations = data.pop("error", None), data.pop("model", None), data.pop("explanations", None)
        provenance, work = data.pop("provenance", None), data.pop("work", None)
        tracks = [TrackResult(**t) for t in data.pop("tracks", [])]
        return cls(
            **data,
            error=ErrorInfo(**error) if error else None,
            model=ModelRef(**model) if model else None,
            work=Work(**work) if work else None,
            frames=frames,
            tracks=tracks,
            explanations=[Explanation(**e) for e in explanations] if explanations is not None else None,
            provenance=Provenance(**provenance) if provenance else None,
        )

    def to_row(self) -> dict[str, Any]:
        """One flat row (CSV_FIELDS): the verdict, not the per-face detail."""
        return {
            "path": self.path,
            "media": self.media,
            "status": self.status,
            "label": self.label or "",
            "confidence": self.confidence or "",
            "score": "" if self.score is None else f"{self.score:.4f}",
            "threshold": "" if self.threshold is None else self.threshold,
            "faces": self.face_count,
            "tracks": len(self.tracks),
            "error_type": self.error.type if self.error else "",
            "error_detail": self.error.detail if self.error else "",
            "model": f"{self.model.name}:{self.model.version}" if self.model else "",
            "total_ms": round(self.timings_ms.get("total", 0.0)),
        }
