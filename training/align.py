"""Face crops re-cut the way the service cuts faces, so a dataset's own cropping does not decide its score.

Datasets ship face crops of their own tightness (DFDC's are tight, MesoNet's
loose). The service never sees such crops: it runs MTCNN on the image and
cuts the square of the checkpoint's ``crop`` geometry. ``AlignedLoader`` does
the same to a crop: pads it 20% with black (MTCNN's boxes run past an
unpadded crop's edges), detects, takes the face nearest the centre, and cuts
it as serving does. Measured with the v1 model on ``mesonet_val``: frame AUC
0.774 on the crops as given, 0.823 on the crops re-cut (1,991 of 2,000 faces
found). A crop where no face is found is used as given (and counted).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..model.config import ModelConfig, ScoringConfig
from ..model.faces import FaceDetector, crop_face
from .cache import read_rgb
from .corruptions import Corruption
from .transforms import resize

PAD = 0.2


def variant(config: ModelConfig, corruption: Corruption | None = None) -> str:
    """What an aligned crop depends on besides its file: the padding, the model's crop geometry, a quality loss."""
    lost = f" degrade={corruption.name}" if corruption and corruption.name != "clean" else ""
    return f"aligned pad={PAD} scale={config.crop.scale} shift_y={config.crop.shift_y}{lost}"


class AlignedLoader:
    """path -> the S x S RGB crop the service would cut from that image (a ``cache.build_cache`` loader)."""

    def __init__(self, config: ModelConfig, detector: FaceDetector | None = None,
                 corruption: Corruption | None = None) -> None:
        self.config = config
        self.corruption = corruption  # applied to the source image before detection, as to a re-encoded upload
        self.detector = detector or FaceDetector(ScoringConfig())
        self.misses = 0
        self._lock = threading.Lock()  # one MTCNN call at a time (the cache builder uses threads)

    @property
    def variant(self) -> str:
        """Names what this loader does, for the cache's fingerprint."""
        return variant(self.config, self.corruption)

    def __call__(self, path: str, size: int) -> np.ndarray:
        image = read_rgb(path)
        if self.corruption:
            image = self.corruption(image)
        pad = int(round(PAD * max(image.shape[:2])))
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        with self._lock:
            faces = self.detector.detect(padded)
        if not faces:
            self.misses += 1
            return resize(image, size)
        centre = np.array(padded.shape[1::-1], dtype=np.float32) / 2
        face = min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))
        return crop_face(padded, face.box, self.config.crop, size)
