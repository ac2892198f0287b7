"""The job queue's own speed: jobs per second claimed and finished by 1, 2 and 4 worker processes, PostgreSQL and SQLite.

    python bench/queue_throughput.py [--jobs 2000] [--workers 1 2 4] [--database-url postgresql://...]

Each worker is a process with its own store, as an `unmask worker` has,
looping over the store calls a job makes: claim the next job, write one
progress, finish it with a small result. No model runs in between (a
no-op scorer), so what is measured is the queue's overhead, which the
model's cost would hide. jobs/s is all jobs over the wall time from the
workers' common start to the last one's end; claim latency is one
``claim_next`` call (p50 and p99 over every claim of the run). Each run
starts on a new database holding ``--jobs`` queued jobs.

PostgreSQL: a throwaway server from Debian's binaries (tests/service/postgres.py:
on 127.0.0.1, fsync off, as the tests run it), unless --database-url names
one (each run then adds its jobs to it: use an empty database). SQLite: a
file in a temp folder on local disk, WAL, as shipped.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from unmask.service.jobs.stores import open_store  # noqa: E402

from tests.service.postgres import PostgresServer, server_binaries  # noqa: E402

RESULT = {"status": "ok", "score": 0.5, "frames": [], "tracks": []}


def work(url: str, start, results) -> None:
    """One worker process: claim, progress, finish until the queue is empty."""
    store = open_store(url)
    claims: list[float] = []
    start.wait()
    while True:
        began = time.perf_counter()
        job = store.claim_next()
        claims.append(time.perf_counter() - began)
        if job is None:
            break
        store.progress(job.id, 1, 1)
        assert store.finish(job.id, "done", result=RESULT)
    results.put((len(claims) - 1, claims, time.perf_counter()))
    store.close()


def run(url: str, jobs: int, workers: int) -> dict:
    store = open_store(url)
    for first in range(0, jobs, 1000):
        store.add_many("path", [(f"{i}.jpg", f"{i}.jpg") for i in range(first, min(jobs, first + 1000))])
    store.close()
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=work, args=(url, start, results)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every worker has opened its store and waits
    began = time.perf_counter()
    start.set()
    outcomes = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    wall = max(end for _, _, end in outcomes) - began
    done = sum(n for n, _, _ in outcomes)
    claims = np.array([c for _, cs, _ in outcomes for c in cs]) * 1000
    assert done == jobs, (done, jobs)
    return {"workers": workers, "jobs": done, "wall_s": round(wall, 2), "jobs_per_s": round(done / wall, 1),
            "claim_p50_ms": round(float(np.percentile(claims, 50)), 2), "claim_p99_ms": round(float(np.percentile(claims, 99)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database to use instead of a throwaway server")
    args = parser.parse_args()

    server = None
    if args.database_url is None:
        binaries = server_binaries()
        if binaries is None:
            sys.exit("PostgreSQL server binaries not found (apt-get install postgresql), or pass --database-url")
        server = PostgresServer(binaries).start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="unmask-queue-bench-") as folder:
            for backend in ("postgres", "sqlite"):
                for workers in args.workers:
                    if backend == "sqlite":
                        url = f"sqlite:///{Path(folder) / f'jobs-{workers}.db'}"
                    else:
                        url = server.new_database() if server else args.database_url
                    row = {"backend": backend, **run(url, args.jobs, workers)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    finally:
        if server is not None:
            server.stop()
    print("\n| store | workers | jobs/s | claim p50 ms | claim p99 ms |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['workers']} | {r['jobs_per_s']} | {r['claim_p50_ms']} | {r['claim_p99_ms']} |")


if __name__ == "__main__":
    main()
