"""Reenactment pseudo-fakes: the same face with a changed expression, re-rendered around the mouth.

Reenactment (Face2Face, NeuralTextures) keeps the identity and most of the
face boundary, moves the mouth and jaw (sometimes the eyelids) and re-renders
that region with a renderer's texture. Here, from one real face and its dlib
68 points:

1. an expression change moves some landmarks: the mouth opens or closes, its
   corners go out and up (smile) or in and down, the mouth shifts sideways,
   and with ``eyes_p`` the eyelids close a little;
2. a thin-plate spline through the moved points (the rest of the face held
   fixed) warps the image;
3. the changed region is re-rendered: shrunk and scaled back, blurred, its
   colour shifted and JPEG-compressed (a proxy for a neural renderer's
   texture);
4. it is blended back inside a soft mask of the lower face (mouth, chin,
   bottom of the nose; the eyes too when they moved), so pixels outside the
   mask are the input's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import ConfigError
from .transforms import jpeg_round_trip


@dataclass
class ReenactConfig:
    """How far the expression moves and how the changed region is re-rendered (the ``[reenact]`` table)."""

    mouth: float = 0.05  # largest opening (or closing) of the mouth: the lower lip moves by this share of the face height
    smile: float = 0.035  # largest move of the mouth corners, share of the face width
    eyes_p: float = 0.2  # chance the eyelids move too (the mask then covers the eyes as well)
    eyes: float = 0.02  # largest eyelid move, share of the face height
    resample: tuple[float, float] = (0.5, 0.9)  # the region is shrunk to this share of its side and scaled back
    blur: tuple[float, float] = (0.3, 1.0)  # Gaussian sigma of the re-rendered region, pixels at 224 px
    colour: float = 4.0  # largest shift per RGB channel (0-255)
    jpeg_quality: tuple[int, int] = (40, 90)
    edge: float = 0.03  # softness of the mask's edge: Gaussian sigma, share of the face size

    def __post_init__(self) -> None:
        self.resample = tuple(float(v) for v in self.resample)  # type: ignore[assignment]
        self.blur = tuple(float(v) for v in self.blur)  # type: ignore[assignment]
        self.jpeg_quality = tuple(int(v) for v in self.jpeg_quality)  # type: ignore[assignment]
        checks = [
            (0 <= self.mouth <= 0.2 and 0 <= self.smile <= 0.2 and 0 <= self.eyes <= 0.1,
             f"reenact: mouth and smile must be in [0, 0.2], eyes in [0, 0.1], not {self.mouth}, {self.smile}, {self.eyes}"),
            (0 <= self.eyes_p <= 1, f"reenact: eyes_p must be in [0, 1], not {self.eyes_p}"),
            (len(self.resample) == 2 and 0.1 <= self.resample[0] <= self.resample[1] <= 1,
             f"reenact: resample must be [lo, hi] in [0.1, 1], not {list(self.resample)}"),
            (len(self.blur) == 2 and 0 <= self.blur[0] <= self.blur[1] <= 5,
             f"reenact: blur must be [lo, hi] in [0, 5], not {list(self.blur)}"),
            (0 <= self.colour <= 50, f"reenact: colour must be in [0, 50], not {self.colour}"),
            (len(self.jpeg_quality) == 2 and 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100,
             f"reenact: jpeg_quality must be [lo, hi] in [1, 100], not {list(self.jpeg_quality)}"),
            (0.005 <= self.edge <= 0.2, f"reenact: edge must be in [0.005, 0.2], not {self.edge}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


# dlib 68-point indices.
JAW_SIDES = [0, 1, 2, 3, 13, 14, 15, 16]
CHIN = [4, 5, 6, 7, 8, 9, 10, 11, 12]
NOSE = list(range(27, 36))
NOSE_BOTTOM = list(range(31, 36))
BROWS = list(range(17, 27))
EYES = list(range(36, 48))
UPPER_LIDS, LOWER_LIDS = [37, 38, 43, 44], [40, 41, 46, 47]
OUTER_LIPS = list(range(48, 60))  # inner lip points are left out: closed, they sit on each other
UPPER_LIP, LOWER_LIP = [49, 50, 51, 52, 53], [55, 56, 57, 58, 59]
LEFT_CORNER, RIGHT_CORNER = [48], [54]
SPLINE = OUTER_LIPS + CHIN + JAW_SIDES + BROWS + NOSE + EYES  # the points the warp goes through

# Where the points sit on a tight crop when dlib gives none that can be used: the median of dlib's points over
# 450 shared real crops (300 DFDC, 150 UTKFace) at 224 px, as a share of the side (x, y).
TEMPLATE = np.array([
    (.05, .34), (.05, .45), (.07, .56), (.09, .67), (.13, .78), (.20, .88), (.29, .95), (.38, 1.0), (.50, 1.01),
    (.62, 1.0), (.72, .95), (.81, .88), (.88, .78), (.92, .67), (.94, .56), (.96, .44), (.96, .33),  # jaw
    (.14, .22), (.19, .17), (.27, .15), (.34, .16), (.42, .18), (.57, .18), (.64, .15), (.73, .15), (.80, .17),
    (.86, .21),  # brows
    (.50, .29), (.50, .36), (.50, .42), (.50, .50), (.41, .56), (.45, .58), (.50, .59), (.54, .58), (.59, .56),  # nose
    (.23, .31), (.27, .28), (.33, .28), (.38, .32), (.33, .33), (.27, .33),  # right eye (image left)
    (.61, .31), (.67, .28), (.72, .28), (.77, .30), (.73, .32), (.67, .33),  # left eye
    (.33, .72), (.39, .68), (.45, .66), (.50, .67), (.55, .66), (.61, .68), (.67, .72), (.61, .77), (.55, .80),
    (.50, .80), (.45, .80), (.39, .78),  # outer lips
    (.36, .72), (.45, .70), (.50, .70), (.55, .70), (.65, .72), (.55, .74), (.49, .75), (.45, .74),  # inner lips
], dtype=np.float32)


def usable(landmarks: np.ndarray | None, shape: tuple[int, int]) -> bool:
    """68 finite points whose mouth lies in the image and whose face spans at least a quarter of it."""
    if landmarks is None or np.shape(landmarks) != (68, 2) or not np.isfinite(landmarks).all():
        return False
    h, w = shape
    mouth = landmarks[OUTER_LIPS].mean(0)
    span = np.ptp(landmarks, axis=0)
    return bool(0 <= mouth[0] < w and 0 <= mouth[1] < h and span[0] >= 0.25 * w and span[1] >= 0.25 * h)


def expression(pts: np.ndarray, rng: np.random.Generator, cfg: ReenactConfig, eyes: bool) -> np.ndarray:
    """The landmarks after a random expression change (mouth, jaw; eyelids when ``eyes``)."""
    face_w, face_h = np.ptp(pts, axis=0)
    d = np.zeros_like(pts)
    open_ = rng.uniform(-0.5, 1.0) * cfg.mouth * face_h  # opening more often than closing
    d[LOWER_LIP, 1] += open_
    d[UPPER_LIP, 1] -= 0.25 * open_
    d[LEFT_CORNER + RIGHT_CORNER, 1] += 0.4 * open_
    d[CHIN, 1] += open_ * np.array([0.2, 0.4, 0.6, 0.7, 0.75, 0.7, 0.6, 0.4, 0.2])  # the jaw drops with the lower lip
    smile = rng.uniform(-0.6, 1.0) * cfg.smile * face_w  # > 0: corners out and up; < 0: in and down
    for corner, neighbours, side in ((LEFT_CORNER, [49, 59], -1.0), (RIGHT_CORNER, [53, 55], 1.0)):
        d[corner] += (side * smile, -0.6 * smile)
        d[neighbours] += (0.4 * side * smile, -0.3 * smile)
    d[OUTER_LIPS, 0] += rng.uniform(-0.3, 0.3) * cfg.smile * face_w  # a little sideways
    if eyes:
        close = rng.uniform(-0.3, 1.0) * cfg.eyes * face_h  # mostly a squint or blink, sometimes wider
        d[UPPER_LIDS, 1] += close
        d[LOWER_LIDS, 1] -= 0.3 * close
    return (pts + d).astype(np.float32)


def _tps_map(dst: np.ndarray, src: np.ndarray, shape: tuple[int, int], step: int) -> tuple[np.ndarray, np.ndarray]:
    """Thin-plate spline through ``dst -> src`` (points in pixels), as cv2.remap maps of an image of ``shape``.

    Solved once, evaluated on a grid every ``step`` pixels and scaled up (the field is smooth).
    """
    h, w = shape
    scale = float(max(h, w))
    c = dst / scale  # unit coordinates keep the system well conditioned

    def kernel(r2: np.ndarray) -> np.ndarray:
        return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)

    n = len(c)
    k = kernel(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)) + 1e-4 * np.eye(n)  # a little smoothing: never singular
    p = np.hstack([np.ones((n, 1)), c])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    b = np.zeros((n + 3, 2))
    b[:n] = (src - dst) / scale
    coef = np.linalg.solve(a, b)
    gh, gw = -(-h // step) + 1, -(-w // step) + 1
    gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float64) * step / scale
    g = np.stack([gx.ravel(), gy.ravel()], 1)
    u = kernel(((g[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    disp = (u @ coef[:n] + np.hstack([np.ones((len(g), 1)), g]) @ coef[n:]) * scale
    disp = disp.reshape(gh, gw, 2).astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    full = cv2.remap(disp, xs / step, ys / step, cv2.INTER_LINEAR)  # node j sits on pixel j * step
    return xs + full[..., 0], ys + full[..., 1]


def region_mask(pts: np.ndarray, moved: np.ndarray, shape: tuple[int, int], rng: np.random.Generator,
                cfg: ReenactConfig, eyes: bool) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Soft float32 mask in [0, 1] of the lower face (and the eyes when ``eyes``), before and after the move.

    Returns the mask and the box (y0, y1, x0, x1) outside which it is 0.
    """
    h, w = shape
    size = float(np.ptp(pts, axis=0).max())
    centre = pts[OUTER_LIPS].mean(0)
    chin = rng.uniform(0.8, 0.9)  # the chin points are pulled in: the jaw line itself stays as it was
    hulls = [np.concatenate([p[OUTER_LIPS + NOSE_BOTTOM] for p in (pts, moved)]
                            + [centre + (p[CHIN] - centre) * chin for p in (pts, moved)])]
    if eyes:
        for side in (EYES[:6], EYES[6:]):
            eye = np.concatenate([pts[side], moved[side]])
            hulls.append(eye.mean(0) + (eye - eye.mean(0)) * 1.4)
    sigma = cfg.edge * size * rng.uniform(0.7, 1.3)
    r = int(np.ceil(2.5 * sigma))  # a finite kernel: the mask is exactly 0 beyond r pixels from the hulls
    corners = np.concatenate(hulls)
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - r - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + r + 2, (w, h))
    mask = np.zeros((h, w), np.float32)
    if x1 <= x0 or y1 <= y0:
        return mask, (0, 0, 0, 0)
    roi = mask[y0:y1, x0:x1]
    for hull in hulls:
        cv2.fillConvexPoly(roi, cv2.convexHull(np.round(hull - (x0, y0)).astype(np.int32)), 1.0)
    roi[:] = cv2.GaussianBlur(roi, (2 * r + 1, 2 * r + 1), sigma)
    if roi.max() > 0:
        roi /= roi.max()
    return mask, (int(y0), int(y1), int(x0), int(x1))


def rerender(img: np.ndarray, rng: np.random.Generator, cfg: ReenactConfig, side: int) -> np.ndarray:
    """Resample, blur, colour-shift and JPEG-compress an RGB uint8 region (a renderer's texture, roughly)."""
    h, w = img.shape[:2]
    f = rng.uniform(*cfg.resample)
    small = cv2.resize(img, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    sigma = rng.uniform(*cfg.blur) * side / 224
    if sigma > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    out = np.clip(out + rng.uniform(-cfg.colour, cfg.colour, size=3).astype(np.float32), 0, 255).astype(np.uint8)
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    return jpeg_round_trip(out, quality)


def reenact(img: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator,
            cfg: ReenactConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A reenactment-like fake of ``img`` (RGB uint8 face crop); return (fake uint8, mask float32).

    Pixels where the mask is 0 are the input's. Landmarks that cannot be used
    (None, not 68 finite points, or not a face in the crop: see ``usable``)
    are replaced by ``TEMPLATE``, where dlib's points sit on an average tight
    crop, so the fake is still a lower-face change.
    """
    cfg = cfg or ReenactConfig()
    h, w = img.shape[:2]
    pts = np.asarray(landmarks, np.float32) if usable(landmarks, (h, w)) else TEMPLATE * np.float32([w, h])
    eyes = cfg.eyes_p > 0 and rng.random() < cfg.eyes_p
    moved = expression(pts, rng, cfg, eyes)
    mask, (y0, y1, x0, x1) = region_mask(pts, moved, (h, w), rng, cfg, eyes)
    out = img.copy()
    if y1 == y0:  # the face lies outside the crop: nothing to change
        return out, mask
    # The spline goes through the points (moved ones to their new place, the others held), in the region's coordinates.
    offset = np.float32([x0, y0])
    map_x, map_y = _tps_map(moved[SPLINE] - offset, pts[SPLINE] - offset, (y1 - y0, x1 - x0), step=8)
    map_x += x0  # sample from the whole image, so the region's border warps in real pixels
    map_y += y0
    warped = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    rendered = rerender(warped, rng, cfg, max(h, w)).astype(np.float32)
    m = mask[y0:y1, x0:x1, None]
    region = img[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.rint(rendered * m + region * (1.0 - m)), 0, 255).astype(np.uint8)
    return out, mask
