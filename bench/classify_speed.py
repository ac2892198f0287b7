"""ms per face for eager PyTorch and ONNX Runtime on one checkpoint, in one run.

    python bench/classify_speed.py [--model default] [--batch 8] [--repeats 10]

Real face crops from the shared frames are classified with the checkpoint's
TTA; both backends run alternately in the same process, so their ratio is
measured under the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from shared_data import shared_data
from unmask.model.config import ScoringConfig
from unmask.model.faces import crop_face
from unmask.model.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: UNMASK_SHARED_DATA, or ../shared/data)")
    args = parser.parse_args()
    args.data = shared_data(args.data)

    os.environ.setdefault("UNMASK_CACHE_DIR", tempfile.mkdtemp(prefix="unmask-bench-"))
    torch_pred = Predictor(args.model, ScoringConfig(device="cpu", backend="torch"))
    onnx_pred = Predictor(args.model, ScoringConfig(device="cpu", backend="onnx"), detector=torch_pred.detector)
    crops = _real_crops(torch_pred, args.data, args.batch)
    results: dict[str, list[float]] = {"torch": [], "onnx": []}
    for pred in (torch_pred, onnx_pred):
        pred.classify(crops)  # warm-up
    for _ in range(args.repeats):
        for name, pred in (("torch", torch_pred), ("onnx", onnx_pred)):
            start = time.perf_counter()
            pred.classify(crops)
            results[name].append((time.perf_counter() - start) * 1000 / len(crops))
    report = {
        "model": torch_pred.info.name,
        "architecture": torch_pred.model_config.architecture,
        "input_size": torch_pred.model_config.input_size,
        "tta": list(torch_pred.tta),
        "batch": len(crops),
        "threads": torch.get_num_threads(),
        "ms_per_face": {k: round(statistics.median(v), 2) for k, v in results.items()},
    }
    report["onnx_speedup_vs_torch"] = round(report["ms_per_face"]["torch"] / report["ms_per_face"]["onnx"], 2)
    print(json.dumps(report, indent=2))


def _real_crops(pred: Predictor, data: Path, count: int) -> list[np.ndarray]:
    from unmask.model.media import read_image

    crops = []
    for path in sorted((data / "frames").glob("*.jpg")):
        image = read_image(path).image
        for face in pred.detector.detect(image):
            crops.append(crop_face(image, face.box, pred.model_config.crop, pred.model_config.input_size))
    if not crops:
        raise SystemExit("no faces found in the shared frames")
    return [crops[i % len(crops)] for i in range(count)]


if __name__ == "__main__":
    main()
