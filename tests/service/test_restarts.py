"""Restarts of a real ``unmask serve`` process (issue 12): kill -9 loses no job; SIGTERM costs no attempt; no leftovers."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from .live import LiveServer, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory, shared_data):
    """A 320x180 copy of a shared clip, 90 frames: cheap per frame, long enough to be interrupted."""
    import cv2

    path = tmp_path_factory.mktemp("clip") / "small.mp4"
    cap = cv2.VideoCapture(str(shared_data / "clips" / "ffpp_real_004.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 180))
    for _ in range(90):
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, (320, 180)))
    writer.release()
    return path


@pytest.fixture
def live(tmp_path, tiny_checkpoint):
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {"UNMASK_MODEL": str(tiny_checkpoint), "UNMASK_DATA_DIR": str(tmp_path / "data"), "UNMASK_TMP_DIR": str(spool),
           "UNMASK_FRAMES": "32", "UNMASK_JOB_MAX_ATTEMPTS": "2"}
    server = LiveServer(env, tmp_path / "server.log")
    yield server
    server.stop()


def _submit(client, clip, n):
    ids = []
    for i in range(n):
        r = client.post("/v1/jobs", files={"file": (f"{i}.mp4", clip.read_bytes())})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


def _while_running(client, job_id):
    """Wait until the job has scored a frame or two, so a signal lands mid-job."""
    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{job_id}").json()["progress"]["done"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_sigterm_twice_during_a_job_costs_no_attempt_and_loses_nothing(live, clip):
    live.start()
    with live.client() as client:
        ids = _submit(client, clip, 1)
        _while_running(client, ids[0])
    for deploy in range(2):
        live.proc.send_signal(signal.SIGTERM)
        assert live.proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn shuts down cleanly, then re-raises the signal
        live.start()
        if deploy == 0:
            with live.client() as client:
                _while_running(client, ids[0])
    with live.client() as client:
        jobs = [wait_for(client, job_id, {"done", "failed"}, timeout=300) for job_id in ids]
    assert [(j["state"], j["attempts"]) for j in jobs] == [("done", 1)]
    assert live.log_path.read_text().count(f"job {ids[0]} re-queued: this process is shutting down") == 2


def test_kill_9_loses_no_job_and_leaves_no_spool(live, clip, tmp_path):
    live.start()
    with live.client() as client:
        ids = _submit(client, clip, 2)
        _while_running(client, ids[0])

    def sync_request():  # in flight when the server dies: its spool folder is left behind
        try:
            httpx.post(live.url + "/v1/videos", files={"files": (clip.name, clip.read_bytes())}, timeout=60)
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=sync_request)
    thread.start()
    deadline = time.monotonic() + 30
    while not list((tmp_path / "spool").glob("unmask-*")):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    live.kill()
    thread.join(60)
    assert list((tmp_path / "spool").glob("unmask-*"))  # what kill -9 left
    live.start()
    assert not list((tmp_path / "spool").glob("unmask-*"))  # removed at start
    with live.client() as client:
        jobs = [wait_for(client, job_id, {"done", "failed"}, timeout=300) for job_id in ids]
    assert [(j["state"], j["attempts"]) for j in jobs] == [("done", 2), ("done", 1)]  # only the crash counted
