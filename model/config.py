"""The per-model configuration that training writes and serving reads.

One dataclass holds everything a checkpoint needs to be used the same way it
was trained: input size, normalisation, how faces are cropped, the decision
threshold and the test-time augmentations.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Callable

from .backbones import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, get_backbone
from .options import OPTION_NAMES


@dataclass
class CropConfig:
    """How a square face crop is cut around a detector box.

    The crop side is ``scale * max(box_w, box_h)`` and its centre sits
    ``shift_y * side`` below the box centre. The defaults reproduce the tight
    DFDC training crops from MTCNN boxes (see docs/crop_geometry.md).
    """

    scale: float = 0.85
    shift_y: float = 0.04

    def __post_init__(self) -> None:
        self.scale = _real("crop scale", self.scale, lambda v: 0.3 <= v <= 3.0, "[0.3, 3.0]")
        self.shift_y = _real("crop shift_y", self.shift_y, lambda v: -0.5 <= v <= 0.5, "[-0.5, 0.5]")


UNCERTAIN_LEVEL = 0.7  # by default an uncertain band holds the scores whose decisions are right for under 70%


@dataclass
class ModelConfig:
    """What a checkpoint must say about itself to be served correctly.

    The served score of a face is ``mean over tta of sigmoid(logit / temperature)``.
    A file whose score lies in ``uncertain_band`` (inclusive) gets a low-confidence
    verdict; ``unmask eval --calibrate uncertain`` fits the band
    (``training.calibration.fit_uncertain_band``) and states the accuracy
    ``uncertain_level`` it was fitted for.
    """

    architecture: str
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop: CropConfig = field(default_factory=CropConfig)
    threshold: float = 0.5
    tta: tuple[str, ...] = ("identity", "hflip")
    temperature: float = 1.0  # logits are divided by it before the sigmoid (fitted on validation logits)
    uncertain_band: tuple[float, float] | None = None  # [lo, hi] around the threshold: scores of low confidence
    uncertain_level: float | None = None  # the band holds the validation scores whose decision is right for under this share

    def __post_init__(self) -> None:
        # Checkpoint metadata arrives here from JSON: types are checked as well as
        # ranges, so a bad file fails when read instead of scoring wrongly later.
        from .tta import FLIP_AXES

        if not isinstance(self.architecture, str) or self.architecture not in BACKBONES:
            raise ValueError(f"architecture: unknown {self.architecture!r}; known: {', '.join(BACKBONES.names())}")
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, numbers.Integral) \
                or not 32 <= self.input_size <= 1024:
            raise ValueError(f"input_size: {self.input_size!r} is not a whole number in [32, 1024]")
        self.input_size = int(self.input_size)
        self.mean = _rgb("mean", self.mean, lambda v: 0.0 <= v <= 1.0, "[0, 1]")
        self.std = _rgb("std", self.std, lambda v: 0.0 < v <= 1.0, "(0, 1]")
        if isinstance(self.crop, dict) and set(self.crop) <= {"scale", "shift_y"}:
            self.crop = CropConfig(**self.crop)
        if not isinstance(self.crop, CropConfig):
            raise ValueError(f"crop: {self.crop!r} is not an object with scale and shift_y")
        self.threshold = _real("threshold", self.threshold, lambda v: 0.0 < v < 1.0, "(0, 1)")
        if isinstance(self.tta, str) or not isinstance(self.tta, (list, tuple)) or not self.tta \
                or not all(isinstance(name, str) and name in FLIP_AXES for name in self.tta):
            raise ValueError(f"tta: {self.tta!r} is not a non-empty list of {', '.join(FLIP_AXES)}")
        self.tta = tuple(self.tta)
        self.temperature = _real("temperature", self.temperature, lambda v: 0.05 <= v <= 20.0, "[0.05, 20]")
        if self.uncertain_band is not None:
            band = self.uncertain_band
            if isinstance(band, str) or not isinstance(band, (list, tuple)) or len(band) != 2:
                raise ValueError(f"uncertain_band: {band!r} is not a list of two numbers [lo, hi]")
            lo = _real("uncertain_band", band[0], lambda v: 0.0 <= v <= self.threshold, f"[0, threshold {self.threshold}]")
            hi = _real("uncertain_band", band[1], lambda v: self.threshold <= v <= 1.0, f"[threshold {self.threshold}, 1]")
            self.uncertain_band = (lo, hi)
        if self.uncertain_level is not None:
            self.uncertain_level = _real("uncertain_level", self.uncertain_level, lambda v: 0.0 < v <= 1.0, "(0, 1]")

    def band_for(self, margin: float | None) -> list[float] | None:
        """The uncertain band a request uses: the checkpoint's (``margin`` None), none (0), or threshold +- margin.

        A margin's band is clipped to [0, 1]. The record reports the band used (``MediaResult.uncertain_band``),
        rounded to 4 decimals as its scores are, so its confidence follows from its own figures.
        """
        if margin is None:
            band = self.uncertain_band
        elif margin == 0:
            band = None
        else:
            band = (max(0.0, self.threshold - margin), min(1.0, self.threshold + margin))
        return None if band is None else [round(band[0], 4), round(band[1], 4)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ValueError(f"config: {data!r} is not an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"config: unknown keys {sorted(unknown)}")
        missing = {"architecture", "input_size"} - set(data)
        if missing:
            raise ValueError(f"config: missing keys {sorted(missing)}")
        return cls(**data)


def _real(name: str, value: object, ok: Callable[[float], bool], where: str) -> float:
    """``value`` as a float when it is a real number that is ``ok``; else ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):  # NaN fails every ok
        raise ValueError(f"{name}: {value!r} is not a number in {where}")
    return float(value)


def _rgb(name: str, values: object, ok: Callable[[float], bool], where: str) -> tuple[float, float, float]:
    """Three real numbers (R, G, B), each ``ok``; else ValueError naming the field."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)) or len(values) != 3:
        raise ValueError(f"{name}: {values!r} is not a list of three numbers (RGB)")
    return tuple(_real(name, v, ok, where) for v in values)  # type: ignore[return-value]


BACKENDS = ("auto", "torch", "onnx")
DEVICES = ("cpu", "cuda")
PER_REQUEST = OPTION_NAMES  # what one request may change (model.options.ScoringOptions)
VIDEO_ONLY = ("frames", "sample_fps", "aggregation", "early_stop")  # options an image's record leaves out


@dataclass(frozen=True)
class ScoringConfig:
    """How files are scored: every default of the scoring path, stated once.

    The service settings, the CLI, Ray actors, ``unmask extract`` and file
    eval each build one of these (like ultralytics' ``cfg/default.yaml``);
    nothing else restates a default. ``with_options`` gives the copy one
    request asks for (frames, sample rate, aggregation, explain).
    """

    frames: int = 32  # frames sampled evenly per video
    sample_fps: float | None = None  # or this many frames per second
    aggregation: str = "confident"  # a track's score from its faces (model.aggregation)
    min_track_fraction: float = 0.25  # tracks seen in fewer of the sampled frames do not set the verdict
    explain: bool = False  # add Grad-CAM heat maps for the top faces (torch backend)
    explain_faces: int = 4  # at most this many heat maps per file
    backend: str = "auto"  # torch, onnx; auto: ONNX Runtime on CPU, PyTorch on CUDA
    device: str | None = None  # cpu, cuda; None: CUDA when present
    batch_size: int = 16  # faces per classifier call (each call carries their TTA views: 32 images)
    tta: tuple[str, ...] | None = None  # None: the checkpoint's own
    max_pixels: int = 50_000_000  # larger images or video frames are refused
    max_duration: float | None = None  # longer videos (seconds) are refused; None: no limit
    # Face detection (MTCNN). Its smallest face sets its cost: on a 960 px DFDC
    # frame, 20 px cost 1.5 s, 24 px 151 ms and 30 px 93 ms a frame (measured here).
    detect_max_side: int = 960  # MTCNN sees a copy downscaled to this longer side
    detect_min_face: int = 30  # MTCNN's smallest face, in pixels of that copy
    min_face_size: int = 32  # faces whose shorter side is under this (original pixels) are dropped
    min_face_probability: float = 0.9  # detections below this are dropped (false faces)
    max_faces: int = 16  # per frame, most confident first
    detect_threads: int = 1  # torch threads for MTCNN (its ops are small: one thread, the other core decodes ahead)
    # MTCNN computed unmask's way (model/mtcnn_regions.py): pyramid levels and RNet/ONet crops
    # summed from an integral image, nets in channels-last layout. Same boxes, about 2x faster
    # on CPU. False: facenet-pytorch's detect_face as shipped (the reference in bench/).
    fast_mtcnn: bool = True
    # Videos: detection on fewer pixels (model/face_tracking.py). Full-frame MTCNN
    # on the first sampled frame, every detect_every-th and where a followed face
    # is lost; in between, MTCNN on a region around each face of the previous frame.
    detect_every: int = 4  # 1: full-frame detection on every sampled frame; a newcomer waits at most this - 1 frames
    track_margin: float = 1.0  # a face's region: its box grown by this many box sides on each side
    # In a followed face's region, MTCNN's smallest face = this fraction of that face's
    # size (0: detect_min_face there too); full passes always use detect_min_face.
    region_min_face: float = 0.5
    decode_ahead: int = 4  # video frames decoded ahead of detection, in a second thread (0: decode in line)
    # A file without rotation metadata but filmed or stored turned: while no face is found upright, the first
    # this many sampled frames are searched turned by 180, 90 and 270 degrees too (model/orientation.py; 0: never).
    turn_probe_frames: int = 3
    # Shortcuts: less work where it cannot change the verdict (docs/speed.md has the figures). Each one a request can
    # switch; the record's ``work`` says what was done.
    early_stop: bool = False  # score a first pass of early_stop_frames frames; stop there if the verdict is clear
    early_stop_frames: int = 8  # the first pass: this many of the sampled frames, evenly spread
    early_stop_margin: float = 0.15  # clear: every counted track's first-pass score at least this far from the threshold
    min_face_px: int = 0  # MTCNN's smallest face in the file's pixels (never below detect_min_face in its copy); 0: off
    adaptive_tta: bool = False  # the checkpoint's other TTA views only for faces whose plain score is near the threshold
    adaptive_tta_band: float = 0.4  # near: the plain (identity) score within this of the threshold
    # Files scored in a band around the threshold get confidence "low" (MediaResult.confidence). None: the checkpoint's
    # band (ModelConfig.uncertain_band, none if it has none); 0: no band; else threshold +- this margin.
    uncertain_margin: float | None = None

    def __post_init__(self) -> None:
        from .aggregation import STRATEGIES  # here: aggregation is a leaf module, config is imported everywhere

        if self.tta is not None:
            object.__setattr__(self, "tta", tuple(self.tta))
        checks = [
            (self.frames >= 1, f"frames must be at least 1, not {self.frames}"),
            (self.sample_fps is None or self.sample_fps > 0, f"sample_fps must be positive, not {self.sample_fps}"),
            (self.aggregation in STRATEGIES, f"unknown aggregation {self.aggregation!r}; known: {', '.join(STRATEGIES.names())}"),
            (0.0 <= self.min_track_fraction <= 1.0, "min_track_fraction must be in [0, 1]"),
            (self.explain_faces >= 0, "explain_faces must not be negative"),
            (self.backend in BACKENDS, f"unknown backend {self.backend!r}; known: {', '.join(BACKENDS)}"),
            (self.device is None or self.device in DEVICES, f"unknown device {self.device!r}; known: {', '.join(DEVICES)}"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.max_pixels >= 1, "max_pixels must be positive"),
            (self.max_duration is None or self.max_duration > 0, "max_duration must be positive"),
            (self.detect_max_side >= 64 and self.detect_min_face >= 12, "detect_max_side >= 64 and detect_min_face >= 12"),
            (0.0 <= self.min_face_probability <= 1.0, "min_face_probability must be in [0, 1]"),
            (self.max_faces >= 1 and self.min_face_size >= 1, "max_faces and min_face_size must be at least 1"),
            (self.detect_every >= 1, "detect_every must be at least 1"),
            (self.detect_threads >= 1, "detect_threads must be at least 1"),
            (0.0 <= self.track_margin <= 4.0, "track_margin must be in [0, 4]"),
            (0.0 <= self.region_min_face < 1.0, "region_min_face must be in [0, 1)"),
            (self.decode_ahead >= 0, "decode_ahead must not be negative"),
            (self.turn_probe_frames >= 0, "turn_probe_frames must not be negative"),
            (self.early_stop_frames >= 1, "early_stop_frames must be at least 1"),
            (0.0 <= self.early_stop_margin <= 1.0, "early_stop_margin must be in [0, 1]"),
            (self.min_face_px >= 0, "min_face_px must not be negative"),
            (0.0 <= self.adaptive_tta_band <= 1.0, "adaptive_tta_band must be in [0, 1]"),
            (self.uncertain_margin is None or 0.0 <= self.uncertain_margin <= 0.5,
             f"uncertain_margin must be in [0, 0.5], not {self.uncertain_margin}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def with_options(self, **options) -> "ScoringConfig":
        """A copy with the per-request options given (None values are ignored)."""
        options = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(options) - set(PER_REQUEST))
        if unknown:
            raise ValueError(f"options {unknown} cannot be set per request; these can: {', '.join(PER_REQUEST)}")
        return dataclasses.replace(self, **options) if options else self

    def options(self, media: str = "video") -> dict:
        """The per-request options in force, as the record reports them: for an image only what applies to one
        (frames, their rate, a track's aggregation and early stopping are a video's)."""
        return {name: getattr(self, name) for name in PER_REQUEST if media != "image" or name not in VIDEO_ONLY}


def default_config(name: str) -> ModelConfig:
    """A ModelConfig with the architecture's native input size and normalisation (``model.backbones``)."""
    entry = get_backbone(name)
    return ModelConfig(architecture=name, input_size=entry.input_size, mean=entry.mean, std=entry.std)
