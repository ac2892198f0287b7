"""dlib 68-point facial landmarks for tight face crops, and a cache of them.

dlib's own face detector misses many tight crops, so the predictor is given
the crop itself as the face rectangle, after padding the crop 20% with a
black border (the predictor was trained on looser detector boxes).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .errors import TrainingError, require

log = logging.getLogger(__name__)

PAD = 0.20
_PREDICTOR = None


class LandmarkError(TrainingError, RuntimeError):
    """The landmark model is missing or an image cannot be read."""


def predictor_path() -> Path:
    """The 68-point model file of ``face-recognition-models`` (its __init__ is not imported)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LandmarkError("package 'face-recognition-models' not installed (pip install 'unmask[train]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise LandmarkError(f"{path}: landmark model missing")
    return path


def _predictor():
    global _PREDICTOR
    if _PREDICTOR is None:
        dlib = require("dlib", "SBI landmarks")

        _PREDICTOR = dlib.shape_predictor(str(predictor_path()))
    return _PREDICTOR


def face_landmarks(img: np.ndarray, pad: float = PAD) -> np.ndarray:
    """(68, 2) float32 landmarks (x, y) in the crop's coordinates for an RGB uint8 face crop.

    Points may fall slightly outside the crop (within the padding).
    """
    dlib = require("dlib", "SBI landmarks")

    h, w = img.shape[:2]
    px, py = int(round(pad * w)), int(round(pad * h))
    padded = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    rect = dlib.rectangle(px, py, px + w - 1, py + h - 1)
    shape = _predictor()(np.ascontiguousarray(padded), rect)
    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    return pts - np.array([px, py], dtype=np.float32)


def load_or_compute(paths: Sequence[str | Path], cache: str | Path, read: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
    """Landmarks for every path, on the image ``read(path)`` gives, from ``cache`` (.npy + .json path list) or computed.

    Points are in the coordinates of the images training uses (resized to the
    input size), so the cache file should name that size. A cache that lacks
    some of ``paths`` is extended.
    """
    cache = Path(cache)
    index_path = cache.with_suffix(".json")
    known: dict[str, np.ndarray] = {}
    if cache.is_file() and index_path.is_file():
        pts = np.load(cache, allow_pickle=False)
        names = json.loads(index_path.read_text())
        known = {name: pts[i] for i, name in enumerate(names)}
    todo = [str(p) for p in paths if str(p) not in known]
    if todo:
        log.info("computing landmarks for %d faces (cache %s)", len(todo), cache)
        start = time.monotonic()
        for i, p in enumerate(todo, 1):
            known[p] = face_landmarks(np.asarray(read(p)))
            if i % 2000 == 0:
                log.info("landmarks %d/%d (%.0f faces/s)", i, len(todo), i / (time.monotonic() - start))
        cache.parent.mkdir(parents=True, exist_ok=True)
        names = sorted(known)
        np.save(cache, np.stack([known[n] for n in names]).astype(np.float32), allow_pickle=False)
        index_path.write_text(json.dumps(names))
    return {str(p): known[str(p)] for p in paths}
