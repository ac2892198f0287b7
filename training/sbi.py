"""Self-blended images (Shiohara & Yamasaki, CVPR 2022).

A fake is made from one real face: a slightly altered copy of the face (the
source) is blended back into the face (the target) inside a soft mask built
from the convex hull of its landmarks. The result carries the blending
boundary and colour/frequency mismatch typical of face swaps, without any
identity change.

A regional blend (``region=``) uses the hull of one part of the face instead
(mouth, lower face, eyes and brows, nose), so the boundary lies inside the
face, as in reenactment (Face2Face, NeuralTextures re-render the mouth and
jaw) and in local self-blends such as SeeABLE (Larue et al., ICCV 2023).
"""

from __future__ import annotations

import cv2
import numpy as np


def _colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB shift, hue/saturation shift and brightness/contrast change (float32 in, float32 out)."""
    out = img + rng.uniform(-20, 20, size=3).astype(np.float32)
    if rng.random() < 0.5:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5, 5)) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.8, 1.2), 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    alpha, beta = rng.uniform(0.85, 1.15), rng.uniform(-20, 20)
    return (out - 128.0) * alpha + 128.0 + beta


def _frequency_change(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sharpen, blur or down-and-up-scale (float32)."""
    choice = rng.integers(3)
    if choice == 0:
        blurred = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 1.5))
        return img + rng.uniform(0.3, 1.0) * (img - blurred)
    if choice == 1:
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.2))
    h, w = img.shape[:2]
    f = rng.uniform(0.5, 0.8)
    small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _affine(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small random scale (0.95-1.05) and translation (up to 3% of the side) about the centre."""
    h, w = img.shape[:2]
    s = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.03, 0.03, size=2) * (w, h)
    m = np.array([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]], dtype=np.float32)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


# dlib 68-point indices of each region a regional blend may cover.
REGIONS = {
    "mouth": list(range(48, 68)),
    "lower_face": list(range(3, 14)) + list(range(31, 36)),
    "eyes": list(range(17, 27)) + list(range(36, 48)),
    "nose": list(range(27, 36)),
}


def blend_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, region: str | None = None) -> np.ndarray:
    """Soft float32 mask in [0, 1]: deformed landmark hull (of the whole face or one region), blurred with random kernels."""
    h, w = shape
    pts = landmarks if region is None else landmarks[REGIONS[region]]
    pts = pts + rng.normal(0, 0.01 * max(h, w), size=pts.shape)  # deform the hull a little
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    if region is not None:  # grow a part's small hull so the erosion below cannot empty it
        r = max(1, int(round(0.06 * max(h, w))))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    # Random aspect deformation (as in the SBI code: resize, blur, resize back).
    dh, dw = int(h * rng.uniform(0.85, 1.15)), int(w * rng.uniform(0.85, 1.15))
    mask = cv2.resize(mask, (dw, dh), interpolation=cv2.INTER_LINEAR)
    k1 = int(rng.integers(2, 13)) * 2 + 1
    mask = cv2.GaussianBlur(mask, (k1, k1), 0)
    if mask.max() > 0:
        mask = mask / mask.max()
    mask[mask < 1] = 0  # erode to the blur's core
    k2 = int(rng.integers(2, 13)) * 2 + 1
    mask = cv2.GaussianBlur(mask, (k2, k2), float(rng.uniform(3, 20)))
    if mask.max() > 0:
        mask = mask / mask.max()
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)


def self_blend(
    img: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, region: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Blend an altered copy of ``img`` (RGB uint8) into itself; return (fake uint8, mask float32).

    The source copy gets the colour and frequency change and is shifted/scaled
    a little; the target is ``img`` itself, so pixels where the mask is 0 are
    unchanged. The blend ratio is random. ``region`` (a key of ``REGIONS``)
    limits the blend to that part of the face.
    """
    target = img.astype(np.float32)
    source = _affine(_frequency_change(_colour_jitter(target, rng), rng), rng)
    mask = blend_mask(landmarks, img.shape[:2], rng, region)
    mask *= float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))
    m = mask[..., None]
    out = source * m + target * (1.0 - m)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def sbi_fake(
    img: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, regional: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``self_blend`` over the whole face, or with chance ``regional`` inside one of ``REGIONS`` drawn evenly."""
    region = None
    if regional > 0 and rng.random() < regional:  # no draw when off: old runs replay
        region = list(REGIONS)[rng.integers(len(REGIONS))]
    return self_blend(img, landmarks, rng, region)
