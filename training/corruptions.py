"""Fixed quality losses for robustness evaluation: ``unmask eval --degrade jpeg=40,scale=0.5``.

Training draws its quality losses at random (``transforms.degrade``); an
evaluation needs the same loss on every crop so a table can say "half
resolution + JPEG q40 costs this much AUC". The loss is applied to the
source image before the service's cut (MTCNN + the model's crop geometry),
as a re-encoded upload would reach the service: scaled down (and left
small), blurred, noised, then JPEG-compressed, in that order.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import ConfigError
from .transforms import jpeg_round_trip

KEYS = {"scale": "keep this fraction of each side (0 < scale <= 1)", "jpeg": "JPEG quality 1-100",
        "blur": "Gaussian blur sigma in pixels (0-10)", "noise": "Gaussian noise sigma in grey levels (0-50)"}


@dataclass(frozen=True)
class Corruption:
    scale: float = 1.0
    jpeg: int = 0  # 0: no JPEG pass
    blur: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if not (0 < self.scale <= 1 and (self.jpeg == 0 or 1 <= self.jpeg <= 100)
                and 0 <= self.blur <= 10 and 0 <= self.noise <= 50):
            raise ConfigError(f"--degrade out of range ({self.name}); " + "; ".join(f"{k}: {v}" for k, v in KEYS.items()))

    @property
    def name(self) -> str:
        """The canonical spelling, e.g. 'scale=0.5,jpeg=40' ('clean' when nothing is applied): names caches and reports."""
        parts = [f"{k}={getattr(self, k):g}" for k in KEYS if getattr(self, k) != Corruption.__dataclass_fields__[k].default]
        return ",".join(parts) or "clean"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """An RGB uint8 image, degraded (the noise is seeded by the image's bytes: the same crop, the same loss)."""
        h, w = img.shape[:2]
        if self.scale < 1:
            img = cv2.resize(img, (max(8, round(w * self.scale)), max(8, round(h * self.scale))), interpolation=cv2.INTER_AREA)
        if self.blur:
            img = cv2.GaussianBlur(img, (0, 0), self.blur)
        if self.noise:
            rng = np.random.default_rng(zlib.crc32(img.tobytes()))
            img = np.clip(img + rng.normal(0, self.noise, img.shape), 0, 255).astype(np.uint8)
        if self.jpeg:
            img = jpeg_round_trip(img, self.jpeg)
        return np.ascontiguousarray(img)


def parse_corruption(text: str) -> Corruption:
    """'jpeg=40,scale=0.5' -> Corruption; '' or 'clean' -> no loss. ConfigError names the bad part."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == "clean":
            continue
        key, sep, value = part.partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"--degrade: {part!r} is not KEY=VALUE with KEY one of {', '.join(KEYS)}")
        try:
            values[key] = int(value) if key == "jpeg" else float(value)
        except ValueError:
            raise ConfigError(f"--degrade: {key} needs a number, not {value!r}") from None
    return Corruption(**values)
