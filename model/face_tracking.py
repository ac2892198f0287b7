"""Face detection on fewer pixels: follow the faces of a video from frame to frame.

MTCNN on a whole frame (its downscaled copy) is most of a video's cost. A face
rarely jumps between two sampled frames, so between full-frame detections
MTCNN looks only at a square region around each face of the previous frame
(``track_margin`` box sides on each side), and there it computes exactly what
the full pass computes (model.mtcnn_regions): same boxes, same scores.

A full-frame pass runs on the first sampled frame, on every
``detect_every``-th one (faces that walk in), and whenever someone seen in
the last ``detect_every`` frames is missing from the previous frame or is not
found again in their region (they turned away, left, or the shot changed).
Optionally (``adaptive_min_face``, off by default) every search after the
first skips the pyramid levels far below the smallest face found so far: a
250 px face needs no 30 px level; this changes boxes, so it is off.

``bench/score_video.py`` checks the result against full detection on every
sampled frame (verdicts, file scores, faces found).
"""

from __future__ import annotations

import math
from collections import Counter, deque

import numpy as np

from .config import ScoringConfig
from .faces import DetectedFace, FaceDetector


class FaceFollower:
    """Finds the faces of one video's sampled frames, in order; one per file.

    Args:
        detector: the shared MTCNN wrapper (its caller holds the detection lock).
        config: ``detect_every``, ``track_margin`` and ``adaptive_min_face``
            (see ScoringConfig); ``detect_every`` 1 is full detection on every frame.
    """

    def __init__(self, detector: FaceDetector, config: ScoringConfig) -> None:
        self.detector = detector
        self.every = config.detect_every
        self.margin = config.track_margin
        self.ratio = config.adaptive_min_face
        self.position = 0  # sampled frames seen
        self.previous: list[DetectedFace] = []
        self.recent: deque[int] = deque(maxlen=self.every)  # face counts of the last frames
        self.smallest: float | None = None  # smallest face found so far, in pixels of the downscaled copy
        self.searches: Counter = Counter()  # "full", "region", "lost": how frames were searched

    def find(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in the next sampled frame (RGB uint8), most confident first."""
        small, factor = self.detector.downscale(image)
        faces = None
        # Regions only while everyone seen lately is still followed: a face
        # missing from the previous frame is looked for on the whole frame.
        if self.previous and self.position % self.every and len(self.previous) >= max(self.recent, default=0):
            faces = self._near_previous(small, factor)
            self.searches["region" if faces is not None else "lost"] += 1
        if faces is None:
            faces = self.detector.detect_scaled(small, factor, self._min_face(self.smallest))
            self.searches["full"] += 1
        self.position += 1
        self.previous = faces
        self.recent.append(len(faces))
        if faces:
            found = min(f.size for f in faces) * factor
            self.smallest = found if self.smallest is None else min(self.smallest, found)
        return faces

    def _min_face(self, size: float | None) -> float | None:
        """MTCNN's smallest face for a search where faces of ``size`` (copy pixels) are expected."""
        return self.ratio * size if size is not None and self.ratio else None

    def _near_previous(self, small: np.ndarray, factor: float) -> list[DetectedFace] | None:
        """Faces in the regions around the previous frame's faces; None if one of those is not found again."""
        height, width = small.shape[:2]
        regions = []
        for face in self.previous:
            x1, y1, x2, y2 = face.box * factor
            half = max(x2 - x1, y2 - y1) * (0.5 + self.margin)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            regions.append((max(0, int(cx - half)), max(0, int(cy - half)), min(width, math.ceil(cx + half)), min(height, math.ceil(cy + half))))
        hits = self.detector.detect_regions(small, factor, regions, self._min_face(self.smallest))
        centres = [((h.box[0] + h.box[2]) / 2 * factor, (h.box[1] + h.box[3]) / 2 * factor) for h in hits]
        for x1, y1, x2, y2 in regions:
            if not any(x1 <= x < x2 and y1 <= y < y2 for x, y in centres):
                return None
        return hits
