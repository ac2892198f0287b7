"""Face detection (MTCNN) and the square face crop the classifier sees.

MTCNN runs on a copy downscaled so its longer side is at most ``max_side``
(a 1080p frame costs ~270 ms at full size and ~80 ms at half); boxes and
landmarks are mapped back to the original pixels. MTCNN also finds false
faces, so detections are filtered on probability and size.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import detect_face

from .config import CropConfig, ScoringConfig
from .mtcnn_regions import Region, detect_in_regions

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
    Videos go through ``model.face_tracking.FaceFollower``, which calls
    ``detect_scaled`` on whole frames and ``detect_regions`` around known faces.
    """

    def __init__(self, config: ScoringConfig | None = None, device: str | torch.device = "cpu") -> None:
        config = config or ScoringConfig()
        self.max_side = config.detect_max_side
        self.min_face = config.detect_min_face
        self.min_probability = config.min_face_probability
        self.min_size = config.min_face_size
        self.max_faces = config.max_faces
        self.threads = config.detect_threads
        self._mtcnn = MTCNN(keep_all=True, device=torch.device(device), post_process=False, min_face_size=config.detect_min_face)
        self.fast = config.fast_mtcnn
        if self.fast:  # torch's CPU max pooling is ~10x faster in channels-last layout (outputs within 1e-6)
            for net in (self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet):
                net.to(memory_format=torch.channels_last)

    def detect(self, image: np.ndarray, min_face_px: int = 0) -> list[DetectedFace]:
        """Faces in one RGB uint8 image (H, W, 3), most confident first."""
        return self.detect_scaled(*self.downscale(image), min_face_px=min_face_px)

    def downscale(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The copy MTCNN sees (longer side at most ``max_side``) and its scale factor."""
        longer = max(image.shape[:2])
        if longer <= self.max_side:
            return np.ascontiguousarray(image), 1.0
        factor = self.max_side / longer
        small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        return small, factor

    def smallest_face(self, factor: float, min_face_px: int = 0) -> float:
        """MTCNN's smallest face in the copy's pixels: ``detect_min_face``, or ``min_face_px`` of the file's pixels
        when that is larger (coarser pyramid levels only: the finest ones cost the most, see ``ScoringConfig``)."""
        return max(float(self.min_face), min_face_px * factor)

    def detect_scaled(self, small: np.ndarray, factor: float, min_face_px: int = 0) -> list[DetectedFace]:
        """Faces in a downscaled copy (from ``downscale``; ``factor``: its scale), in original-image pixels;
        ``min_face_px``: see ``smallest_face``."""
        min_face = self.smallest_face(factor, min_face_px)
        if not self._fits(small, min_face):
            return []
        with torch.inference_mode(), torch_threads(self.threads):
            if self.fast:  # the whole image as one region: what detect_face computes, 1.4x faster
                boxes, points = detect_in_regions(self._mtcnn, small, [(0, 0, small.shape[1], small.shape[0])], min_face)
            else:
                m = self._mtcnn
                (boxes,), (points,) = detect_face(np.ascontiguousarray(small[None]), min_face, m.pnet, m.rnet, m.onet, m.thresholds, m.factor, m.device)
        return self._to_faces(boxes, points, factor)

    def detect_regions(
        self, small: np.ndarray, factor: float, regions: list[Region], region_min_faces: list[float] | None = None,
        min_face_px: int = 0,
    ) -> list[DetectedFace]:
        """Faces inside ``regions`` (x1, y1, x2, y2 in the copy's pixels) of a downscaled copy, in original pixels.

        What a full-copy ``detect_scaled`` finds there, at a fraction of the
        cost (see model.mtcnn_regions); ``region_min_faces`` (copy pixels, one
        per region) skips the pyramid levels for faces smaller than that there.
        """
        min_face = self.smallest_face(factor, min_face_px)
        if not regions or not self._fits(small, min_face):
            return []
        with torch.inference_mode(), torch_threads(self.threads):
            boxes, points = detect_in_regions(self._mtcnn, small, regions, min_face, region_min_faces)
        return self._to_faces(boxes, points, factor)

    @staticmethod
    def _fits(image: np.ndarray, min_face: float) -> bool:
        """Whether MTCNN's smallest face fits in the image at all: on a smaller side its
        image pyramid is empty and facenet-pytorch fails (torch.cat of an empty list)."""
        return min(image.shape[:2]) >= min_face

    def _to_faces(self, boxes, points, factor: float) -> list[DetectedFace]:
        # detect_face returns object-dtype arrays: cast before arithmetic.
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
        if not len(boxes):
            return []
        corners = boxes[:, :4] / factor
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) / factor
        faces = [DetectedFace(b, float(p), pts) for b, p, pts in zip(corners, boxes[:, 4], points, strict=True)]
        kept = [f for f in faces if f.probability >= self.min_probability and f.size >= self.min_size]
        kept.sort(key=lambda f: f.probability, reverse=True)
        return kept[: self.max_faces]


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch on ``count`` threads in this thread only (OpenMP's setting is per thread), then restore it.

    MTCNN is thousands of small ops: on 2 cores a second OpenMP thread mostly
    spins at barriers, and under any other load (the decoder thread, a
    classifier) it multiplied detection's CPU time several times over here.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
