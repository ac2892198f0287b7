"""Face detection (MTCNN) and the square face crop the classifier sees.

MTCNN runs on a copy downscaled so its longer side is at most ``max_side``
(a 1080p frame costs ~270 ms at full size and ~80 ms at half); boxes and
landmarks are mapped back to the original pixels. MTCNN also finds false
faces, so detections are filtered on probability and size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

from .config import CropConfig, ScoringConfig

log = logging.getLogger(__name__)


@dataclass
class DetectedFace:
    """One face in original-image pixels: box [x1, y1, x2, y2], 5 landmarks (x, y)."""

    box: np.ndarray
    probability: float
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)

    @property
    def size(self) -> float:
        """The box's shorter side in pixels."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceDetector:
    """MTCNN wrapped: downscale, detect, filter false faces, map back.

    The knobs come from a ScoringConfig (``detect_max_side``, ``detect_min_face``,
    ``min_face_probability``, ``min_face_size``, ``max_faces``; see its comments).
    At ``detect_min_face`` 30 a 1080p frame (halved) finds faces from about 60 px up.
    """

    def __init__(self, config: ScoringConfig | None = None, device: str | torch.device = "cpu") -> None:
        config = config or ScoringConfig()
        self.max_side = config.detect_max_side
        self.min_probability = config.min_face_probability
        self.min_size = config.min_face_size
        self.max_faces = config.max_faces
        self._min_detect = config.detect_min_face
        self._mtcnn = MTCNN(keep_all=True, device=torch.device(device), post_process=False, min_face_size=config.detect_min_face)

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in one RGB uint8 image (H, W, 3), most confident first."""
        return self.detect_many([image])[0]

    def detect_many(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces in several images; same-sized images go to MTCNN as one batch."""
        if not images:
            return []
        scaled, factors = zip(*(self._downscale(img) for img in images), strict=True)
        shapes = {s.shape for s in scaled}
        if len(shapes) == 1 and len(scaled) > 1 and self._fits(scaled[0]):
            boxes, probs, points = self._mtcnn.detect(np.stack(scaled), landmarks=True)
        else:
            results = [self._mtcnn.detect(s, landmarks=True) if self._fits(s) else (None, None, None) for s in scaled]
            boxes, probs, points = (list(x) for x in zip(*results, strict=True))
        return [self._to_faces(b, p, pts, f) for b, p, pts, f in zip(boxes, probs, points, factors, strict=True)]

    def _fits(self, image: np.ndarray) -> bool:
        """Whether MTCNN's smallest face fits in the image at all: on a smaller side its
        image pyramid is empty and facenet-pytorch fails (torch.cat of an empty list)."""
        return min(image.shape[:2]) >= self._min_detect

    def _downscale(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        longer = max(image.shape[:2])
        if longer <= self.max_side:
            return np.ascontiguousarray(image), 1.0
        factor = self.max_side / longer
        small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        return small, factor

    def _to_faces(self, boxes, probs, points, factor: float) -> list[DetectedFace]:
        if boxes is None or points is None:
            return []
        # MTCNN.detect returns object-dtype arrays: cast before arithmetic.
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) / factor
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) / factor
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        faces = [DetectedFace(b, float(p), pts) for b, p, pts in zip(boxes, probs, points, strict=True)]
        kept = [f for f in faces if f.probability >= self.min_probability and f.size >= self.min_size]
        kept.sort(key=lambda f: f.probability, reverse=True)
        return kept[: self.max_faces]


def crop_box(box: np.ndarray, crop: CropConfig) -> np.ndarray:
    """The square crop [x1, y1, x2, y2] (float) cut around a detector box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = crop.scale * max(x2 - x1, y2 - y1)
    cx = (x1 + x2) / 2
    cy = (y1 + y2) / 2 + crop.shift_y * side
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dtype=np.float32)


def crop_face(image: np.ndarray, box: np.ndarray, crop: CropConfig, size: int) -> np.ndarray:
    """Cut the square crop around ``box`` and resize it to ``size`` x ``size``.

    Parts of the square outside the image are filled black, as the training
    crops' padding was.
    """
    x1, y1, x2, y2 = (int(round(v)) for v in crop_box(box, crop))
    h, w = image.shape[:2]
    side = max(x2 - x1, 1)
    out = np.zeros((side, side, 3), dtype=image.dtype)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x1 + side, w), min(y1 + side, h)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(out, (size, size), interpolation=interp)
