"""The job store and runner without HTTP: recovery, cancel, timeout, retention."""

import pytest
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.service.jobs.store import JobStore
from unmask.service.jobs.worker import JobRunner


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.db")
    yield s
    s.close()


def test_claim_in_order_and_recover_after_a_crash(store, tmp_path):
    a, b = store.add("path", "a.jpg", "a.jpg"), store.add("path", "b.jpg", "b.jpg")
    assert store.claim_next().id == a.id
    assert store.count("running") == 1 and store.count("queued") == 1
    assert store.recover(max_attempts=2) == (1, 0)  # a's process died: re-queued
    assert store.get(a.id).state == "queued"
    assert store.claim_next().id == a.id and store.get(a.id).attempts == 2
    assert store.recover(max_attempts=2) == (0, 1)  # died twice: failed with a reason
    failed = store.get(a.id)
    assert failed.state == "failed" and "2 times" in failed.error
    assert store.get(b.id).state == "queued"


def test_cancel_queued_now_running_on_request(store):
    queued = store.add("path", "q.jpg", "q.jpg")
    running = store.add("path", "r.jpg", "r.jpg")
    store.cancel(queued.id)
    assert store.get(queued.id).state == "cancelled"
    assert store.claim_next().id == running.id
    store.cancel(running.id)
    assert store.get(running.id).state == "running" and store.progress(running.id, 1, 8) is True


def test_a_job_past_its_timeout_fails_with_the_reason(store, tiny_checkpoint, shared_data):
    runner = JobRunner(store, Predictor(tiny_checkpoint, ScoringConfig(backend="torch")), timeout_s=0.0)
    job = store.add("path", str(shared_data / "clips" / "ffpp_real_004.mp4"), "clip.mp4")
    claimed = store.claim_next()
    runner._run(claimed.id, claimed.path, claimed.name, claimed.options)
    done = store.get(job.id)
    assert done.state == "failed" and "timeout of 0 s" in done.error


def test_uploads_are_deleted_after_retention(store, tmp_path, tiny_checkpoint):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"x")
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"x")
    job = store.add("upload", str(upload), "a.jpg")
    store.add("upload", str(kept), "b.jpg")  # still queued: kept
    store.claim_next()
    store.finish(job.id, "done", result={"status": "ok"})
    runner = JobRunner(store, Predictor(tiny_checkpoint, ScoringConfig(backend="torch")), retention_s=0.0)
    runner._sweep_uploads()
    assert not upload.exists() and kept.exists()
    assert store.get(job.id).path == ""
