"""Do inference crops of the shared clips look like the DFDC training crops?

    python bench/crop_match.py [--crops 100] [--frames 8]

No shared clip has its crop in dfdc_faces, so the check compares statistics:
MTCNN's 5 landmarks expressed in crop coordinates (eye distance, eye height,
nose position as fractions of the crop side) and sharpness (variance of the
Laplacian at 224 px). Training crops: DFDC crops padded 20% with black so
MTCNN can box them, landmarks mapped back into the crop. Inference crops:
what the predictor cuts from the clips' frames with the default model's
crop config.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2
import numpy as np
from shared_data import shared_data
from unmask.model.checkpoint import read_info, resolve_checkpoint
from unmask.model.config import ScoringConfig
from unmask.model.faces import FaceDetector, crop_box, crop_face
from unmask.model.media import read_video


def geometry(landmarks: np.ndarray, square: np.ndarray) -> tuple[float, float, float]:
    """(eye distance, eye height, nose x) as fractions of the crop side."""
    side = square[2] - square[0]
    pts = (landmarks - square[:2]) / side
    left, right, nose = pts[0], pts[1], pts[2]
    return float(np.linalg.norm(right - left)), float((left[1] + right[1]) / 2), float(nose[0])


def sharpness(crop: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def summary(rows: list[tuple[float, float, float, float]]) -> dict:
    arr = np.array(rows)
    names = ("eye_distance", "eye_height", "nose_x", "sharpness")
    return {"n": len(rows)} | {n: [round(float(np.percentile(arr[:, i], q)), 3) for q in (10, 50, 90)] for i, n in enumerate(names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=100)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: UNMASK_SHARED_DATA, or ../shared/data)")
    args = parser.parse_args()
    args.data = shared_data(args.data)
    config = read_info(resolve_checkpoint(None)).config

    train_rows = []
    full_res = FaceDetector(ScoringConfig(detect_max_side=4000, min_face_size=20))
    for path in sorted((args.data / "dfdc_faces" / "faces").glob("*.jpg"))[: args.crops]:
        crop = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        pad = int(0.2 * crop.shape[0])
        faces = full_res.detect(cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0))
        if faces:
            square = np.array([pad, pad, pad + crop.shape[1], pad + crop.shape[0]], dtype=np.float32)
            train_rows.append((*geometry(faces[0].landmarks, square), sharpness(cv2.resize(crop, (224, 224)))))

    serve_rows = []
    detector = FaceDetector()
    for clip in sorted((args.data / "clips").glob("*.mp4")):
        for frame in read_video(clip, frames=args.frames):
            for face in detector.detect(frame.image)[:1]:
                square = crop_box(face.box, config.crop)
                crop = crop_face(frame.image, face.box, config.crop, config.input_size)
                serve_rows.append((*geometry(face.landmarks, square), sharpness(crop)))

    print(json.dumps({"crop": {"scale": config.crop.scale, "shift_y": config.crop.shift_y},
                      "percentiles": [10, 50, 90],
                      "training_dfdc_crops": summary(train_rows), "inference_clip_crops": summary(serve_rows)}, indent=2))


if __name__ == "__main__":
    main()
