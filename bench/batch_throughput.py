"""Files per second of batch scoring on shared data: sequential vs pipelined, one run.

    python bench/batch_throughput.py [--crops 100] [--frames 32]

The list mixes what a batch meets: the 2 full frames, the 11 clips and N
face crops (half DFDC, half UTKFace). "sequential" scores one file after the
other; "pipelined" (model.pipeline.score_many, what `unmask score` uses)
decodes and detects the next file while the current one is classified.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from unmask.model.pipeline import score_many
from unmask.model.predictor import Predictor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=100)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--data", type=Path, default=SHARED)
    args = parser.parse_args()
    os.environ.setdefault("UNMASK_CACHE_DIR", tempfile.mkdtemp(prefix="unmask-bench-"))

    dfdc = sorted((args.data / "dfdc_faces" / "faces").glob("*.jpg"))[: args.crops // 2]
    utk = sorted((args.data / "utkface").glob("*.jpg"))[: args.crops - len(dfdc)]
    groups = {
        "frames": sorted((args.data / "frames").glob("*.jpg")),
        "clips": sorted((args.data / "clips").glob("*.mp4")),
        "crops": dfdc + utk,
    }
    files = [p for paths in groups.values() for p in paths]
    predictor = Predictor(device="cpu", frames=args.frames)
    predictor.warmup()

    timings = {}
    statuses = {}
    for mode in ("sequential", "pipelined"):
        start = time.perf_counter()
        results = [predictor.score_file(p) for p in files] if mode == "sequential" else list(score_many(predictor, files))
        timings[mode] = time.perf_counter() - start
        statuses[mode] = {s: sum(r.status == s for r in results) for s in ("ok", "no_face", "error")}
    per_group = {}
    for name, paths in groups.items():
        start = time.perf_counter()
        list(score_many(predictor, paths))
        per_group[name] = {"files": len(paths), "files_per_s": round(len(paths) / (time.perf_counter() - start), 2)}
    print(json.dumps({
        "files": len(files),
        "frames_per_video": args.frames,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "files_per_s": {k: round(len(files) / v, 2) for k, v in timings.items()},
        "pipelined_speedup": round(timings["sequential"] / timings["pipelined"], 2),
        "statuses": statuses["pipelined"],
        "per_group_pipelined": per_group,
    }, indent=2))


if __name__ == "__main__":
    main()
