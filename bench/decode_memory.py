"""Peak memory of one ``decode_image`` per kind of image, in bytes per pixel, measured in one run.

    python bench/decode_memory.py [--side 7000]

Writes an RGB PNG, a 16-bit greyscale PNG and a float (0-1) greyscale TIFF of
side x side pixels, then decodes each in a fresh process (so one decode's peak
cannot hide another's) and reports its peak RSS (``VmHWM``, reset just before
the call) over its RSS then, per pixel. ``bench/memory.py``'s bound measures B
with RGB PNGs; the other kinds should not peak above RGB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]  # the child imports bench.proc_memory from here

# Run in the child: read the file, then measure the decode alone, from a peak reset to the
# current RSS (Linux's ru_maxrss would carry the parent's peak across exec).
CHILD = """
import json, sys
from pathlib import Path
from bench.proc_memory import reset_peak, status
from unmask.model.media import decode_image
data = Path(sys.argv[1]).read_bytes()
reset_peak()
before = status()["VmRSS"]
rgb = decode_image(data, 10**9)
peak = status()["VmHWM"]
print(json.dumps({"shape": list(rgb.shape), "bytes_per_pixel": (peak - before) / (rgb.shape[0] * rgb.shape[1])}))
"""


def write_samples(folder: Path, side: int) -> dict[str, Path]:
    """Smooth gradients, so the files are small and the decoder does the work."""
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    grey = np.add.outer(ramp, ramp) / 2
    paths = {"rgb_png": folder / "rgb.png", "grey16_png": folder / "grey16.png", "float_tiff": folder / "float.tif"}
    Image.fromarray(np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)).save(paths["rgb_png"])
    Image.fromarray((grey * 65535).astype(np.uint16)).save(paths["grey16_png"])
    Image.fromarray(grey, "F").save(paths["float_tiff"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=7000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for kind, path in write_samples(Path(tmp), args.side).items():
            out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True, cwd=ROOT)
            results[kind] = json.loads(out.stdout)
    for kind, r in results.items():
        print(f"{kind:12s} {r['bytes_per_pixel']:5.1f} bytes a pixel at peak ({r['shape'][1]}x{r['shape'][0]})")
    worst = max(results.values(), key=lambda r: r["bytes_per_pixel"])["bytes_per_pixel"]
    print(f"highest / RGB PNG: {worst / results['rgb_png']['bytes_per_pixel']:.2f}")


if __name__ == "__main__":
    main()
