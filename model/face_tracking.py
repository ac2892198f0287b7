"""Face detection on fewer pixels: follow the faces of a video from frame to frame.

MTCNN on a whole frame (its downscaled copy) is most of a video's cost. A face
rarely jumps between two sampled frames, so between full-frame detections
MTCNN looks only at a square region around each face of the previous frame
(``track_margin`` box sides on each side), and there it computes what the
full pass computes (model.mtcnn_regions): the same boxes and scores for the
faces it looks for.

A full-frame pass runs on the first sampled frame, on every
``detect_every``-th one (faces that walk in), and whenever someone seen in
the last ``detect_every`` frames is missing from the previous frame or is not
found again in their region (they turned away, left, or the shot changed).
In a face's region MTCNN looks only for faces of at least ``region_min_face``
times that face's size: a 250 px face needs no 30 px pyramid level, and those
fine levels are most of a region's cost (their many small candidates go
through RNet and ONet). Full passes always look down to ``detect_min_face``.

A newcomer is found at the next full pass, at most ``detect_every`` - 1
sampled frames late. ``bench/score_video.py`` checks the result against full
detection on every sampled frame (verdicts, file scores, faces found).
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
        config: ``detect_every``, ``track_margin`` and ``region_min_face``
            (see ScoringConfig); ``detect_every`` 1 is full detection on every frame.
    """

    def __init__(self, detector: FaceDetector, config: ScoringConfig) -> None:
        self.detector = detector
        self.every = config.detect_every
        self.margin = config.track_margin
        self.ratio = config.region_min_face
        self.min_face_px = config.min_face_px
        self.position = 0  # sampled frames seen
        self.previous: list[DetectedFace] = []
        self.recent: deque[int] = deque(maxlen=self.every)  # face counts of the last frames
        self.searches: Counter = Counter()  # "full", "region", "lost": how frames were searched

    def find(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in the next sampled frame (RGB uint8), most confident first."""
        return self.find_scaled(*self.detector.downscale(image))

    def find_scaled(self, small: np.ndarray, factor: float) -> list[DetectedFace]:
        """``find`` on the frame's copy from ``detector.downscale`` (made ahead by the caller)."""
        faces = None
        # Regions only while everyone seen lately is still followed: a face
        # missing from the previous frame is looked for on the whole frame.
        if self.previous and self.position % self.every and len(self.previous) >= max(self.recent, default=0):
            faces = self._near_previous(small, factor)
            self.searches["region" if faces is not None else "lost"] += 1
        if faces is None:
            faces = self.full_pass(small, factor)
        self.follow(faces)
        return faces

    def full_pass(self, small: np.ndarray, factor: float) -> list[DetectedFace]:
        """Full-frame detection on a copy, out of order (early stopping's first pass); ``follow`` it in its turn."""
        self.searches["full"] += 1
        return self.detector.detect_scaled(small, factor, self.min_face_px)

    def follow(self, faces: list[DetectedFace]) -> None:
        """Take ``faces`` as the next sampled frame's (found here, or by an earlier ``full_pass`` on that frame)."""
        self.position += 1
        self.previous = faces
        self.recent.append(len(faces))

    def _near_previous(self, small: np.ndarray, factor: float) -> list[DetectedFace] | None:
        """Faces in the regions around the previous frame's faces; None if one of those is not found again."""
        height, width = small.shape[:2]
        regions = []
        for face in self.previous:
            x1, y1, x2, y2 = face.box * factor
            half = max(x2 - x1, y2 - y1) * (0.5 + self.margin)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            regions.append((max(0, int(cx - half)), max(0, int(cy - half)), min(width, math.ceil(cx + half)), min(height, math.ceil(cy + half))))
        floors = [self.ratio * face.size * factor for face in self.previous]  # copy pixels
        hits = self.detector.detect_regions(small, factor, regions, floors, self.min_face_px)
        centres = [((h.box[0] + h.box[2]) / 2 * factor, (h.box[1] + h.box[3]) / 2 * factor) for h in hits]
        for x1, y1, x2, y2 in regions:
            if not any(x1 <= x < x2 and y1 <= y < y2 for x, y in centres):
                return None
        return hits
