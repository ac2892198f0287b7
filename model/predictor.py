"""The predictor: file -> frames -> faces -> crops -> TTA scores -> MediaResult.

One object, loaded once, used by the CLI, the API, jobs, batch scoring and
eval. One public door, ``predict(source)``, plus the two stages a pipeline
needs (``prepare``: decode, detect, crop; ``finish``: classify, aggregate).
Every stage is timed. Locks make one Predictor safe to share across
threads (the service runs inference outside the event loop).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, TypeVar

import numpy as np

from .aggregation import get_strategy
from .backends import OnnxBackend, TorchBackend, default_device, make_backend
from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import ScoringConfig
from .errors import MediaError
from .explain import METHOD as EXPLAIN_METHOD
from .explain import encode_heatmap, gradcam, pick_faces
from .face_tracking import FaceFollower
from .faces import DetectedFace, FaceDetector, crop_box, crop_face
from .media import Frame, MediaStream, Source, kind_from_name, open_media
from .orientation import Orientation, face_back, turn_image
from .prefetch import close_iterator, in_background
from .results import ErrorInfo, Explanation, FaceResult, FrameResult, MediaKind, MediaResult, ModelRef, TrackResult
from .tracker import link_tracks
from .tta import apply_tta, check_tta, tta_probability

log = logging.getLogger(__name__)

Progress = Callable[[int, int], bool]  # (frames done, frames total) -> stop?


class ScoringCancelled(Exception):
    """A progress callback asked the predictor to stop."""


@dataclass
class Prepared:
    """A file after detection and cropping, waiting for the classifier."""

    name: str
    media: MediaKind
    config: ScoringConfig  # with this request's options
    started: float
    frames: list[tuple[int, float, list[DetectedFace]]] = field(default_factory=list)  # (index, time, faces)
    crops: list[np.ndarray] = field(default_factory=list)
    searches: Counter = field(default_factory=Counter)  # face searches by kind: full, region, lost (model.face_tracking)
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))


class Predictor:
    """Scores images and videos with one checkpoint.

    Args:
        checkpoint: bundled model name or checkpoint path (None: the default model).
        config: how to score (frames, aggregation, backend, device, detector
            knobs, limits); None: the defaults of ScoringConfig.
        detector: a FaceDetector to share (None: a new one from ``config``).
        onnx_path: an exported ONNX file; without it one is exported once into
            the cache (``$UNMASK_CACHE_DIR``) keyed by the weights' hash.
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        config: ScoringConfig | None = None,
        *,
        detector: FaceDetector | None = None,
        onnx_path: str | Path | None = None,
    ) -> None:
        self.config = config or ScoringConfig()
        self.device = self.config.device or default_device()
        self.weights_path = resolve_checkpoint(checkpoint)
        model, self.info = load_checkpoint(self.weights_path)
        self.model_config = self.info.config
        self.tta = check_tta(self.config.tta if self.config.tta is not None else self.model_config.tta)
        self.backend: TorchBackend | OnnxBackend = make_backend(model, self.model_config, self.device, self.config.backend,
                                                                onnx_path=onnx_path, weights=self.weights_path)
        self.torch_model = model  # kept for Grad-CAM heat maps (explain), whatever the backend
        self.detector = detector or FaceDetector(self.config, device=self.device)
        self._mean = np.array(self.model_config.mean, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0
        self._std = np.array(self.model_config.std, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0
        # Two locks, not one: detection of the next file may run while this
        # one is classified (see model.pipeline), each stage one at a time.
        self._detect_lock = threading.Lock()
        self._classify_lock = threading.Lock()

    @property
    def model_ref(self) -> ModelRef:
        return ModelRef(self.info.name, self.info.version, self.model_config.architecture)

    def warmup(self) -> None:
        """Run detection and classification once so the first request is not slow."""
        blank = np.zeros((self.model_config.input_size, self.model_config.input_size, 3), dtype=np.uint8)
        with self._detect_lock:
            self.detector.detect(blank)
        self.classify([blank])

    # -- the door ----------------------------------------------------------

    def predict(
        self,
        source: Source,
        name: str | None = None,
        *,
        progress: Progress | None = None,
        on_error: Literal["raise", "record"] = "raise",
        **options,
    ) -> MediaResult:
        """Score one image or video.

        Args:
            source: a file path, the file's bytes, an RGB uint8 image array,
                a sequence of decoded Frames (a video), or an ``OpenVideo``
                (a video already opened, e.g. by the service's checks: read
                from that one open, and closed when done).
            name: what the record's ``path`` says (default: the path).
            progress: called with (frames done, total) after each frame; when
                it returns True the work stops with ScoringCancelled.
            on_error: "raise" a MediaError for a file that cannot be scored,
                or return its "error" record.
            options: per-request options (frames, sample_fps, aggregation, explain).
        """
        try:
            return self.finish(self.prepare(source, name, progress=progress, **options), progress)
        except (MediaError, OSError) as exc:
            if on_error == "raise":
                raise
            return self.error_record(source, exc, name)

    def prepare(self, source: Source, name: str | None = None, *, progress: Progress | None = None, **options) -> Prepared:
        """Decode, detect and crop: everything before the classifier. Raises MediaError for a bad file.

        The stages in order: the reader (``open_media``: whatever the source
        is, frames to read), then the detector and cropper on each frame as
        it comes (``_detect_and_crop``); ``finish`` runs the classifier,
        tracker and aggregator.
        """
        config = self.config.with_options(**options)
        media = open_media(source, name, frames=config.frames, sample_fps=config.sample_fps,
                           max_duration=config.max_duration, max_pixels=config.max_pixels)
        try:
            return self._detect_and_crop(media, config, progress)
        finally:
            media.close()  # also when detection stopped before the read began

    def finish(self, prepared: Prepared, progress: Progress | None = None) -> MediaResult:
        """Classify the prepared crops and assemble the record.

        ``progress`` (as given to ``prepare``) is asked again before each
        classifier batch and before the heat maps, so a cancel, a timeout or
        a shut-down that comes after the last frame still stops the work.
        """

        def go_on() -> None:
            done = len(prepared.frames)
            if progress is not None and progress(done, done):
                raise ScoringCancelled(prepared.name)

        t0 = time.perf_counter()
        scores = self.classify(prepared.crops, before_batch=go_on) if prepared.crops else np.empty(0)
        prepared.timings["classify"] = (time.perf_counter() - t0) * 1000
        result = self._assemble(prepared, scores)
        if prepared.config.explain:
            go_on()
            t0 = time.perf_counter()
            result.explanations = self._explain(prepared, result)
            prepared.timings["explain"] = (time.perf_counter() - t0) * 1000
        timings = dict(prepared.timings, total=(time.perf_counter() - prepared.started) * 1000)
        result.timings_ms = {stage: round(ms, 1) for stage, ms in timings.items()}  # the same record on every route
        return result

    def error_record(self, source: Source, exc: Exception, name: str | None = None) -> MediaResult:
        """The ``error`` record for a source that failed with ``exc`` (a MediaError or OSError)."""
        if isinstance(exc, MediaError):
            kind, detail = exc.kind, exc.detail
        elif isinstance(exc, OSError):
            kind, detail = "unreadable", f"cannot read the file: {exc.strerror or exc}"
        else:
            raise exc
        label = name or (str(source) if isinstance(source, (str, Path)) else "upload")
        return MediaResult(path=label, media=_guess_kind(source), status="error", error=ErrorInfo(kind, detail),
                           model=self.model_ref, threshold=self.model_config.threshold,
                           uncertain_band=self.model_config.band_for(self.config.uncertain_margin),
                           aggregation=self.config.aggregation, options=self.config.options())

    # -- stages ------------------------------------------------------------

    def _detect_and_crop(self, media: MediaStream, config: ScoringConfig, progress: Progress | None) -> Prepared:
        """Detect and crop each frame as the reader yields it.

        A video's frames are decoded up to ``decode_ahead`` frames ahead in a
        second thread, and that time counts as "decode" (so decode, detect
        and classify can add up to more than the total). Each frame's pixels
        are dropped once its faces are cropped, so memory holds crops, not frames.
        """
        name, frames, total = media.name, media.frames, media.total
        prepared = Prepared(name=name, media=media.kind, config=config, started=time.perf_counter() - media.decode_ms / 1000)
        prepared.timings["decode"] = media.decode_ms
        crop, size = self.model_config.crop, self.model_config.input_size
        follower = FaceFollower(self.detector, config)
        orientation = Orientation(self.detector, config.turn_probe_frames)
        # The detector's downscaled copy is made with the frame ("decode"), in the
        # decoder's thread when decoding ahead: that thread has time to spare.
        scaled = _timed(_with_copy(frames, self.detector), prepared.timings, "decode")
        if media.decoding and config.decode_ahead:
            scaled = in_background(scaled, config.decode_ahead, name="unmask-decode")
        with contextlib.closing(scaled):  # a cancelled or failed file stops its decoder at once
            for frame, small, factor in scaled:
                t0 = time.perf_counter()
                with self._detect_lock:
                    faces = orientation.probe(follower.find_scaled(turn_image(small, orientation.turn), factor), small, factor)
                prepared.timings["detect"] += (time.perf_counter() - t0) * 1000
                upright = turn_image(frame.image, orientation.turn)
                prepared.crops.extend(crop_face(upright, f.box, crop, size) for f in faces)
                height, width = frame.image.shape[:2]
                prepared.frames.append((frame.index, frame.time, [face_back(f, orientation.turn, height, width) for f in faces]))
                if progress is not None and progress(len(prepared.frames), total):
                    raise ScoringCancelled(name)
        prepared.searches = follower.searches
        log.debug("%s: searched %s", name, dict(follower.searches))
        return prepared

    def classify(self, crops: list[np.ndarray], before_batch: Callable[[], None] | None = None) -> np.ndarray:
        """P(fake) for each RGB uint8 crop (input_size square): TTA averaged, the checkpoint's temperature applied.

        ``before_batch`` is called before each batch of ``batch_size`` crops (it may raise to stop).
        """
        with self._classify_lock:
            out = []
            for start in range(0, len(crops), self.config.batch_size):
                if before_batch is not None:
                    before_batch()
                batch = self.preprocess(crops[start : start + self.config.batch_size])
                # Every TTA view of the chunk in one backend call: fewer, larger runs.
                views = np.concatenate([apply_tta(t, batch) for t in self.tta])
                logits = np.asarray(self.backend(views)).reshape(len(self.tta), len(batch))
                out.append(tta_probability(logits, self.model_config.temperature))
            return np.concatenate(out) if out else np.empty(0)

    def _explain(self, prepared: Prepared, result: MediaResult) -> list[Explanation]:
        """Grad-CAM maps (torch model) of the top faces of the tracks that set the verdict."""
        picks = pick_faces(result.frames, result.tracks, prepared.config.explain_faces)
        if not picks:
            return []
        first_crop = np.cumsum([0] + [len(faces) for _, _, faces in prepared.frames])  # frame position -> its first crop
        crops = [prepared.crops[first_crop[f] + k] for f, k in picks]
        with self._classify_lock:  # Grad-CAM hooks the model the torch backend also classifies with
            maps = gradcam(self.torch_model, self.preprocess(crops))
        crop = self.model_config.crop
        return [
            Explanation(frame=f, face=k, method=EXPLAIN_METHOD, heatmap=encode_heatmap(heatmap),
                        crop=[round(float(v), 1) for v in crop_box(prepared.frames[f][2][k].box, crop)])
            for (f, k), heatmap in zip(picks, maps)
        ]

    def preprocess(self, crops: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 crops -> normalised float32 NCHW batch."""
        batch = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)
        return (batch - self._mean) / self._std

    # -- assembly ----------------------------------------------------------

    def _assemble(self, prepared: Prepared, scores: np.ndarray) -> MediaResult:
        config, kept = prepared.config, prepared.frames
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
        needed = config.min_track_fraction * len(kept)
        persistent = {tid for tid, members in by_track.items() if len(members) >= needed}
        aggregate = get_strategy(config.aggregation)
        tracks = [
            TrackResult(
                id=tid,
                score=round(aggregate([s for _, s in members]), 4),
                frames=len(members),
                start=members[0][0],
                end=members[-1][0],
                counted=tid in persistent or not persistent,
            )
            for tid, members in sorted(by_track.items())
        ]
        common = dict(path=prepared.name, media=prepared.media, model=self.model_ref, threshold=self.model_config.threshold,
                      uncertain_band=self.model_config.band_for(config.uncertain_margin), aggregation=config.aggregation,
                      frames=frames_out, tracks=tracks, options=config.options(prepared.media))
        if not tracks:
            return MediaResult(status="no_face", **common)  # type: ignore[arg-type]
        return MediaResult(status="ok", score=max(t.score for t in tracks if t.counted), **common)  # type: ignore[arg-type]


T = TypeVar("T")


def _timed(items: Iterable[T], timings: dict[str, float], stage: str) -> Iterator[T]:
    """Yield ``items``, adding the milliseconds each takes to come to ``timings[stage]``."""
    iterator = iter(items)
    try:
        while True:
            t0 = time.perf_counter()
            item = next(iterator, _END)
            timings[stage] += (time.perf_counter() - t0) * 1000
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        close_iterator(iterator)


_END = object()


def _with_copy(frames: Iterable[Frame], detector: FaceDetector) -> Iterator[tuple[Frame, np.ndarray, float]]:
    """Each frame with the copy the detector searches and its scale factor."""
    iterator = iter(frames)
    try:
        for frame in iterator:
            yield (frame, *detector.downscale(frame.image))
    finally:
        close_iterator(iterator)


def _guess_kind(source: Source) -> MediaKind:
    """Best guess of image/video for an error record of a source we could not sniff."""
    if isinstance(source, (str, Path)):
        return kind_from_name(source)
    return "image" if isinstance(source, (bytes, np.ndarray)) else "video"
