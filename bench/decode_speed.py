"""Reading a video's sampled frames: OpenCV grab/retrieve vs PyAV, on the shared clips, one run.

    python bench/decode_speed.py [--frames 32] [--repeat 2]

- opencv: the reader before issue 14 (grab() every frame, retrieve() the kept ones).
- pyav_all: PyAV with frame+slice threads, decoding every frame up to the last kept one.
- pyav_skip: what ships (model.media.read_video): PyAV as above, but frames
  that are not kept and that no other frame refers to are not decoded.

The three alternate per clip (same load). Prints wall and process CPU
seconds per video and whether every reader gave the same pixels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import av
import numpy as np
from score_video import grab_frames
from shared_data import shared_data
from unmask.model.media import Frame, probe_video, read_video, sample_indices


def pyav_all(path: Path, frames: int) -> list[Frame]:
    """PyAV decoding every frame (threaded), counting them, converting the kept ones."""
    info = probe_video(path)
    keep = set(sample_indices(info.frame_count, info.fps, frames))
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index in keep:
                out.append(Frame(index, round(index / info.fps, 3), frame.to_ndarray(format="rgb24")))
            if index >= max(keep):
                break
    return out


def pyav_skip(path: Path, frames: int) -> list[Frame]:
    return list(read_video(path, frames))


READERS = {"opencv": grab_frames, "pyav_all": pyav_all, "pyav_skip": pyav_skip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: UNMASK_SHARED_DATA, or ../shared/data)")
    args = parser.parse_args()
    args.data = shared_data(args.data)
    clips = sorted((args.data / "clips").glob("*.mp4"))
    wall = {name: [] for name in READERS}
    cpu = {name: [] for name in READERS}
    same = True
    for _ in range(args.repeat):
        for clip in clips:
            results = {}
            for name, read in READERS.items():
                w, c = time.perf_counter(), time.process_time()
                results[name] = read(clip, args.frames)
                wall[name].append(time.perf_counter() - w)
                cpu[name].append(time.process_time() - c)
            reference = results["opencv"]
            for frames in results.values():
                same &= [f.index for f in frames] == [f.index for f in reference]
                same &= all(np.array_equal(a.image, b.image) for a, b in zip(frames, reference))
    print(json.dumps({
        "clips": len(clips),
        "frames_per_video": args.frames,
        "wall_s_per_video": {k: round(statistics.mean(v), 3) for k, v in wall.items()},
        "cpu_s_per_video": {k: round(statistics.mean(v), 3) for k, v in cpu.items()},
        "pyav_skip_vs_opencv_cpu": round(sum(cpu["opencv"]) / sum(cpu["pyav_skip"]), 2),
        "pyav_all_vs_opencv_cpu": round(sum(cpu["opencv"]) / sum(cpu["pyav_all"]), 2),
        "same_frames_and_pixels": same,
    }, indent=2))


if __name__ == "__main__":
    main()
