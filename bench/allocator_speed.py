"""Training and inference images/s under glibc's malloc, tcmalloc and jemalloc, in one run.

    python bench/allocator_speed.py [--batch 32] [--steps 5] [--clips 4] [--rounds 2] [--data DIR]

Each measurement is a fresh process (an allocator is chosen by LD_PRELOAD
before Python starts). ``train`` and ``infer`` run Lite0 at 224 px on random
batches, fp32 channels_last, 2 threads: ``train`` is forward + backward + an
AdamW step at ``--batch``; ``infer`` is eager forward passes at batch 8 (the
service's TTA batch). ``video`` is the service's own path: the bundled
default and shipped ``ScoringConfig`` (PyAV, MTCNN, ONNX Runtime) on the
first ``--clips`` shared clips, seconds a video, and the file scores, which
must not depend on the allocator. Allocators alternate round by round, so
they share whatever else loads the machine.

Why it matters: at batch 32 Lite0's activations are tens of MB each, above
glibc's mmap threshold (32 MB at most), so glibc maps and unmaps them every
step and the kernel zeroes fresh pages each time (100,000+ page faults a
second, seen as system time); tcmalloc keeps the memory. The shipped video
path (ONNX Runtime, MTCNN on small copies) does not allocate such blocks and
measured the same under all three, so only training is told to preload
tcmalloc (docs/training.md). Allocators not installed (Debian:
``libtcmalloc-minimal4``, ``libjemalloc2``) are skipped and named.
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import statistics
import subprocess
import sys
import time

LIBRARIES = {"tcmalloc": "tcmalloc_minimal", "jemalloc": "jemalloc"}


def video_worker(clips: int, data: str | None) -> None:
    """Seconds a video on the shipped path, and each file's score."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pathlib import Path

    from shared_data import shared_data
    from unmask.model.config import ScoringConfig
    from unmask.model.predictor import Predictor

    files = sorted((shared_data(Path(data) if data else None) / "clips").glob("*.mp4"))[:clips]
    predictor = Predictor(None, ScoringConfig(device="cpu"))
    predictor.warmup()
    predictor.finish(predictor.prepare(files[0]))  # warm-up: the first video grows the heap and picks kernels
    scores, start = [], time.perf_counter()
    for path in files:
        scores.append(predictor.finish(predictor.prepare(path)).score)
    print(json.dumps({"seconds_per_video": (time.perf_counter() - start) / len(files), "scores": scores}))


def worker(mode: str, batch: int, steps: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from unmask.model.architectures import create_model

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = create_model("lite0").to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 224, 224).to(memory_format=torch.channels_last)
    if mode == "train":
        model.train()
        opt = torch.optim.AdamW(model.parameters(), 1e-4)
        y = torch.rand(batch)

        def step() -> None:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).view(-1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step() -> None:
            with torch.inference_mode():
                model(x)

    for _ in range(2):  # warm-up: first calls pick kernels and grow the heap
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(json.dumps({"images_per_s": batch * steps / (time.perf_counter() - start)}))


def measure(mode: str, library: str | None, args: argparse.Namespace, batch: int) -> dict:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if library:
        env["LD_PRELOAD"] = library
    command = [sys.executable, __file__, "--worker", mode, "--batch", str(batch), "--steps", str(args.steps),
               "--clips", str(args.clips)] + (["--data", str(args.data)] if args.data else [])  # video ignores batch, steps
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{mode} under {library or 'glibc'} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32, help="training batch (inference always uses 8)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--clips", type=int, default=4, help="shared clips for the video mode (0: skip it)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", default=None, help="the shared data folder (default: UNMASK_SHARED_DATA, or ../shared/data)")
    parser.add_argument("--worker", choices=["train", "infer", "video"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1 or args.batch < 1 or args.clips < 0:
        parser.error("--batch, --steps and --rounds must be at least 1, --clips at least 0")
    if args.worker == "video":
        video_worker(args.clips, args.data)
        return
    if args.worker:
        worker(args.worker, args.batch, args.steps)
        return

    allocators: dict[str, str | None] = {"glibc": None}
    missing = []
    for name, lib in LIBRARIES.items():
        path = ctypes.util.find_library(lib)  # a soname such as libtcmalloc_minimal.so.4: LD_PRELOAD finds it
        if path:
            allocators[name] = path
        else:
            missing.append(name)
    modes = [("train", args.batch), ("infer", 8)] + ([("video", args.batch)] if args.clips else [])
    results: dict[str, dict[str, list[dict]]] = {mode: {a: [] for a in allocators} for mode, _ in modes}
    for r in range(args.rounds):
        order = list(allocators) if r % 2 == 0 else list(reversed(allocators))
        for mode, batch in modes:
            for name in order:
                results[mode][name].append(measure(mode, allocators[name], args, batch))
    report: dict = {"batch": {"train": args.batch, "infer": 8}, "steps": args.steps, "clips": args.clips,
                    "rounds": args.rounds, "libraries": {k: v for k, v in allocators.items() if v}, "not_installed": missing}
    for mode, by_alloc in results.items():
        key = "seconds_per_video" if mode == "video" else "images_per_s"
        med = {a: round(statistics.median(run[key] for run in runs), 3 if mode == "video" else 1) for a, runs in by_alloc.items()}
        report[f"{mode}_{key}"] = med
        # a speedup > 1 is faster than glibc, for images/s (higher is better) and seconds (lower is better) alike
        report[f"{mode}_speedup_vs_glibc"] = {a: round((med["glibc"] / v) if mode == "video" else (v / med["glibc"]), 2)
                                              for a, v in med.items() if a != "glibc"}
    if "video" in results:  # the allocator must change speed only
        scores = {a: runs[0]["scores"] for a, runs in results["video"].items()}
        report["video_scores_identical"] = all(s == scores["glibc"] for s in scores.values())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
