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
import math
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, TypeVar

import numpy as np

from .aggregation import get_strategy, verdict_is_clear
from .backends import OnnxBackend, TorchBackend, default_device, make_backend
from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import ScoringConfig
from .errors import MediaError
from .explain import METHOD as EXPLAIN_METHOD
from .explain import encode_heatmap, gradcam, pick_faces
from .face_tracking import FaceFollower
from .faces import DetectedFace, FaceDetector, crop_box, crop_face
from .media import Frame, MediaStream, OpenVideo, Source, kind_from_name, open_media
from .orientation import Orientation, face_back, turn_image
from .prefetch import close_iterator, in_background
from .provenance import read_provenance
from .results import (
    ErrorInfo,
    Explanation,
    FaceResult,
    FrameResult,
    MediaKind,
    MediaResult,
    ModelRef,
    Provenance,
    TrackResult,
    Work,
)
from .tracker import link_tracks
from .tta import apply_tta, check_tta, near_threshold, tta_probability

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
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))  # P(fake) per crop; NaN: for finish to classify
    sampled: int = 0  # frames the sampling picked
    stopped: str = "all_frames"  # or "clear_verdict": early stopping kept only the first pass (model.results.Work)
    views: int = 0  # classifier views run so far
    searches: Counter = field(default_factory=Counter)  # face searches by kind: full, region, lost (model.face_tracking)
    provenance: Provenance | None = None
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
        tracker and aggregator. The file's Content Credentials are read
        beside them (``model.provenance``): the manifest only, never the score.
        """
        config = self.config.with_options(**options)
        media = open_media(source, name, frames=config.frames, sample_fps=config.sample_fps,
                           max_duration=config.max_duration, max_pixels=config.max_pixels)
        try:
            prepared = self._detect_and_crop(media, config, progress)
        finally:
            media.close()  # also when detection stopped before the read began
        t0 = time.perf_counter()
        prepared.provenance = _file_provenance(source)
        if prepared.provenance is not None:
            prepared.timings["provenance"] = (time.perf_counter() - t0) * 1000  # ~0.5 ms a JPEG, ~2 ms a clip
        return prepared

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
        scores = prepared.scores.copy() if len(prepared.scores) else np.full(len(prepared.crops), np.nan)
        todo = np.flatnonzero(np.isnan(scores))  # early stopping's first pass classified its crops already
        scores[todo], views = self._classify([prepared.crops[i] for i in todo], self._band(prepared.config), go_on)
        prepared.timings["classify"] += (time.perf_counter() - t0) * 1000
        result = self._assemble(prepared, prepared.frames, scores)
        result.work = Work(frames_sampled=prepared.sampled, frames_scored=len(prepared.frames), stopped=prepared.stopped,
                           faces=len(scores), views=prepared.views + views)
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
                           aggregation=self.config.aggregation, options=self.config.options(),
                           provenance=_file_provenance(source) if isinstance(exc, MediaError) else None)  # MediaError: read, not scored

    # -- stages ------------------------------------------------------------

    def _detect_and_crop(self, media: MediaStream, config: ScoringConfig, progress: Progress | None) -> Prepared:
        """Detect and crop each frame as the reader yields it.

        A video's frames are decoded up to ``decode_ahead`` frames ahead in a
        second thread, and that time counts as "decode" (so decode, detect
        and classify can add up to more than the total). Each frame's pixels
        are dropped once its faces are cropped, so memory holds crops, not frames.

        With ``early_stop``, a first pass (every ``stride``-th sampled frame,
        ``early_stop_frames`` of them) is detected and classified first while
        the frames between wait, decoded (so memory then holds up to about
        ``frames`` frames). If every counted track's score is then
        ``early_stop_margin`` or more from the threshold, reading stops there;
        else the waiting frames are detected in order, the first pass's faces
        taken as found, and reading goes on as without early stopping. With a
        stride of ``detect_every`` the faces are the same: those frames are
        full passes anyway.
        """
        name, frames, total = media.name, media.frames, media.total
        prepared = Prepared(name=name, media=media.kind, config=config, started=time.perf_counter() - media.decode_ms / 1000,
                            sampled=total)
        prepared.timings["decode"] = media.decode_ms
        follower = FaceFollower(self.detector, config)
        orientation = Orientation(self.detector, config.turn_probe_frames, config.min_face_px)
        found: dict[int, tuple[int, float, list[DetectedFace]]] = {}  # position -> (index, time, faces in file pixels)
        scored: dict[int, np.ndarray] = {}  # position -> its faces' scores, for the frames classified already
        cropped: dict[int, list[np.ndarray]] = {}  # position -> its face crops, for the frames cut already
        unfollowed: list[int] = []  # first-pass positions the follower has not taken in order yet
        first_faces: dict[int, list[DetectedFace]] = {}  # their faces
        crop, size = self.model_config.crop, self.model_config.input_size
        waiting: list[tuple[int, Frame, np.ndarray, float]] = []  # frames between the first pass's, until its verdict
        stride = _first_pass_stride(total, config) if media.kind == "video" else 0

        def detect(position: int, frame: Frame, small: np.ndarray, factor: float) -> None:
            t0 = time.perf_counter()
            with self._detect_lock:
                turned = turn_image(small, orientation.turn)
                search = follower.full_pass if stride else follower.find_scaled
                faces = orientation.probe(search(turned, factor), small, factor)
            if stride:
                first_faces[position] = faces  # as the follower takes them: in the turned frame's pixels
            prepared.timings["detect"] += (time.perf_counter() - t0) * 1000
            upright, turn = turn_image(frame.image, orientation.turn), orientation.turn
            cropped[position] = [crop_face(upright, f.box, crop, size) for f in faces]
            height, width = frame.image.shape[:2]
            found[position] = (frame.index, frame.time, [face_back(f, turn, height, width) for f in faces])
            if stride:
                unfollowed.append(position)
            if progress is not None and progress(len(found), total):
                raise ScoringCancelled(name)

        def detect_waiting() -> None:
            """The waiting frames in order, each first-pass frame before them followed as found."""
            for position, frame, small, factor in waiting:
                while unfollowed and unfollowed[0] < position:
                    follower.follow(first_faces.pop(unfollowed.pop(0)))
                detect(position, frame, small, factor)
            waiting.clear()
            for position in unfollowed:
                follower.follow(first_faces.pop(position))
            unfollowed.clear()

        # The detector's downscaled copy is made with the frame ("decode"), in the
        # decoder's thread when decoding ahead: that thread has time to spare.
        scaled = _timed(_with_copy(frames, self.detector), prepared.timings, "decode")
        if media.decoding and config.decode_ahead:
            scaled = in_background(scaled, config.decode_ahead, name="unmask-decode")
        last_first = (total - 1) // stride * stride if stride else -1
        with contextlib.closing(scaled):  # a cancelled or failed file stops its decoder at once
            for position, (frame, small, factor) in enumerate(scaled):
                if stride and position % stride:
                    waiting.append((position, frame, small, factor))
                    continue
                detect(position, frame, small, factor)
                if stride and position == last_first:
                    if self._first_pass_clear(prepared, found, cropped, scored):
                        break  # the other frames cannot change the verdict: read no further
                    stride = 0
                    detect_waiting()
            else:
                # Fewer frames came than the file announced: the first pass ended with them.
                if stride and not self._first_pass_clear(prepared, found, cropped, scored):
                    stride = 0
                    detect_waiting()
        self._keep(prepared, found, cropped, scored)
        prepared.searches = follower.searches
        log.debug("%s: searched %s", name, dict(follower.searches))
        return prepared

    def _first_pass_clear(self, prepared: Prepared, found: dict, cropped: dict, scored: dict) -> bool:
        """Classify the first pass's faces (``found`` so far; crops to ``cropped``, scores to ``scored``) and tell
        whether every counted track is clear of the threshold (``aggregation.verdict_is_clear``): the file stops here."""
        config = prepared.config
        positions = sorted(found)
        t0 = time.perf_counter()
        scores, views = self._classify([c for p in positions for c in cropped[p]], self._band(config))
        prepared.timings["classify"] += (time.perf_counter() - t0) * 1000
        prepared.views += views
        first = np.cumsum([0] + [len(cropped[p]) for p in positions])
        scored.update({p: scores[first[i] : first[i + 1]] for i, p in enumerate(positions)})
        result = self._assemble(prepared, [found[p] for p in positions], scores)
        counted = [t.score for t in result.tracks if t.counted]
        clear = result.status == "ok" and verdict_is_clear(counted, self.model_config.threshold, config.early_stop_margin)
        if clear:
            prepared.stopped = "clear_verdict"
        return clear

    @staticmethod
    def _keep(prepared: Prepared, found: dict, cropped: dict, scored: dict) -> None:
        """Put the ``found`` frames into ``prepared`` in order with their crops and the scores known so far (NaN for
        a crop ``finish`` classifies)."""
        positions = sorted(found)
        prepared.frames = [found[p] for p in positions]
        prepared.crops = [c for p in positions for c in cropped[p]]
        prepared.scores = np.concatenate([scored.get(p, np.full(len(cropped[p]), np.nan)) for p in positions] or [np.empty(0)])

    def classify(self, crops: list[np.ndarray], before_batch: Callable[[], None] | None = None) -> np.ndarray:
        """P(fake) for each RGB uint8 crop (input_size square): TTA averaged, the checkpoint's temperature applied.

        ``before_batch`` is called before each batch of ``batch_size`` crops (it may raise to stop).
        """
        return self._classify(crops, self._band(self.config), before_batch)[0]

    @staticmethod
    def _band(config: ScoringConfig) -> float | None:
        """Adaptive TTA's band for ``_classify`` (None: every view for every face)."""
        return config.adaptive_tta_band if config.adaptive_tta else None

    def _classify(self, crops: list[np.ndarray], band: float | None, before_batch: Callable[[], None] | None = None
                  ) -> tuple[np.ndarray, int]:
        """``classify``'s scores and the classifier views run; with a ``band`` (adaptive TTA) the views after the
        first only for faces whose first view's score is within ``band`` of the threshold (``tta.near_threshold``)."""
        temperature, threshold = self.model_config.temperature, self.model_config.threshold
        with self._classify_lock:
            out, views = [], 0
            for start in range(0, len(crops), self.config.batch_size):
                if before_batch is not None:
                    before_batch()
                batch = self.preprocess(crops[start : start + self.config.batch_size])
                if band is not None and len(self.tta) > 1:
                    plain = np.asarray(self.backend(apply_tta(self.tta[0], batch))).reshape(len(batch))
                    near = near_threshold(plain, temperature, threshold, band)
                    logits = np.repeat(plain[None], len(self.tta), axis=0)  # a far face: its plain view alone
                    if near.any():
                        rest = np.concatenate([apply_tta(t, batch[near]) for t in self.tta[1:]])
                        logits[1:, near] = np.asarray(self.backend(rest)).reshape(len(self.tta) - 1, int(near.sum()))
                    views += len(batch) + int(near.sum()) * (len(self.tta) - 1)
                else:
                    # Every TTA view of the chunk in one backend call: fewer, larger runs.
                    views_in = np.concatenate([apply_tta(t, batch) for t in self.tta])
                    logits = np.asarray(self.backend(views_in)).reshape(len(self.tta), len(batch))
                    views += logits.size
                out.append(tta_probability(logits, temperature))
            return (np.concatenate(out) if out else np.empty(0)), views

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

    def _assemble(self, prepared: Prepared, kept: list[tuple[int, float, list[DetectedFace]]], scores: np.ndarray) -> MediaResult:
        config = prepared.config
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
                      frames=frames_out, tracks=tracks, options=config.options(prepared.media), provenance=prepared.provenance)
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


def _file_provenance(source: Source) -> Provenance | None:
    """The Content Credentials of a source that is a file (path, bytes, open video); None for decoded pixels."""
    if isinstance(source, OpenVideo):
        source = source.path
    return read_provenance(source) if isinstance(source, (str, Path, bytes)) else None


def _first_pass_stride(total: int, config: ScoringConfig) -> int:
    """Early stopping's first pass is every stride-th sampled frame (0: no first pass, all frames in order)."""
    if not config.early_stop or total <= config.early_stop_frames:
        return 0
    return math.ceil(total / config.early_stop_frames)


def _guess_kind(source: Source) -> MediaKind:
    """Best guess of image/video for an error record of a source we could not sniff."""
    if isinstance(source, (str, Path)):
        return kind_from_name(source)
    return "image" if isinstance(source, (bytes, np.ndarray)) else "video"
