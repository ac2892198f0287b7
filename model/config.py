"""The per-model configuration that training writes and serving reads.

One dataclass holds everything a checkpoint needs to be used the same way it
was trained: input size, normalisation, how faces are cropped, the decision
threshold and the test-time augmentations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
        if not 0.3 <= self.scale <= 3.0:
            raise ValueError(f"crop scale {self.scale} outside [0.3, 3.0]")
        if not -0.5 <= self.shift_y <= 0.5:
            raise ValueError(f"crop shift_y {self.shift_y} outside [-0.5, 0.5]")


@dataclass
class ModelConfig:
    """What a checkpoint must say about itself to be served correctly."""

    architecture: str
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop: CropConfig = field(default_factory=CropConfig)
    threshold: float = 0.5
    tta: tuple[str, ...] = ("identity", "hflip")

    def __post_init__(self) -> None:
        if isinstance(self.crop, dict):
            self.crop = CropConfig(**self.crop)
        self.mean = tuple(float(v) for v in self.mean)  # type: ignore[assignment]
        self.std = tuple(float(v) for v in self.std)  # type: ignore[assignment]
        self.tta = tuple(self.tta)
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need three values (RGB)")
        if not 32 <= self.input_size <= 1024:
            raise ValueError(f"input_size {self.input_size} outside [32, 1024]")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold {self.threshold} outside (0, 1)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)
