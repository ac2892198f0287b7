"""Files per second of batch scoring on shared data: before and after issue 14, sequential and pipelined, one run.

    python bench/batch_throughput.py [--crops 100] [--frames 32]
    python bench/batch_throughput.py --levers   # the shortcuts alone and together, pipelined (docs/speed.md)

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

With ``--levers``: pipelined only, the full-work path (every shortcut off)
against each shortcut alone, all together and the defaults, one after the
other under the same load: files/s, CPU s, frames scored, and verdicts equal
to the full-work path with the largest score difference.
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


def run_levers(files: list[Path], frames: int) -> None:
    """Pipelined scoring of ``files`` under each shortcut setting of ``score_video.LEVERS``, the same load for all."""
    from score_video import FULL_WORK, LEVERS

    together = {k: v for lever in LEVERS.values() for k, v in lever.items()}
    defaults = {k: v for k, v in together.items() if getattr(ScoringConfig(), k) == v}
    configs = {"full_work": {}, **LEVERS, "together": together, "defaults": defaults}
    first = Predictor(config=ScoringConfig(device="cpu", frames=frames, **FULL_WORK))
    predictors = {name: Predictor(config=ScoringConfig(device="cpu", frames=frames, **{**FULL_WORK, **extra}), detector=first.detector)
                  for name, extra in configs.items()}
    for predictor in predictors.values():
        predictor.warmup()
    report: dict = {"files": len(files), "frames_per_video": frames, "levers": configs}
    reference = None
    for name, predictor in predictors.items():
        wall, cpu = time.perf_counter(), time.process_time()
        results = list(score_many(predictor, files))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        reference = reference or results
        same = [a.status == b.status and a.label == b.label for a, b in zip(results, reference, strict=True)]
        diffs = [abs(a.score - b.score) for a, b in zip(results, reference) if a.score is not None and b.score is not None]
        report[name] = {"files_per_s": round(len(files) / wall, 2), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                        "frames_scored": sum(r.work.frames_scored for r in results if r.work),
                        "views": sum(r.work.views for r in results if r.work),
                        "verdicts_equal": f"{sum(same)}/{len(same)}", "max_score_diff": round(max(diffs, default=0.0), 4)}
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=100)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--levers", action="store_true", help="the shortcuts alone and together against the full-work path")
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
    if args.levers:
        return run_levers(files, args.frames)
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
