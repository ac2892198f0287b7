"""Light training augmentation in numpy/cv2, and image -> normalised tensor."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Square resize to ``size`` (area filter when shrinking)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def crop_jitter(img: np.ndarray, size: int, rng: np.random.Generator, scale=(0.92, 1.06), shift=0.04) -> np.ndarray:
    """Resize to ``size`` through a random zoom and shift of the crop window (reflected border)."""
    h, w = img.shape[:2]
    s = rng.uniform(*scale) * size / max(h, w)  # >1 zooms in (tighter crop)
    tx, ty = rng.uniform(-shift, shift, size=2) * size
    m = np.array([[s, 0, size / 2 - s * w / 2 + tx], [0, s, size / 2 - s * h / 2 + ty]], dtype=np.float32)
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Re-compress an RGB uint8 image as JPEG at ``quality``."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def augment(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """hflip, crop jitter, brightness/contrast, blur and JPEG, each with some probability."""
    if rng.random() < 0.5:
        img = img[:, ::-1]
    img = crop_jitter(np.ascontiguousarray(img), size, rng) if rng.random() < 0.7 else resize(img, size)
    if rng.random() < 0.5:
        alpha, beta = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
        img = np.clip((img.astype(np.float32) - 128) * alpha + 128 + beta, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.4:
        img = jpeg(img, int(rng.integers(50, 96)))
    return img


def to_tensor(img: np.ndarray, mean, std) -> torch.Tensor:
    """RGB uint8 HxWx3 -> float32 3xHxW, scaled to [0, 1] then normalised by mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s
