"""Peak memory of a real ``unmask serve`` under large synchronous requests, against the bound its settings promise.

Scenarios (each from a reset peak, /proc/PID/clear_refs):
  A. one request of 16 PNGs of 7000x7000 (784 M pixels): over
     ``sync_max_request_pixels`` (400 M), refused with 413 before decoding;
  B. one request of 8 such PNGs (392 M pixels): checked, then decoded and
     scored one at a time;
  C. 8 concurrent synchronous requests (``sync_max_pending``), one such PNG each.

The bound: peak RSS <= idle RSS + (sync_max_pending + job_workers) x
max_pixels x B + 2 x max_pixels x 4, where B is the bytes one decoded pixel
costs at its peak while scored (measured in B: the request's peak over its
baseline, per pixel of one file; files are decoded one at a time), and the
last term is the two job submissions that may decode a file at once to
check it (native mode: at most 4 bytes a pixel).

    python bench/memory.py            # the default model, as `unmask serve` runs it
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from unmask.service.lifespan import JOB_CHECKS  # noqa: E402

from bench.proc_memory import reset_peak, status  # noqa: E402
from bench.shared_data import shared_data  # noqa: E402
from tests.service.live import LiveServer  # noqa: E402

SIDE = 7000
MAX_PIXELS = 50_000_000
SYNC_MAX_PENDING = 8
JOB_WORKERS = 1


def png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (128, 100, 90)).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def measure(pid: int, run) -> tuple[int, int, float, list[int]]:
    """(RSS before, peak during, seconds, statuses) of ``run()``."""
    time.sleep(1.0)
    reset_peak(pid)
    before = status(pid)["VmRSS"]
    started = time.perf_counter()
    statuses = run()
    return before, status(pid)["VmHWM"], time.perf_counter() - started, statuses


def main() -> None:
    image = png(SIDE)
    print(f"one {SIDE}x{SIDE} RGB PNG: {len(image) / 1e6:.2f} MB, {SIDE * SIDE / 1e6:.0f} M pixels", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer({"UNMASK_DATA_DIR": tmp, "UNMASK_MAX_PIXELS": str(MAX_PIXELS),
                             "UNMASK_SYNC_MAX_PENDING": str(SYNC_MAX_PENDING)}, Path(tmp) / "server.log").start()
        pid = server.proc.pid
        try:
            client = httpx.Client(base_url=server.url, timeout=600)
            small = shared_data() / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
            client.post("/v1/images", files={"files": (small.name, small.read_bytes())})  # warm
            idle = status(pid)["VmRSS"]
            print(f"idle RSS after one small request: {idle / 2**20:.0f} MiB", flush=True)

            def post(n):
                return client.post("/v1/images", files=[("files", (f"{i}.png", image)) for i in range(n)]).status_code

            rows = []
            before, peak, secs, code = measure(pid, lambda: [post(16)])
            rows.append(("A: 1 request, 16 x 7000x7000", before, peak, secs, code))
            before, peak, secs, code = measure(pid, lambda: [post(8)])
            rows.append(("B: 1 request, 8 x 7000x7000", before, peak, secs, code))
            per_pixel = (peak - before) / (SIDE * SIDE)

            def concurrent():
                codes = [0] * SYNC_MAX_PENDING

                def one(i):
                    with httpx.Client(base_url=server.url, timeout=600) as c:
                        codes[i] = c.post("/v1/images", files=[("files", ("big.png", image))]).status_code

                threads = [threading.Thread(target=one, args=(i,)) for i in range(SYNC_MAX_PENDING)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return codes

            before, peak, secs, code = measure(pid, concurrent)
            rows.append((f"C: {SYNC_MAX_PENDING} concurrent requests, 1 x 7000x7000 each", before, peak, secs, code))
        finally:
            server.stop()
    bound = idle + (SYNC_MAX_PENDING + JOB_WORKERS) * MAX_PIXELS * per_pixel + JOB_CHECKS * MAX_PIXELS * 4
    print("\n| scenario | statuses | RSS before | peak RSS | peak - before | seconds |\n|---|---|---|---|---|---|")
    for name, before, peak, secs, codes in rows:
        print(f"| {name} | {','.join(map(str, sorted(set(codes))))} | {before / 2**20:.0f} MiB | {peak / 2**20:.0f} MiB | "
              f"{(peak - before) / 2**20:.0f} MiB | {secs:.1f} |")
    print(f"\nbytes per decoded pixel at peak (B): {per_pixel:.1f}")
    print(f"bound = idle {idle / 2**20:.0f} MiB + ({SYNC_MAX_PENDING} + {JOB_WORKERS}) x {MAX_PIXELS / 1e6:.0f} M pixels x "
          f"{per_pixel:.1f} B + {JOB_CHECKS} x {MAX_PIXELS / 1e6:.0f} M x 4 B = {bound / 2**20:.0f} MiB; "
          f"measured peaks within it: {all(r[2] <= bound for r in rows)}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
