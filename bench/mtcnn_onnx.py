"""MTCNN three ways, alone and inside detection, one run: facenet-pytorch as shipped,
unmask's (``fast_mtcnn``: channels-last torch nets, integral-image pyramid and
crops), and unmask's with the nets under ONNX Runtime.

    python bench/mtcnn_onnx.py [--frames 8] [--threads 1]

Exports facenet-pytorch's PNet (dynamic size), RNet and ONet to ONNX (in a
temporary folder), checks their outputs against torch, then times:

- each net alone on typical inputs (a 384x216 pyramid level, 40 RNet crops,
  8 ONet crops): torch in its default layout, in channels-last, and ORT;
- whole detections on sampled frames of the shared clips: full-frame passes
  and region passes (as model.face_tracking runs them) for the three;
- and whether unmask's full passes find the boxes facenet-pytorch's do.

Both run on ``--threads`` threads (torch intra-op and ORT intra-op), the
detector's setting. Prints wall and process CPU milliseconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import onnxruntime as ort
import torch
from shared_data import shared_data
from unmask.model.config import ScoringConfig
from unmask.model.face_tracking import FaceFollower
from unmask.model.faces import FaceDetector
from unmask.model.media import read_video

SHAPES = {"pnet": (1, 3, 216, 384), "rnet": (40, 3, 24, 24), "onet": (8, 3, 48, 48)}


class OrtNet(torch.nn.Module):
    """An ONNX Runtime session standing in for a facenet-pytorch net (tensors in, tensors out)."""

    def __init__(self, path: Path, threads: int) -> None:
        super().__init__()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.dtype_probe = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # detect_face reads the nets' dtype

    def forward(self, x: torch.Tensor):
        return tuple(torch.from_numpy(out) for out in self.session.run(None, {"x": x.numpy()}))


def export(net: torch.nn.Module, name: str, folder: Path) -> Path:
    path = folder / f"{name}.onnx"
    axes = {"x": {0: "n", 2: "h", 3: "w"}} if name == "pnet" else {"x": {0: "n"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.randn(*SHAPES[name]),), str(path), input_names=["x"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    return path


def clock(fn, repeat: int) -> dict:
    fn()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        fn()
    return {"wall_ms": round((time.perf_counter() - wall) / repeat * 1000, 2), "cpu_ms": round((time.process_time() - cpu) / repeat * 1000, 2)}


def detections(detector: FaceDetector, frames: list[np.ndarray]) -> dict:
    """Milliseconds per full-frame pass and per region pass over the frames."""
    full = clock(lambda: [detector.detect(f) for f in frames], 1)
    follower = FaceFollower(detector, ScoringConfig(detect_every=len(frames) + 1))
    follower.find(frames[0])
    regions = clock(lambda: [follower.find(f) for f in frames[1:]], 1)
    return {"full_pass_ms": round(full["wall_ms"] / len(frames), 1), "full_pass_cpu_ms": round(full["cpu_ms"] / len(frames), 1),
            "region_pass_ms": round(regions["wall_ms"] / (len(frames) - 1), 1),
            "region_pass_cpu_ms": round(regions["cpu_ms"] / (len(frames) - 1), 1)}


def box_agreement(a: FaceDetector, b: FaceDetector, frames: list[np.ndarray]) -> dict:
    """Full passes of two detectors on the same frames: frames whose face counts differ, largest box difference (px)."""
    differ, worst = 0, 0.0
    for frame in frames:
        x, y = a.detect(frame), b.detect(frame)
        if len(x) != len(y):
            differ += 1
            continue
        worst = max([worst, *(float(np.abs(p.box - q.box).max()) for p, q in zip(x, y))])
    return {"frames": len(frames), "face_counts_differ": differ, "max_box_diff_px": round(worst, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="sampled frames per clip")
    parser.add_argument("--threads", type=int, default=ScoringConfig().detect_threads)
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: UNMASK_SHARED_DATA, or ../shared/data)")
    args = parser.parse_args()
    args.data = shared_data(args.data)
    if args.frames < 2:  # the first frame is a full pass; region passes are timed on the others
        parser.error("--frames must be at least 2")
    torch.set_num_threads(args.threads)
    config = ScoringConfig(detect_threads=args.threads)
    shipped = FaceDetector(dataclasses.replace(config, fast_mtcnn=False))
    fast, with_ort = FaceDetector(config), FaceDetector(config)
    folder = Path(tempfile.mkdtemp(prefix="unmask-mtcnn-"))
    report: dict = {"threads": args.threads, "nets": {}}
    for name, shape in SHAPES.items():
        net, channels_last = getattr(shipped._mtcnn, name), getattr(fast._mtcnn, name)
        replacement = OrtNet(export(net, name, folder), args.threads)
        setattr(with_ort._mtcnn, name, replacement)
        x = torch.randn(*shape)
        with torch.inference_mode():
            reference, got = net(x), replacement(x)
            report["nets"][name] = {
                "input": list(shape),
                "ort_max_abs_diff": float(max((a - b).abs().max() for a, b in zip(reference, got))),
                "torch": clock(lambda n=net, x=x: n(x), 30),
                "torch_channels_last": clock(lambda n=channels_last, x=x: n(x), 30),
                "onnxruntime": clock(lambda r=replacement, x=x: r(x), 30),
            }
    frames = [f.image for clip in sorted((args.data / "clips").glob("*.mp4")) for f in read_video(clip, args.frames)]
    by_clip = [frames[i : i + args.frames] for i in range(0, len(frames), args.frames)]
    detectors = {"facenet_pytorch": shipped, "unmask": fast, "unmask_onnxruntime": with_ort}
    runs: dict = {name: [] for name in detectors}
    for clip_frames in by_clip:  # alternating per clip: same load
        for name, detector in detectors.items():
            runs[name].append(detections(detector, clip_frames))
    report["detection"] = {k: {m: round(float(np.mean([r[m] for r in v])), 1) for m in v[0]} for k, v in runs.items()}
    report["unmask_vs_facenet_pytorch"] = box_agreement(fast, shipped, frames)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
