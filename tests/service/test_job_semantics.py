"""Regression tests for the jobs and batches audit: webhooks, restarts, the queue limit, batch contents, a failed model.

In-process on the tiny random model; each test names the fault it guards against.
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import UploadFile
from unmask.model.checkpoint import CheckpointError
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor, ScoringCancelled
from unmask.service.api.uploads import save_upload
from unmask.service.core.config import Settings
from unmask.service.core.problems import Problem
from unmask.service.core.processes import HOST
from unmask.service.jobs.callbacks import CallbackPolicy, CallbackSender
from unmask.service.jobs.store import QueueFull
from unmask.service.jobs.worker import JobRunner
from unmask.service.main import create_app

from tests.helpers import problem


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))


@pytest.fixture
def root(tmp_path, shared_data):
    """An allowed root: two frames in a folder, a CSV and a symlink loop."""
    root = tmp_path / "root"
    (root / "frames").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (root / "frames" / name).write_bytes((shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes())
    (root / "labels.csv").write_text("path,label\na.jpg,0\n")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    return root


def _client(predictor, tmp_path, root, **settings):
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", allowed_root=root, **settings), predictor))




# -- webhooks ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/hook", "http://127.0.0.1:abc/hook", "http://127.0.0.1/ok\x7f",
                                 "http://127.0.0.1/a b", "http://[::1/hook"])
def test_a_callback_url_the_sender_could_not_use_is_refused_at_submission(url):
    refusal = CallbackPolicy(["127.0.0.1", "::1"]).refusal(url)
    assert refusal is not None and "callback_url" in refusal


def test_one_broken_delivery_does_not_stop_the_others(store):
    """A delivery that raises (before: the sender thread died and no webhook went out again) is failed; the next goes on."""
    broken = store.add("path", "a.jpg", "a.jpg", callback_url="http://127.0.0.1:9/broken")
    other = store.add("path", "b.jpg", "b.jpg", callback_url="http://127.0.0.1:9/other")  # nothing listens
    for job in (broken, other):
        store.claim_next()
        store.finish(job.id, "done", result={"status": "ok"})

    def render(job):
        if job.id == broken.id:
            raise RuntimeError("a bug")
        return b"{}"

    sender = CallbackSender(store, CallbackPolicy(["127.0.0.1"]), "s", render, attempts=1, poll_s=0.05)
    sender.start()
    try:
        deadline = time.monotonic() + 30
        while store.get(other.id).callback_state == "pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        sender.stop()
    assert store.get(broken.id).callback_state == "failed" and "internal error" in store.get(broken.id).callback_error
    assert store.get(other.id).callback_state == "failed" and store.get(other.id).callback_error.startswith("ConnectError")


# -- restarts ----------------------------------------------------------------


def _crashed(store):
    """``store`` as a process of this host that was killed (its pid no longer runs)."""
    store.worker_id = f"{HOST}:{2**22 + 12345}:dead"
    return store


def test_a_job_failed_at_restart_still_sends_its_webhook(store):
    job = store.add("path", "a.jpg", "a.jpg", callback_url="https://hooks.example.com/x")
    _crashed(store).claim_next()
    assert store.recover(max_attempts=1) == (0, 1)
    assert store.get(job.id).state == "failed"
    assert store.claim_callback(hold_s=60).id == job.id


def test_a_job_whose_cancel_was_asked_before_a_crash_ends_cancelled(store):
    job = store.add("path", "a.jpg", "a.jpg", callback_url="https://hooks.example.com/x")
    _crashed(store).claim_next()
    store.cancel(job.id)  # running: only asked
    assert store.recover(max_attempts=1) == (0, 0)
    assert store.get(job.id).state == "cancelled"
    assert store.claim_callback(hold_s=60).id == job.id


# -- cancel and delete -----------------------------------------------------------


def test_delete_forgets_a_job_and_its_upload_while_cancel_keeps_it(predictor, tmp_path, root, shared_data, monkeypatch):
    """Before, DELETE only cancelled: the job read as present after it (a stateful client's "use after free")."""
    loaded = threading.Event()
    monkeypatch.setattr("unmask.service.lifespan.load_predictor", lambda settings: loaded.wait(30) and predictor)
    frame = (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes()
    try:
        with TestClient(create_app(Settings(data_dir=tmp_path / "data", allowed_root=root))) as c:  # no worker runs yet
            kept, dropped = (c.post("/v1/jobs", files={"file": (f"{i}.jpg", frame)}).json()["id"] for i in range(2))
            uploads = tmp_path / "data" / "uploads"
            assert len(list(uploads.iterdir())) == 2
            cancelled = c.post(f"/v1/jobs/{kept}/cancel")
            assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
            assert c.get(f"/v1/jobs/{kept}").json()["state"] == "cancelled"
            problem(c.post(f"/v1/jobs/{kept}/cancel"), 409)
            deleted = c.delete(f"/v1/jobs/{dropped}")
            assert deleted.status_code == 204 and deleted.content == b""
            for answer in (c.get(f"/v1/jobs/{dropped}"), c.delete(f"/v1/jobs/{dropped}"), c.post(f"/v1/jobs/{dropped}/cancel")):
                problem(answer, 404)
            assert len(list(uploads.iterdir())) == 1  # the deleted job's upload is gone, the cancelled one's kept
            assert c.delete(f"/v1/jobs/{kept}").status_code == 204  # an ended job can be deleted too
            assert list(uploads.iterdir()) == [] and c.get("/v1/jobs").json()["jobs"] == []
    finally:
        loaded.set()


def test_a_deleted_running_job_stops_at_its_next_frame(predictor, store, shared_data, monkeypatch, caplog):
    ends, answers = [], []
    finish, progress = store.finish, store.progress
    monkeypatch.setattr(store, "finish", lambda job_id, state, **fields: (ends.append((job_id, state)), finish(job_id, state, **fields)))

    def recorded_progress(job_id, done, total):
        answers.append(progress(job_id, done, total))
        return answers[-1]

    monkeypatch.setattr(store, "progress", recorded_progress)
    job = store.add("path", str(shared_data / "clips" / "ffpp_real_004.mp4"), "clip.mp4")
    runner = JobRunner(store, predictor, poll_s=0.05)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while store.get(job.id).progress_done < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert store.delete(job.id).state == "running" and store.get(job.id) is None
        while f"job {job.id}: no longer held" not in caplog.text:  # the worker drops its run
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        runner.stop()
    # None is the store's "not yours any more": the run asked once after the delete and stopped there,
    # rather than scoring the clip to its end (counted by answer, so the timing of the delete cannot matter).
    assert answers.count(None) == 1 and answers[-1] is None
    assert ends == []  # nothing of the run is written: the job is not this worker's any more
    assert store.get(job.id) is None and store.list_jobs() == []


# -- the queue limit -----------------------------------------------------------


def test_the_queue_limit_holds_for_requests_arriving_together(store):
    start, outcomes = threading.Barrier(10), []

    def submit(i):
        start.wait()
        try:
            store.add("path", f"{i}.jpg", f"{i}.jpg", max_queued=5)
            outcomes.append("queued")
        except QueueFull:
            outcomes.append("full")

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["full"] * 5 + ["queued"] * 5
    assert store.count("queued") == 5


def test_a_batch_larger_than_the_queue_is_413_not_a_429_that_can_never_pass(predictor, tmp_path, root):
    with _client(predictor, tmp_path, root, max_queue=1) as c:
        body = problem(c.post("/v1/batches", json={"paths": ["frames"]}), 413)
        assert "UNMASK_MAX_QUEUE" in body["detail"] and "2 files" in body["detail"]


# -- what a batch holds ----------------------------------------------------------


def test_overlapping_batch_paths_queue_each_file_once(predictor, tmp_path, root):
    with _client(predictor, tmp_path, root) as c:
        r = c.post("/v1/batches", json={"paths": ["frames", "frames", "frames/a.jpg"]})
        assert r.status_code == 202, r.text
        assert r.json()["files"] == 2 and [j["name"] for j in r.json()["jobs"]] == ["frames/a.jpg", "frames/b.jpg"]


def test_a_non_media_file_named_in_a_batch_gets_the_jobs_answer(predictor, tmp_path, root):
    with _client(predictor, tmp_path, root) as c:
        problem(c.post("/v1/jobs", data={"path": "labels.csv"}), 415)
        assert "labels.csv" in problem(c.post("/v1/batches", json={"paths": ["frames", "labels.csv"]}), 415)["detail"]


def test_a_symlink_loop_is_404_not_500(predictor, tmp_path, root):
    with _client(predictor, tmp_path, root) as c:
        assert "symlink loop" in problem(c.post("/v1/jobs", data={"path": "loop1"}), 404)["detail"]
        problem(c.post("/v1/batches", json={"paths": ["loop1"]}), 404)


def test_batch_results_list_failed_and_cancelled_files_as_error_records(predictor, tmp_path, root, monkeypatch):
    """Before, a failed file (e.g. past the job timeout) was missing from the results with nothing said."""
    loaded = threading.Event()
    monkeypatch.setattr("unmask.service.lifespan.load_predictor", lambda settings: loaded.wait(30) and predictor)
    try:
        with TestClient(create_app(Settings(data_dir=tmp_path / "data", allowed_root=root))) as c:  # no worker runs yet
            batch = c.post("/v1/batches", json={"paths": ["frames"]}).json()
            store = c.app.state.store
            first, second = batch["jobs"]
            store.claim_next()
            store.finish(first["id"], "failed", error="the job ran past its timeout of 1 s")
            store.cancel(second["id"])
            records = c.get(batch["results_url"]).json()
    finally:
        loaded.set()
    assert [(r["path"], r["status"], r["error"]["type"]) for r in records] == [
        ("frames/a.jpg", "error", "job_failed"), ("frames/b.jpg", "error", "cancelled")]
    assert "timeout" in records[0]["error"]["detail"] and records[0]["media"] == "image"


# -- a model that failed to load -------------------------------------------------


def test_jobs_are_refused_when_the_model_failed_to_load_and_no_path_is_shown(tmp_path, root, monkeypatch):
    def broken(settings):
        raise CheckpointError("/srv/secret/model.safetensors: truncated")

    monkeypatch.setattr("unmask.service.lifespan.load_predictor", broken)
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", allowed_root=root))) as c:
        deadline = time.monotonic() + 10
        while "failed" not in (r := c.get("/readyz")).json()["detail"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        problem(r, 503)
        assert "retry-after" not in r.headers and "/srv/secret" not in r.text and "CheckpointError" in r.text
        problem(c.post("/v1/jobs", data={"path": "frames/a.jpg"}), 503)
        problem(c.post("/v1/batches", json={"paths": ["frames"]}), 503)
        assert c.get("/v1/jobs").json()["jobs"] == []


# -- running a job ---------------------------------------------------------------


def test_a_file_swapped_for_a_pipe_after_queueing_ends_the_job_not_the_worker(store, predictor, tmp_path):
    pipe = tmp_path / "swap.jpg"
    os.mkfifo(pipe)  # opening it to read would wait for a writer forever
    job = store.add("path", str(pipe), "swap.jpg")
    claimed = store.claim_next()
    runner = JobRunner(store, predictor)
    worker = threading.Thread(target=runner._run, args=(claimed.id, claimed.path, claimed.name, claimed.options), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive()
    ended = store.get(job.id)
    assert ended.state == "done" and ended.result["status"] == "error" and "not a regular file" in ended.result["error"]["detail"]


def test_finish_asks_progress_again_so_a_cancel_after_the_last_frame_stops_it(predictor, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    prepared = predictor.prepare(frame)
    asked = []
    predictor.finish(prepared, lambda done, total: asked.append((done, total)) and False)
    assert asked and asked[0] == (1, 1)
    with pytest.raises(ScoringCancelled):
        predictor.finish(predictor.prepare(frame), lambda done, total: True)


# -- uploads -----------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_507_not_500():
    upload = UploadFile(io.BytesIO(b"\xff\xd8\xff" + b"x" * (1 << 20)), filename="a.jpg")
    with pytest.raises(Problem) as raised:
        save_upload(upload, Path("/dev/full"), 10 << 20)
    assert raised.value.status_code == 507 and raised.value.headers["Retry-After"]


# -- request shape -------------------------------------------------------------------


def test_two_file_parts_in_one_job_are_refused_not_one_dropped(predictor, tmp_path, root, shared_data):
    frame = (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes()
    with _client(predictor, tmp_path, root) as c:
        body = problem(c.post("/v1/jobs", files=[("file", ("a.jpg", frame)), ("file", ("b.jpg", frame))]), 422)
        assert "one `file`" in body["detail"]
        assert c.get("/v1/jobs").json()["jobs"] == []
        assert c.post("/v1/jobs", files={"file": ("a.jpg", frame)}).status_code == 202


def test_json_lines_only_when_the_accept_header_prefers_them(predictor, tmp_path, root):
    with _client(predictor, tmp_path, root) as c:
        results = c.post("/v1/batches", json={"paths": ["frames"]}).json()["results_url"]
        for accept, ndjson in [("application/x-ndjson", True), ("application/json, application/x-ndjson", True),
                               ("application/x-ndjson;q=0, application/json", False),
                               ("application/json;q=1, application/x-ndjson;q=0.5", False), ("*/*", False)]:
            assert c.get(results, headers={"Accept": accept}).headers["content-type"].startswith("application/x-ndjson") == ndjson, accept


def test_a_problems_instance_does_not_echo_a_huge_path(predictor, tmp_path, root):
    with _client(predictor, tmp_path, root) as c:
        body = problem(c.get("/v1/jobs/" + "x" * 5000), 404)
        assert len(body["instance"]) <= 203 and len(body["detail"]) < 100
