"""The predictor: file -> frames -> faces -> crops -> TTA scores -> MediaResult.

One object, loaded once, used by the CLI, the API, jobs, batch scoring and
eval. Every stage is timed. Locks make one Predictor safe to share across
threads (the service runs inference outside the event loop).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .aggregation import get_strategy
from .backends import OnnxBackend, TorchBackend, default_device, export_onnx
from .checkpoint import CheckpointInfo, load_checkpoint, resolve_checkpoint
from .errors import MediaError
from .faces import DetectedFace, FaceDetector, crop_face
from .media import Frame, probe_video, read_image, read_video, sample_indices, sniff_file
from .results import FaceResult, FrameResult, MediaResult, ModelRef, TrackResult
from .tracker import link_tracks
from .tta import apply_tta, check_tta

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
Progress = Callable[[int, int], bool]  # (frames done, frames total) -> stop?


class ScoringCancelled(Exception):
    """A progress callback asked the predictor to stop."""


def cache_dir() -> Path:
    return Path(os.environ.get("UNMASK_CACHE_DIR", Path.home() / ".cache" / "unmask"))


@dataclass
class Prepared:
    """A file after detection and cropping, waiting for the classifier."""

    name: str
    media: str
    started: float
    frames: list[tuple[int, float, list[DetectedFace]]] = field(default_factory=list)  # (index, time, faces)
    crops: list[np.ndarray] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))


class Predictor:
    """Scores images and videos with one checkpoint.

    Args:
        checkpoint: bundled model name or checkpoint path (None: the default model).
        device: "cuda" or "cpu" (None: CUDA when present).
        backend: "torch", "onnx" or "auto" (ONNX Runtime on CPU, where it is
            ~3x faster than eager PyTorch; PyTorch on CUDA).
        onnx_path: an exported ONNX file; without it one is exported once into
            the cache (``$UNMASK_CACHE_DIR``) keyed by the weights' hash.
        aggregation: strategy for a track's score (see model.aggregation).
        frames: frames sampled evenly from a video (ignored when ``sample_fps``).
        sample_fps: sample this many frames per second instead.
        tta: test-time augmentations (None: the checkpoint's own).
        batch_size: faces per inference batch.
        max_pixels: images or video frames larger than this are refused.
        max_duration: videos longer than this (seconds) are refused.
        detector: a FaceDetector to share (None: a new one on ``device``).
        min_track_fraction: a track seen in fewer than this fraction of the
            sampled frames is reported but does not set the file's score.
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str | None = None,
        backend: str = "auto",
        onnx_path: str | Path | None = None,
        aggregation: str = "confident",
        frames: int = 32,
        sample_fps: float | None = None,
        tta: Iterable[str] | None = None,
        batch_size: int = 16,
        max_pixels: int = 50_000_000,
        max_duration: float | None = None,
        detector: FaceDetector | None = None,
        min_track_fraction: float = 0.25,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        self.device = device or default_device()
        self.weights_path = resolve_checkpoint(checkpoint)
        model, self.info = load_checkpoint(self.weights_path)
        self.config = self.info.config
        self.aggregation = aggregation
        self._aggregate = get_strategy(aggregation)
        self.tta = check_tta(tta if tta is not None else self.config.tta)
        self.frames, self.sample_fps = frames, sample_fps
        self.min_track_fraction = min_track_fraction
        self.batch_size = batch_size
        self.max_pixels, self.max_duration = max_pixels, max_duration
        if backend == "auto":
            backend = "torch" if self.device == "cuda" else "onnx"
        if backend == "onnx":
            path = Path(onnx_path) if onnx_path else self._cached_onnx(model)
            self.backend: TorchBackend | OnnxBackend = OnnxBackend(path, self.device)
        else:
            self.backend = TorchBackend(model, self.device)
        self.detector = detector or FaceDetector(device=self.device)
        self._mean = np.array(self.config.mean, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0
        self._std = np.array(self.config.std, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0
        # Two locks, not one: detection of the next file may run while this
        # one is classified (see model.pipeline), each stage one at a time.
        self._detect_lock = threading.Lock()
        self._classify_lock = threading.Lock()

    @property
    def model_ref(self) -> ModelRef:
        return ModelRef(self.info.name, self.info.version, self.config.architecture)

    def warmup(self) -> None:
        """Run detection and classification once so the first request is not slow."""
        blank = np.zeros((self.config.input_size, self.config.input_size, 3), dtype=np.uint8)
        with self._detect_lock:
            self.detector.detect(blank)
        self.classify([blank])

    # -- whole files -------------------------------------------------------

    def score_file(self, path: str | Path, name: str | None = None) -> MediaResult:
        """Score an image or video file; a bad file becomes an ``error`` record."""
        try:
            return self.score_media(path, name)
        except (MediaError, OSError) as exc:
            return self.error_record(path, exc, name)

    def score_media(self, path: str | Path, name: str | None = None) -> MediaResult:
        """Score an image or video file; raises MediaError for a bad file."""
        return self.finish(self.prepare_file(path, name))

    def prepare_file(self, path: str | Path, name: str | None = None, progress: Progress | None = None) -> "Prepared":
        """Sniff, decode, detect and crop a file; raises MediaError for a bad file.

        ``progress(done, total)`` is called after each frame; when it returns
        True the work stops with ScoringCancelled.
        """
        name = name or str(path)
        media, _ = sniff_file(path)
        if media == "image":
            started = time.perf_counter()
            frame = read_image(path, self.max_pixels)
            return self.prepare([frame], name, "image", (time.perf_counter() - started) * 1000, progress, 1)
        info = probe_video(path)
        total = len(sample_indices(info.frame_count, info.fps, self.frames, self.sample_fps))
        frames = read_video(path, self.frames, self.sample_fps, self.max_duration, self.max_pixels)
        return self.prepare(frames, name, "video", progress=progress, total=total)

    def error_record(self, path: str | Path, exc: Exception, name: str | None = None) -> MediaResult:
        """The ``error`` record for a file that failed with ``exc``."""
        name = name or str(path)
        if isinstance(exc, MediaError):
            kind, detail = exc.kind, exc.detail
        elif isinstance(exc, OSError):
            kind, detail = "unreadable", f"cannot read the file: {exc.strerror or exc}"
        else:
            raise exc
        return MediaResult.failed(name, _guess_kind(path), kind, detail, model=self.model_ref)

    def score_image(self, image: np.ndarray, name: str = "image") -> MediaResult:
        """Score one RGB uint8 array."""
        return self.score_frames([Frame(0, 0.0, image)], name, "image")

    def score_frames(self, frames: Iterable[Frame], name: str, media: str, decode_ms: float = 0.0) -> MediaResult:
        """Detect, crop, classify and aggregate an iterable of frames."""
        return self.finish(self.prepare(frames, name, media, decode_ms))

    def prepare(
        self,
        frames: Iterable[Frame],
        name: str,
        media: str,
        decode_ms: float = 0.0,
        progress: Progress | None = None,
        total: int = 0,
    ) -> "Prepared":
        """Decode, detect and crop: everything before the classifier.

        The iterable is consumed lazily (video decoding is timed as "decode");
        each frame's pixels are dropped once its faces are cropped, so memory
        holds crops, not frames.
        """
        prepared = Prepared(name=name, media=media, started=time.perf_counter() - decode_ms / 1000)
        prepared.timings["decode"] = decode_ms
        iterator = iter(frames)
        while True:
            t0 = time.perf_counter()
            frame = next(iterator, None)
            prepared.timings["decode"] += (time.perf_counter() - t0) * 1000
            if frame is None:
                return prepared
            t0 = time.perf_counter()
            with self._detect_lock:
                faces = self.detector.detect(frame.image)
            prepared.timings["detect"] += (time.perf_counter() - t0) * 1000
            prepared.crops.extend(crop_face(frame.image, f.box, self.config.crop, self.config.input_size) for f in faces)
            prepared.frames.append((frame.index, frame.time, faces))
            if progress is not None and progress(len(prepared.frames), total):
                raise ScoringCancelled(name)

    def finish(self, prepared: "Prepared") -> MediaResult:
        """Classify the prepared crops and assemble the record."""
        t0 = time.perf_counter()
        scores = self.classify(prepared.crops) if prepared.crops else np.empty(0)
        prepared.timings["classify"] = (time.perf_counter() - t0) * 1000
        result = self._assemble(prepared.frames, scores, prepared.name, prepared.media)
        result.timings_ms = dict(prepared.timings, total=(time.perf_counter() - prepared.started) * 1000)
        return result

    # -- faces -------------------------------------------------------------

    def classify(self, crops: list[np.ndarray]) -> np.ndarray:
        """P(fake) for each RGB uint8 crop (input_size square), TTA averaged."""
        with self._classify_lock:
            return self._classify_locked(crops)

    def _classify_locked(self, crops: list[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = self.preprocess(crops[start : start + self.batch_size])
            probs = [_sigmoid(self.backend(apply_tta(t, batch))) for t in self.tta]
            out.append(np.mean(probs, axis=0))
        return np.concatenate(out) if out else np.empty(0)

    def preprocess(self, crops: list[np.ndarray]) -> np.ndarray:
        batch = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)
        return (batch - self._mean) / self._std

    # -- assembly ----------------------------------------------------------

    def _assemble(self, kept: list[tuple[int, float, list[DetectedFace]]], scores: np.ndarray, name: str, media: str) -> MediaResult:
        track_ids = link_tracks([[f.box for f in faces] for _, _, faces in kept])
        frames_out: list[FrameResult] = []
        by_track: dict[int, list[tuple[float, float]]] = defaultdict(list)  # id -> (time, score)
        cursor = 0
        for (index, when, faces), ids in zip(kept, track_ids, strict=True):
            face_results = []
            for face, track in zip(faces, ids, strict=True):
                score = float(scores[cursor])
                cursor += 1
                face_results.append(
                    FaceResult(
                        box=[round(float(v), 1) for v in face.box],
                        detection=round(face.probability, 4),
                        landmarks=[[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],
                        score=round(score, 4),
                        track=track,
                    )
                )
                by_track[track].append((when, score))
            frames_out.append(FrameResult(index=index, time=when, faces=face_results))
        # Tracks seen in under min_track_fraction of the frames do not set the
        # verdict (unless no track is seen that often).
        needed = self.min_track_fraction * len(kept)
        persistent = {tid for tid, members in by_track.items() if len(members) >= needed}
        tracks = [
            TrackResult(
                id=tid,
                score=round(self._aggregate([s for _, s in members]), 4),
                frames=len(members),
                start=members[0][0],
                end=members[-1][0],
                counted=tid in persistent or not persistent,
            )
            for tid, members in sorted(by_track.items())
        ]
        common = dict(
            path=name,
            media=media,
            model=self.model_ref,
            threshold=self.config.threshold,
            aggregation=self.aggregation,
            frames=frames_out,
            tracks=tracks,
        )
        if not tracks:
            return MediaResult(status="no_face", **common)  # type: ignore[arg-type]
        return MediaResult(status="ok", score=max(t.score for t in tracks if t.counted), **common)  # type: ignore[arg-type]

    def _cached_onnx(self, model) -> Path:
        digest = hashlib.sha256(self.weights_path.read_bytes()).hexdigest()[:16]
        path = cache_dir() / f"{self.info.name}-{self.info.version}-{digest}.onnx"
        if not path.is_file():
            log.info("exporting %s to ONNX at %s (once)", self.info.name, path)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            export_onnx(model, self.config.input_size, tmp)
            tmp.replace(path)  # atomic: concurrent workers never read half a file
        return path


def _guess_kind(path: str | Path) -> str:
    """Best guess of image/video for an error record of a file we could not sniff."""
    return "video" if Path(path).suffix.lower() in {".mp4", ".mov", ".webm", ".mkv", ".avi"} else "image"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


__all__ = ["Predictor", "CheckpointInfo"]
