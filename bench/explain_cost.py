"""ms per face of a Grad-CAM heat map (explain=true), beside classifying the same faces, in one run.

    python bench/explain_cost.py [--model default] [--faces 4] [--repeats 5]

Real DFDC face crops (shared data, fakes) in batches of ``--faces`` (the
service explains at most ``explain_faces`` = 4 per file, in one batch).
Grad-CAM runs on the PyTorch model, as the predictor runs it whatever its
backend; classification runs on the predictor's backend with the checkpoint's
TTA (ONNX Runtime on CPU). Both alternate in the same process, so their ratio
is measured under the same machine load. PNG encoding of the maps is timed too.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2
import torch
from shared_data import shared_data
from unmask.model.explain import encode_heatmap, gradcam
from unmask.model.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--faces", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: UNMASK_SHARED_DATA, or ../shared/data)")
    args = parser.parse_args()
    args.data = shared_data(args.data)

    os.environ.setdefault("UNMASK_CACHE_DIR", tempfile.mkdtemp(prefix="unmask-bench-"))
    predictor = Predictor(args.model)
    size = predictor.model_config.input_size
    with open(args.data / "dfdc_faces" / "labels.csv", newline="") as fh:
        fakes = [row["path"] for row in csv.DictReader(fh) if row["label"] == "fake"][: args.faces]
    crops = [cv2.resize(cv2.cvtColor(cv2.imread(str(args.data / "dfdc_faces" / p)), cv2.COLOR_BGR2RGB), (size, size)) for p in fakes]
    batch = predictor.preprocess(crops)
    gradcam(predictor.torch_model, batch)  # warm-up (and the package's first import)
    predictor.classify(crops)
    timings: dict[str, list[float]] = {"gradcam": [], "png": [], "classify": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        maps = gradcam(predictor.torch_model, batch)
        timings["gradcam"].append((time.perf_counter() - start) * 1000 / len(crops))
        start = time.perf_counter()
        for heatmap in maps:
            encode_heatmap(heatmap)
        timings["png"].append((time.perf_counter() - start) * 1000 / len(crops))
        start = time.perf_counter()
        predictor.classify(crops)
        timings["classify"].append((time.perf_counter() - start) * 1000 / len(crops))
    ms = {name: round(statistics.median(values), 1) for name, values in timings.items()}
    print(json.dumps({
        "model": predictor.info.name,
        "architecture": predictor.model_config.architecture,
        "input_size": size,
        "faces_per_batch": len(crops),
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "classify_backend": predictor.backend.name,
        "tta": list(predictor.tta),
        "ms_per_face": ms,
        "explain_vs_classify": round((ms["gradcam"] + ms["png"]) / ms["classify"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
