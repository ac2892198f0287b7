"""Seconds per video on the shared clips, with parity, in one run.

    python bench/score_video.py [--model default] [--clips N] [--frames 32] [--no-naive] [--set KEY=VALUE ...]
    python bench/score_video.py --levers [--clips N]   # the shortcuts, each alone and together (docs/speed.md)

Three pipelines score each clip, one after the other per clip so all see the
same machine load:

- unmask: what ships (``ScoringConfig()`` defaults; ``--set`` changes them):
  PyAV reading forward, skipping frames nothing refers to, decoding ahead in
  a second thread; full-frame MTCNN on every ``detect_every``-th frame and
  MTCNN on regions around the faces in between; ONNX Runtime.
- full ("today"): OpenCV grab/retrieve reading, full-frame MTCNN (<= 960 px
  copy, torch's default threads) on every sampled frame, ONNX Runtime: the
  pipeline before issue 14 (classification batching aside).
- naive: seek to each sampled frame, MTCNN at full resolution on every
  frame, eager PyTorch.

With ``--levers`` the pipelines are instead the full-work path (every
shortcut off: ``early_stop``, ``min_face_px``, ``adaptive_tta``), each
shortcut alone at its fitted setting, all of them together, and those on by
default (``ScoringConfig``), one after the other per clip. Per pipeline it prints mean wall and CPU seconds per clip,
frames scored, faces classified, classifier views, MTCNN searches, and
agreement with the full-work path (verdicts, max score difference, faces of
60 px or more found).

Prints one JSON line per clip, then a summary: mean wall and process CPU
seconds per video (CPU time is disturbed less by other load), the split into
decode / detect / classify, the speedups, and parity of unmask against full:
every verdict the same, file scores within 0.03, and faces of 60 px or more
(shorter box side, original pixels) that full detection finds, found by
unmask on the same frame (IoU >= 0.5) at least 98% of the time.
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
import torch
from shared_data import shared_data
from unmask.model.config import ScoringConfig
from unmask.model.media import Frame, probe_video, sample_indices
from unmask.model.predictor import Predictor
from unmask.model.results import MediaResult
from unmask.model.tracker import box_iou

STAGES = ("decode", "detect", "classify", "total")
PARITY = {"score": 0.03, "face_px": 60, "iou": 0.5, "recall": 0.98}


def grab_frames(path: Path, frames: int) -> list[Frame]:
    """Today's reader before issue 14: OpenCV, forward, grab() every frame, retrieve() the kept ones."""
    cap = cv2.VideoCapture(str(path))
    try:
        count, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
        keep, out, index = sample_indices(count, fps, frames), [], 0
        wanted = iter(keep)
        target = next(wanted, None)
        while target is not None and cap.grab():
            if index == target:
                ok, bgr = cap.retrieve()
                if ok:
                    out.append(Frame(index, round(index / fps, 3), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                target = next(wanted, None)
            index += 1
        return out
    finally:
        cap.release()


def seek_frames(path: Path, frames: int) -> list[Frame]:
    """The naive reader: one seek per sampled frame."""
    info = probe_video(path)
    cap = cv2.VideoCapture(str(path))
    out = []
    try:
        for index in sample_indices(info.frame_count, info.fps, frames):
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, bgr = cap.read()
            if ok:
                out.append(Frame(index, round(index / info.fps, 3), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        return out
    finally:
        cap.release()


def timed(score) -> tuple[MediaResult, dict]:
    """Run ``score() -> (record, decode_s)``; wall and process CPU seconds and the split."""
    wall, cpu = time.perf_counter(), time.process_time()
    result, decode_s = score()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    split = {k: round(v / 1000, 3) for k, v in result.timings_ms.items()}
    if decode_s is not None:  # frames were decoded before the predictor saw them
        split["decode"] = round(decode_s, 3)
    split["total"] = round(wall, 3)
    return result, {"wall": round(wall, 3), "cpu": round(cpu, 3), "split": split}


def with_decode(read, clip: Path, frames: int, predictor: Predictor) -> tuple[MediaResult, float]:
    start = time.perf_counter()
    decoded = read(clip, frames)
    decode_s = time.perf_counter() - start
    return predictor.predict(decoded, clip.name), decode_s


def prepare_and_finish(predictor: Predictor, clip: Path, searches: dict) -> tuple[MediaResult, None]:
    """The shipped path (decoding timed inside); ``searches`` gets how the frames were searched for faces."""
    prepared = predictor.prepare(clip)
    searches.update(prepared.searches)
    return predictor.finish(prepared), None


def parity(fast: MediaResult, full: MediaResult) -> dict:
    """unmask against full detection on every frame: verdict, score, faces >= 60 px found."""
    fast_frames = {f.index: f for f in fast.frames}
    wanted = found = 0
    for frame in full.frames:
        for face in frame.faces:
            x1, y1, x2, y2 = face.box
            if min(x2 - x1, y2 - y1) < PARITY["face_px"]:
                continue
            wanted += 1
            other = fast_frames.get(frame.index)
            found += bool(other and any(box_iou(face.box, f.box) >= PARITY["iou"] for f in other.faces))
    same_verdict = fast.status == full.status and fast.label == full.label
    diff = abs(fast.score - full.score) if fast.score is not None and full.score is not None else 0.0
    return {"same_verdict": same_verdict, "score_diff": round(diff, 4), "faces_60px": wanted, "found": found}


def mean_of(rows: list[dict], pipeline: str) -> dict:
    return {
        "wall_s": round(statistics.mean(r[pipeline]["wall"] for r in rows), 3),
        "cpu_s": round(statistics.mean(r[pipeline]["cpu"] for r in rows), 3),
        "split_s": {s: round(statistics.mean(r[pipeline]["split"].get(s, 0.0) for r in rows), 3) for s in STAGES},
    }


FULL_WORK = dict(early_stop=False, min_face_px=0, adaptive_tta=False)  # every shortcut off
LEVERS = {"early_stop": dict(early_stop=True), "min_face_px": dict(min_face_px=50), "adaptive_tta": dict(adaptive_tta=True)}


def run_levers(args, base: dict) -> None:
    """Each shortcut alone and all together against the full-work path, alternating per clip (ratios in one run)."""
    together = {k: v for lever in LEVERS.values() for k, v in lever.items()}
    defaults = {k: v for k, v in together.items() if getattr(ScoringConfig(), k) == v}  # the levers on by default
    configs = {"full_work": {}, **LEVERS, "together": together, "defaults": defaults}
    full = Predictor(args.model, ScoringConfig(**base, backend="onnx", **FULL_WORK, **parse_sets(args.set)))
    predictors = {name: Predictor(args.model, ScoringConfig(**base, backend="onnx", **{**FULL_WORK, **extra}, **parse_sets(args.set)),
                                  detector=full.detector) for name, extra in configs.items()}
    for predictor in predictors.values():
        predictor.warmup()
    clips = sorted((args.data / "clips").glob("*.mp4"))
    clips = clips[: args.clips] if args.clips else clips
    rows = []
    for clip in clips:
        row: dict = {"clip": clip.name}
        for name, predictor in predictors.items():
            searches: dict = {}
            result, t = timed(lambda: prepare_and_finish(predictor, clip, searches))  # noqa: B023 (called at once)
            row[name] = {**t, "result": result, "searches": searches, "work": result.work}
        reference = row["full_work"]["result"]
        printable = {"clip": clip.name}
        for name in predictors:
            cell = row[name]
            cell["parity"] = parity(cell["result"], reference)
            printable[name] = {"label": cell["result"].label, "score": cell["result"].score, "wall": cell["wall"], "cpu": cell["cpu"],
                               "frames_scored": cell["work"].frames_scored, "faces": cell["work"].faces,
                               "views": cell["work"].views, "searches": searches_of(cell), "parity": cell["parity"]}
        rows.append(row)
        print(json.dumps(printable), flush=True)
    summary: dict = {"clips": len(rows), "frames_per_video": args.frames, "levers": {n: c for n, c in configs.items()}}
    for name in predictors:
        cells = [r[name] for r in rows]
        wanted = sum(c["parity"]["faces_60px"] for c in cells)
        summary[name] = {
            "wall_s": round(statistics.mean(c["wall"] for c in cells), 3),
            "cpu_s": round(statistics.mean(c["cpu"] for c in cells), 3),
            "cpu_vs_full_work": round(sum(c["cpu"] for c in cells) / sum(r["full_work"]["cpu"] for r in rows), 3),
            "wall_vs_full_work": round(sum(c["wall"] for c in cells) / sum(r["full_work"]["wall"] for r in rows), 3),
            "frames_scored": round(statistics.mean(c["work"].frames_scored for c in cells), 2),
            "stopped_early": sum(c["work"].stopped == "clear_verdict" for c in cells),
            "faces": round(statistics.mean(c["work"].faces for c in cells), 2),
            "views": round(statistics.mean(c["work"].views for c in cells), 2),
            "mtcnn_searches": round(statistics.mean(searches_of(c) for c in cells), 2),
            "verdicts_equal": sum(c["parity"]["same_verdict"] for c in cells),
            "max_score_diff": max(c["parity"]["score_diff"] for c in cells),
            "faces_60px_found": round(sum(c["parity"]["found"] for c in cells) / wanted, 4) if wanted else None,
        }
    print(json.dumps(summary, indent=2))


def searches_of(cell: dict) -> int:
    """MTCNN searches run on the clip (full frames and regions; a region search after a lost face counts too)."""
    return sum(cell["searches"].values())


def parse_sets(pairs: list[str]) -> dict:
    """KEY=VALUE pairs for ScoringConfig, values parsed as JSON where they parse."""
    options = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--clips", type=int, default=0, help="first N clips only (0: all)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: UNMASK_SHARED_DATA, or ../shared/data)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive pipeline (parity and today only)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a ScoringConfig field for unmask")
    parser.add_argument("--levers", action="store_true", help="the shortcuts alone and together against the full-work path")
    args = parser.parse_args()
    args.data = shared_data(args.data)

    os.environ.setdefault("UNMASK_CACHE_DIR", tempfile.mkdtemp(prefix="unmask-bench-"))
    base = dict(device="cpu", frames=args.frames)
    if args.levers:
        return run_levers(args, base)
    fast = Predictor(args.model, ScoringConfig(**base, backend="onnx", **parse_sets(args.set)))
    # Before issue 14: full detection on every frame, no decoding ahead, MTCNN on torch's default threads.
    today = dict(detect_every=1, region_min_face=0.0, decode_ahead=0, detect_threads=torch.get_num_threads(), fast_mtcnn=False)
    full = Predictor(args.model, ScoringConfig(**base, backend="onnx", **today))
    naive = None
    if not args.no_naive:
        naive = Predictor(args.model, ScoringConfig(**base, backend="torch", detect_max_side=100_000, **today))
    for predictor in filter(None, (fast, full, naive)):
        predictor.warmup()
    clips = sorted((args.data / "clips").glob("*.mp4"))
    clips = clips[: args.clips] if args.clips else clips
    rows = []
    for clip in clips:
        searches: dict = {}
        fast_result, fast_t = timed(lambda: prepare_and_finish(fast, clip, searches))  # noqa: B023 (called at once)
        full_result, full_t = timed(lambda: with_decode(grab_frames, clip, args.frames, full))  # noqa: B023
        row = {"clip": clip.name, "label": fast_result.label, "score": fast_result.score, "full_score": full_result.score,
               "faces": sum(len(f.faces) for f in fast_result.frames), "parity": parity(fast_result, full_result),
               "unmask": fast_t, "full": full_t}
        row["searches"] = searches
        if naive is not None:
            _, row["naive"] = timed(lambda: with_decode(seek_frames, clip, args.frames, naive))  # noqa: B023
        rows.append(row)
        print(json.dumps(row), flush=True)

    faces = sum(r["parity"]["faces_60px"] for r in rows)
    found = sum(r["parity"]["found"] for r in rows)
    summary = {
        "clips": len(rows),
        "frames_per_video": args.frames,
        "unmask_config": parse_sets(args.set) or "defaults",
        "unmask": mean_of(rows, "unmask"),
        "full": mean_of(rows, "full"),
        "speedup_vs_full_wall": round(sum(r["full"]["wall"] for r in rows) / sum(r["unmask"]["wall"] for r in rows), 2),
        "speedup_vs_full_cpu": round(sum(r["full"]["cpu"] for r in rows) / sum(r["unmask"]["cpu"] for r in rows), 2),
        "parity": {
            "verdicts_unchanged": sum(r["parity"]["same_verdict"] for r in rows),
            "max_score_diff": max(r["parity"]["score_diff"] for r in rows),
            "faces_60px_found": round(found / faces, 4) if faces else None,
            "faces_60px": faces,
        },
    }
    if naive is not None:
        summary["naive"] = mean_of(rows, "naive")
        summary["speedup_vs_naive_wall"] = round(sum(r["naive"]["wall"] for r in rows) / sum(r["unmask"]["wall"] for r in rows), 2)
        summary["speedup_vs_naive_cpu"] = round(sum(r["naive"]["cpu"] for r in rows) / sum(r["unmask"]["cpu"] for r in rows), 2)
    p = summary["parity"]
    summary["targets"] = {
        "mean_wall_le_2s": summary["unmask"]["wall_s"] <= 2.0,
        "naive_ratio_ge_5x": summary.get("speedup_vs_naive_wall", 0) >= 5.0 if naive is not None else None,
        "parity": p["verdicts_unchanged"] == len(rows) and p["max_score_diff"] <= PARITY["score"]
        and (p["faces_60px_found"] is None or p["faces_60px_found"] >= PARITY["recall"]),  # None: no such face at all
    }
    summary["dfdc_limit_s_per_video"] = 8.1
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
