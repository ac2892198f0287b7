"""Seconds per video on the shared clips: unmask's pipeline vs a naive one, one run.

    python bench/score_video.py [--model default] [--clips N] [--frames 32]

unmask: read forward (grab/retrieve), MTCNN on a copy downscaled to <= 960 px,
ONNX Runtime (the CPU default). Naive: seek to each sampled frame, MTCNN at
full resolution, eager PyTorch. Same frames, same model, same TTA; the two run
alternately per clip so both see the same machine load. Prints a JSON report
with the split into decode, detection and classification.
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

import cv2
from unmask.model.faces import FaceDetector
from unmask.model.media import Frame, probe_video, sample_indices
from unmask.model.predictor import Predictor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def seek_frames(path: Path, frames: int):
    """The naive reader: one seek per sampled frame."""
    info = probe_video(path)
    cap = cv2.VideoCapture(str(path))
    try:
        for index in sample_indices(info.frame_count, info.fps, frames):
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, bgr = cap.read()
            if ok:
                yield Frame(index, index / info.fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--clips", type=int, default=0, help="first N clips only (0: all)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--data", type=Path, default=SHARED)
    args = parser.parse_args()

    os.environ.setdefault("UNMASK_CACHE_DIR", tempfile.mkdtemp(prefix="unmask-bench-"))
    fast = Predictor(args.model, device="cpu", backend="onnx", frames=args.frames)
    naive = Predictor(args.model, device="cpu", backend="torch", frames=args.frames, detector=FaceDetector(max_side=100_000))
    fast.warmup()
    naive.warmup()
    clips = sorted((args.data / "clips").glob("*.mp4"))
    clips = clips[: args.clips] if args.clips else clips
    rows = []
    for clip in clips:
        fast_result = fast.score_file(clip)
        start = time.perf_counter()
        naive_result = naive.score_frames(seek_frames(clip, args.frames), clip.name, "video")
        naive_total = time.perf_counter() - start
        rows.append(
            {
                "clip": clip.name,
                "faces": fast_result.face_count,
                "score": fast_result.score,
                "unmask_s": {k: round(v / 1000, 2) for k, v in fast_result.timings_ms.items()},
                "naive_s": {k: round(v / 1000, 2) for k, v in naive_result.timings_ms.items()} | {"total": round(naive_total, 2)},
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    fast_totals = [r["unmask_s"]["total"] for r in rows]
    naive_totals = [r["naive_s"]["total"] for r in rows]
    summary = {
        "clips": len(rows),
        "frames_per_video": args.frames,
        "unmask_s_per_video": {
            stage: round(statistics.mean(r["unmask_s"][stage] for r in rows), 2) for stage in ("decode", "detect", "classify", "total")
        },
        "naive_s_per_video": {
            stage: round(statistics.mean(r["naive_s"][stage] for r in rows), 2) for stage in ("decode", "detect", "classify", "total")
        },
        "speedup_vs_naive": round(sum(naive_totals) / sum(fast_totals), 2),
        "dfdc_limit_s_per_video": 8.1,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
