"""Videos and pictures stored upside down or sideways without rotation metadata.

The readers already turn frames by the file's own rotation metadata (a
video's display matrix, a photo's EXIF orientation). A file that lacks it (a
re-encode that dropped it, a phone held upside down) shows MTCNN no upright
face: it then finds nothing, or finds the turned face with less confidence
(0.95-0.99 on an upside-down shared clip, where upright faces score 0.999+)
and the classifier scores an upside-down crop it was never trained on. So
until a frame shows a face with at least ``SURE`` confidence, each of the
first ``probe_frames`` sampled frames is also searched turned by 180, 90 and
270 degrees, and a turn whose best face is ``SURE`` and beats the upright
one is kept for the rest of the file. Boxes and landmarks are mapped back to
the file's own pixels, so the record's boxes are where the face is in the
file as it plays.
"""

from __future__ import annotations

import cv2
import numpy as np

from .faces import DetectedFace, FaceDetector

TURNS = (180, 90, 270)  # tried after upright, upside down first: the common case
SURE = 0.995  # MTCNN's confidence in an upright, unoccluded face is above this
_CV_TURN = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def turn_image(image: np.ndarray, turn: int) -> np.ndarray:
    """``image`` turned clockwise by ``turn`` degrees (0, 90, 180 or 270)."""
    return image if turn == 0 else np.ascontiguousarray(cv2.rotate(image, _CV_TURN[turn]))


def points_back(points: np.ndarray, turn: int, height: int, width: int) -> np.ndarray:
    """(x, y) points of the turned image -> the same points in the unturned one (``height`` x ``width``)."""
    x, y = points[:, 0], points[:, 1]
    if turn == 90:
        x, y = y, height - x
    elif turn == 180:
        x, y = width - x, height - y
    elif turn == 270:
        x, y = width - y, x
    return np.stack([x, y], axis=1).astype(np.float32)


def face_back(face: DetectedFace, turn: int, height: int, width: int) -> DetectedFace:
    """A face found in the turned image, in the unturned image's pixels (its box still [x1, y1, x2, y2])."""
    if turn == 0:
        return face
    corners = points_back(face.box.reshape(2, 2), turn, height, width)
    box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
    return DetectedFace(box, face.probability, points_back(face.landmarks, turn, height, width))


class Orientation:
    """The turn that shows one file's faces upright: 0 until a turned search of an early frame finds one."""

    def __init__(self, detector: FaceDetector, probe_frames: int, min_face_px: int = 0) -> None:
        self.detector = detector
        self.min_face_px = min_face_px
        self.turn = 0
        self.frames_left = probe_frames  # 0: never probe

    def probe(self, faces: list[DetectedFace], small: np.ndarray, factor: float) -> list[DetectedFace]:
        """This frame's faces: ``faces`` (found at the current turn), or those of a better turn while probing.

        The caller holds the detection lock. The turn is settled once a frame
        shows a ``SURE`` face, or after ``probe_frames`` frames.
        """
        if not self.frames_left:
            return faces
        self.frames_left -= 1
        best = _top(faces)
        if best >= SURE:
            self.frames_left = 0
            return faces
        for turn in TURNS:
            found = self.detector.detect_scaled(turn_image(small, turn), factor, self.min_face_px)
            if _top(found) >= SURE and _top(found) > best:
                self.turn, self.frames_left = turn, 0
                return found
        return faces


def _top(faces: list[DetectedFace]) -> float:
    return max((f.probability for f in faces), default=0.0)
