"""Training augmentation (albumentations) and image -> normalised tensor.

The field's usual set: flip, crop jitter (zoom + shift), brightness/contrast,
blur, JPEG re-compression and cutout. Each call is seeded from the caller's
numpy generator, so an item is the same whenever it is drawn again (resume).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch

from .errors import require


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Square resize to ``size`` (area filter when shrinking)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


@lru_cache(maxsize=8)
def pipeline(size: int):
    """The albumentations Compose for one input size (cached per process)."""
    A = require("albumentations", "augmentation")
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Resize(size, size, interpolation=cv2.INTER_AREA),
            A.Affine(scale=(0.92, 1.06), translate_percent=(-0.04, 0.04), border_mode=cv2.BORDER_REFLECT_101, p=0.7),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.2, p=0.5),
            A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.4, 1.2), p=0.15),
            A.ImageCompression(quality_range=(50, 95), p=0.4),
            A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(0.1, 0.3), hole_width_range=(0.1, 0.3), fill=0, p=0.2),
        ],
        seed=0,
    )


def augment(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Augmented ``size`` x ``size`` copy of an RGB uint8 image, seeded from ``rng``."""
    transform = pipeline(size)
    transform.set_random_seed(int(rng.integers(2**31 - 1)))
    return transform(image=np.ascontiguousarray(img))["image"]


def to_tensor(img: np.ndarray, mean, std) -> torch.Tensor:
    """RGB uint8 HxWx3 -> float32 3xHxW, scaled to [0, 1] then normalised by mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s
