"""Files per second of batch scoring on shared data: before and after issue 14, sequential and pipelined, one run.

    python bench/batch_throughput.py [--crops 100] [--frames 32]

The list mixes what a batch meets: the 2 full frames, the 11 clips and N
face crops (half DFDC, half UTKFace). "before" is the detection of before
issue 14 (full-frame MTCNN on every sampled frame on torch's default
threads, no decoding ahead);
"after" is what ships (ScoringConfig defaults). Both read videos with the
shipped PyAV reader (bench/decode_speed.py compares readers). "sequential"
scores one file after the other; "pipelined" (model.pipeline.score_many,
what `unmask score` uses) decodes and detects the next file while the
current one is classified. Wall and process CPU seconds are printed (CPU
time is disturbed less by other load on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from shared_data import shared_data
from unmask.model.config import ScoringConfig
from unmask.model.pipeline import score_many
from unmask.model.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=100)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: UNMASK_SHARED_DATA, or ../shared/data)")
    args = parser.parse_args()
    args.data = shared_data(args.data)
    os.environ.setdefault("UNMASK_CACHE_DIR", tempfile.mkdtemp(prefix="unmask-bench-"))

    dfdc = sorted((args.data / "dfdc_faces" / "faces").glob("*.jpg"))[: args.crops // 2]
    utk = sorted((args.data / "utkface").glob("*.jpg"))[: args.crops - len(dfdc)]
    groups = {
        "frames": sorted((args.data / "frames").glob("*.jpg")),
        "clips": sorted((args.data / "clips").glob("*.mp4")),
        "crops": dfdc + utk,
    }
    files = [p for paths in groups.values() for p in paths]
    before = dict(detect_every=1, decode_ahead=0, detect_threads=torch.get_num_threads(), fast_mtcnn=False)  # detection before issue 14
    after = Predictor(config=ScoringConfig(device="cpu", frames=args.frames))
    predictors = {"before": Predictor(config=ScoringConfig(device="cpu", frames=args.frames, **before)), "after": after}
    for predictor in predictors.values():
        predictor.warmup()

    report: dict = {"files": len(files), "frames_per_video": args.frames}
    for mode in ("sequential", "pipelined"):
        for name, predictor in predictors.items():  # alternating: both see the same load
            wall, cpu = time.perf_counter(), time.process_time()
            results = [predictor.predict(p, on_error="record") for p in files] if mode == "sequential" else list(score_many(predictor, files))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            report[f"{name}_{mode}"] = {
                "files_per_s": round(len(files) / wall, 2),
                "cpu_s": round(cpu, 1),
                "wall_s": round(wall, 1),
                "statuses": {s: sum(r.status == s for r in results) for s in ("ok", "no_face", "error")},
            }
    for mode in ("sequential", "pipelined"):
        report[f"after_vs_before_{mode}"] = round(report[f"before_{mode}"]["wall_s"] / report[f"after_{mode}"]["wall_s"], 2)
    per_group = {}
    for name, paths in groups.items():
        start = time.perf_counter()
        list(score_many(after, paths))
        per_group[name] = {"files": len(paths), "files_per_s": round(len(paths) / (time.perf_counter() - start), 2)}
    report["after_per_group_pipelined"] = per_group
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
