"""API replicas and workers as real processes on one job database: kill -9 and SIGTERM lose and double nothing.

Two `unmask serve --no-worker` processes queue 200 jobs (small generated
images, the tiny random model: this tests the queue, not the model), each
with a webhook to a receiver in this test. Two `unmask worker` processes
score them; one is killed with SIGKILL in the middle of a job, then the
other is stopped with SIGTERM in the middle of one; with no worker left,
the API replicas sweep the killed worker's jobs back into the queue, and a
third worker finishes it. Every result write is counted by a trigger in the
database, every webhook by the receiver. Run on PostgreSQL and on one
SQLite file (WAL) shared by the four processes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from unmask.service.jobs.store import JobStore
from unmask.service.jobs.stores import open_store

from .live import UNMASK, LiveServer, free_port

pytestmark = pytest.mark.slow
JOBS, LEASE_S, SECRET = 200, 2.0, "test-secret"
STARTUP_S = 300  # a process importing torch on a machine busy with other work can take minutes
RESULT_WRITES = {  # one row per write of a result: the job ends done, or a done job's result is written again
    "sqlite": ["""CREATE TRIGGER count_results AFTER UPDATE ON jobs FOR EACH ROW
                  WHEN NEW.state = 'done' AND (OLD.state <> 'done' OR NEW.result IS NOT OLD.result)
                  BEGIN INSERT INTO result_writes (job_id) VALUES (NEW.id); END"""],
    "postgres": ["""CREATE FUNCTION count_result() RETURNS trigger AS $$
                    BEGIN INSERT INTO result_writes (job_id) VALUES (NEW.id); RETURN NEW; END $$ LANGUAGE plpgsql""",
                 """CREATE TRIGGER count_results AFTER UPDATE ON jobs FOR EACH ROW
                    WHEN (NEW.state = 'done' AND (OLD.state <> 'done' OR NEW.result IS DISTINCT FROM OLD.result))
                    EXECUTE FUNCTION count_result()"""],
}


class Receiver(ThreadingHTTPServer):
    """The webhook receiver: every POST's job id, and whether its signature was right."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, bool]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _Hook)


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (the http.server name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signed = hmac.compare_digest(self.headers["X-Unmask-Signature"],
                                     "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest())
        with self.server.lock:
            self.server.deliveries.append((json.loads(body)["id"], signed))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class Worker:
    """One `unmask worker` process."""

    def __init__(self, env: dict[str, str], log_path: Path, metrics_port: int | None = None) -> None:
        self.env, self.log_path, self.metrics_port = env, log_path, metrics_port
        self.proc: subprocess.Popen | None = None

    def launch(self) -> "Worker":
        metrics = ["--metrics-port", str(self.metrics_port)] if self.metrics_port else []
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([UNMASK, "worker", "--concurrency", "2", *metrics], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        return self

    def ready(self) -> bool:
        """Its model is loaded and its job threads run (it says so in its log)."""
        assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
        return "job threads" in self.log_path.read_text()

    def held(self, store: JobStore) -> list[str]:
        """The jobs this worker's process holds now."""
        return [j.id for j in store.list_jobs("running", limit=500) if f":{self.proc.pid}:" in (j.worker_id or "")]

    def signal_mid_job(self, store: JobStore, sig: int) -> list[str]:
        """Freeze the process where it is; when it holds a job, send ``sig`` (else let it run a moment and try again)."""
        for _ in range(500):
            os.kill(self.proc.pid, signal.SIGSTOP)
            held = self.held(store)
            if held:
                os.kill(self.proc.pid, sig)
                os.kill(self.proc.pid, signal.SIGCONT)
                return held
            os.kill(self.proc.pid, signal.SIGCONT)
            time.sleep(0.02)
        raise AssertionError("the worker never held a job")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


class LeaseWatch(threading.Thread):
    """How far past its lease a running job has been seen at most (the database's clock), polled all along."""

    def __init__(self, store: JobStore) -> None:
        super().__init__(daemon=True)
        self.store, self.overdue, self.done = store, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            with self.store._tx(write=False) as db:
                row = db.execute(f"SELECT MAX({self.store.NOW} - lease_until) AS overdue FROM jobs WHERE state = 'running'").fetchone()
            self.overdue = max(self.overdue, row["overdue"] or 0.0)


def log_lines(worker: Worker, text: str) -> list[str]:
    return [line for line in worker.log_path.read_text().splitlines() if text in line]


def _wait(condition, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)  # a worker ends a job in milliseconds here: the signals must land while jobs are left
    return time.monotonic() - start


@pytest.fixture
def images(tmp_path) -> list[bytes]:
    """Small JPEGs of noise, each different."""
    rng = np.random.default_rng(0)
    return [cv2.imencode(".jpg", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))[1].tobytes() for _ in range(JOBS)]


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_two_api_replicas_and_two_workers_lose_and_double_no_job_when_one_is_killed_and_one_stopped(
        backend, request, tmp_path, tiny_checkpoint, images):
    url = request.getfixturevalue("postgres_server").new_database() if backend == "postgres" else f"sqlite:///{tmp_path / 'jobs.db'}"
    store = open_store(url)  # the test's own view: migrations applied, then the result-write counter
    with store._tx() as db:
        db.execute("CREATE TABLE result_writes (job_id TEXT NOT NULL)")
        for sql in RESULT_WRITES[backend]:
            db.execute(sql)
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {"UNMASK_MODEL": str(tiny_checkpoint), "UNMASK_DATABASE_URL": url, "UNMASK_MEDIA_DIR": str(tmp_path / "media"),
           "UNMASK_JOB_LEASE_S": str(LEASE_S), "UNMASK_JOB_MAX_ATTEMPTS": "3", "UNMASK_WARMUP": "false", "UNMASK_BACKEND": "torch"}
    # The API replicas send the webhooks (both of them, claiming each delivery): a worker killed between a POST and
    # recording it would leave that delivery to be made again, as docs/scale-out.md says.
    callbacks = {"UNMASK_CALLBACK_HOSTS": "127.0.0.1", "UNMASK_CALLBACK_SECRET": SECRET, "UNMASK_CALLBACK_BACKOFF_S": "0.2"}
    worker_env = dict(os.environ, HF_HUB_OFFLINE="1", UNMASK_HOST="127.0.0.1", **env)
    apis = [LiveServer({**env, **callbacks, "UNMASK_DATA_DIR": str(tmp_path / f"api{i}")}, tmp_path / f"api{i}.log",
                       args=("serve", "--no-worker")) for i in range(2)]
    workers = [Worker({**worker_env, "UNMASK_DATA_DIR": str(tmp_path / f"worker{i}")}, tmp_path / f"worker{i}.log",
                      metrics_port=free_port() if i == 2 else None) for i in range(3)]
    watch = LeaseWatch(store)
    try:
        for api in apis:
            api.launch()
        for api in apis:
            api.wait_ready(STARTUP_S)
        watch.start()

        def submit(i: int) -> str:
            r = httpx.post(apis[i % 2].url + "/v1/jobs", files={"file": (f"{i}.jpg", images[i])},
                           data={"callback_url": f"http://127.0.0.1:{receiver.server_port}/hook"}, timeout=60)
            assert r.status_code == 202, r.text
            return r.json()["id"]

        for worker in workers[:2]:  # they start while the jobs are sent (their start takes longer than that)
            worker.launch()
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(submit, range(JOBS)))
        assert len(set(ids)) == JOBS

        # Whichever worker is up first is killed once it has done some jobs; the other is stopped once it has done some.
        _wait(lambda: any(w.ready() for w in workers[:2]), STARTUP_S, "a worker ready")
        first, second = workers[:2] if workers[0].ready() else workers[1::-1]
        _wait(lambda: store.count("done") >= JOBS // 10, 120, "some jobs done")
        killed = first.signal_mid_job(store, signal.SIGKILL)
        first.proc.wait(30)
        _wait(second.ready, STARTUP_S, "the second worker ready")
        done = store.count("done")
        _wait(lambda: store.count("done") >= done + JOBS // 10, 120, "more jobs done by the second worker")
        handed_back = second.signal_mid_job(store, signal.SIGTERM)
        workers[2].launch()  # a replacement, ready only seconds later
        assert second.proc.wait(60) == 0  # handed its jobs back and exited cleanly
        # No worker runs now: the killed worker's jobs are swept when their lease runs out, by the API replicas (or
        # were re-queued at once by the second worker's start, when it started after the kill), not by a process starting later.
        dead = f":{first.proc.pid}:"
        swept_in = _wait(lambda: not any(dead in (store.get(i).worker_id or "") and store.get(i).state == "running" for i in killed),
                         30, "the killed worker's jobs swept")
        assert "job threads" not in workers[2].log_path.read_text()
        assert all(store.get(i).state in ("queued", "done") for i in [*killed, *handed_back])
        _wait(workers[2].ready, STARTUP_S, "the third worker ready")
        _wait(lambda: store.count("done") == JOBS, 180, "every job done")
        _wait(lambda: len(receiver.deliveries) >= JOBS, 60, "every webhook delivered")
        time.sleep(2 * LEASE_S)  # a late duplicate would arrive now
        metrics = httpx.get(f"http://127.0.0.1:{workers[2].metrics_port}/metrics", timeout=10).text  # a worker's only HTTP
        scored = sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("unmask_files_scored_total{"))
        assert 'unmask_model_info{architecture="lite0"' in metrics and scored == len(log_lines(workers[2], " done: "))
    finally:
        watch.done.set()
        for process in [*apis, *workers]:
            process.stop()
        receiver.shutdown()

    jobs = {i: store.get(i) for i in ids}
    with store._tx(write=False) as db:
        writes = Counter(r["job_id"] for r in db.execute("SELECT job_id FROM result_writes").fetchall())
    store.close()
    deliveries = Counter(job_id for job_id, _ in receiver.deliveries)
    assert all(job.state == "done" and job.result is not None for job in jobs.values())  # 200/200 done, 0 lost
    assert writes == Counter(ids)  # each result written once: 0 run twice
    assert deliveries == Counter(ids) and all(signed for _, signed in receiver.deliveries)  # 0 duplicate webhooks
    assert all(job.callback_state == "delivered" and job.callback_attempts == 1 for job in jobs.values())
    # Attempts: only the killed worker's jobs count a second start; a job handed back by SIGTERM does not.
    assert killed and {i: job.attempts for i, job in jobs.items() if job.attempts != 1} == {i: 2 for i in killed}
    log = second.log_path.read_text()
    for job_id in handed_back:  # re-queued at its next frame, or it ended before the signal was seen
        assert f"job {job_id} re-queued: this process is shutting down" in log or f"job {job_id} done" in log
    # No job stayed running past its lease by more than the sweep's beat (and a busy machine's delays).
    assert swept_in < 10 and watch.overdue < LEASE_S, (swept_in, watch.overdue)
