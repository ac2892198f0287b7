"""The real app in a real uvicorn process on 127.0.0.1: jobs, restarts, limits, keys."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from tests.helpers import png_bytes, problem, record

from .live import LiveServer, wait_for

pytestmark = pytest.mark.slow
MODEL = os.environ.get("UNMASK_TEST_MODEL", "default")
KEY = "test-key-123"


@pytest.fixture(scope="module")
def root(tmp_path_factory, shared_data):
    """The allowed root: two frames and a short clip; and a symlink pointing outside."""
    root = tmp_path_factory.mktemp("root")
    (root / "media").mkdir()
    for name in ("frames/dfdc_real_lynaeydofd_fr0.jpg", "frames/dfdc_fake_mqzvfufzoq_fr0.jpg", "clips/ffpp_real_004.mp4"):
        (root / "media" / os.path.basename(name)).write_bytes((shared_data / name).read_bytes())
    (root / "escape").symlink_to("/etc")
    return root


def _server(tmp_path_factory, root, **env) -> LiveServer:
    data = tmp_path_factory.mktemp("data")
    base = {"UNMASK_MODEL": MODEL, "UNMASK_DATA_DIR": str(data), "UNMASK_ALLOWED_ROOT": str(root),
            "UNMASK_MAX_UPLOAD_MB": "1", "UNMASK_SYNC_MAX_UPLOAD_MB": "1", "UNMASK_MAX_QUEUE": "3"}
    return LiveServer(base | env, data / "server.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory, root):
    live = _server(tmp_path_factory, root).start()
    yield live
    live.stop()


def _submit(client, path, name=None):
    return client.post("/v1/jobs", files={"file": (name or path.name, path.read_bytes(), "application/octet-stream")})




def test_video_job_goes_queued_running_done_with_the_sync_scores(server, shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    with server.client() as client:
        first = _submit(client, clip)
        second = _submit(client, clip, "again.mp4")
        assert first.status_code == 202 and second.status_code == 202
        assert first.headers["location"] == f"/v1/jobs/{first.json()['id']}"
        assert second.json()["state"] == "queued"
        running = wait_for(client, first.json()["id"], {"running", "done"})
        assert running["state"] == "running" and running["attempts"] == 1
        assert client.get(f"/v1/jobs/{second.json()['id']}").json()["state"] == "queued"  # one worker
        done = wait_for(client, first.json()["id"], {"done"})
        assert done["progress"] == {"done": 32, "total": 32}
        sync = record(client.post("/v1/videos", files={"files": (clip.name, clip.read_bytes(), "video/mp4")}))
        assert done["result"]["status"] == "ok"
        assert done["result"]["score"] == pytest.approx(sync["score"], abs=1e-4)
        assert [f["time"] for f in done["result"]["frames"]] == [f["time"] for f in sync["frames"]]
        wait_for(client, second.json()["id"], {"done"})


def test_cancel_queued_and_running(server, shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    with server.client() as client:
        running = _submit(client, clip).json()["id"]
        queued = _submit(client, clip).json()["id"]
        wait_for(client, running, {"running"})
        assert client.post(f"/v1/jobs/{queued}/cancel").json()["state"] == "cancelled"
        assert client.post(f"/v1/jobs/{running}/cancel").json()["cancel_requested"] is True
        assert wait_for(client, running, {"cancelled", "done"}, timeout=60)["state"] == "cancelled"
        problem(client.post(f"/v1/jobs/{running}/cancel"), 409)
        problem(client.get("/v1/jobs/nope"), 404)


def test_a_full_queue_answers_429_with_retry_after(server, shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    with server.client() as client:
        first = _submit(client, clip).json()["id"]
        wait_for(client, first, {"running"})
        queued = [_submit(client, clip) for _ in range(3)]  # max_queue = 3
        assert [r.status_code for r in queued] == [202, 202, 202]
        full = _submit(client, clip)
        problem(full, 429)
        assert int(full.headers["retry-after"]) > 0
        for job in [first] + [r.json()["id"] for r in queued]:
            client.delete(f"/v1/jobs/{job}")




def test_each_limit_and_bad_input_gets_its_4xx(server, shared_data, bad_files):
    with server.client() as client:
        big = shared_data / "clips" / "ffpp_real_519.mp4"  # 2.3 MB > 1 MB
        assert "limit of 1048576 bytes" in problem(_submit(client, big), 413)["detail"]
        assert "/v1/jobs" in problem(client.post("/v1/videos", files={"files": (big.name, big.read_bytes())}), 413)["detail"]
        problem(_submit(client, bad_files["text"]), 415)
        problem(_submit(client, bad_files["truncated_video"]), 422)
        problem(_submit(client, bad_files["empty"]), 422)
        bomb = client.post("/v1/jobs", files={"file": ("bomb.png", png_bytes(12000, 10000), "image/png")})
        assert "pixels" in problem(bomb, 413)["detail"]
        problem(client.post("/v1/jobs"), 422)


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "escape/passwd", "media/../../outside.jpg"])
def test_path_traversal_is_refused(server, path):
    with server.client() as client:
        problem(client.post("/v1/jobs", data={"path": path}), 403)
        problem(client.post("/v1/batches", json={"paths": [path]}), 403)


def test_server_side_path_job_and_batch(server, root):
    with server.client() as client:
        job = client.post("/v1/jobs", data={"path": "media/dfdc_real_lynaeydofd_fr0.jpg"})
        assert job.status_code == 202
        assert wait_for(client, job.json()["id"], {"done"})["result"]["status"] == "ok"
        problem(client.post("/v1/jobs", data={"path": "media/missing.jpg"}), 404)

        batch = client.post("/v1/batches", json={"paths": ["media"]})
        assert batch.status_code == 202 and batch.json()["files"] == 3
        batch_id = batch.json()["id"]
        deadline = time.monotonic() + 300
        while client.get(f"/v1/batches/{batch_id}").json()["state"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        records = client.get(f"/v1/batches/{batch_id}/results").json()
        lines = client.get(f"/v1/batches/{batch_id}/results", headers={"Accept": "application/x-ndjson"}).text.splitlines()
        assert len(records) == 3 and [json.loads(line) for line in lines] == records


def test_metrics_and_request_ids(server):
    with server.client() as client:
        r = client.get("/healthz", headers={"X-Request-ID": "abc123"})
        assert r.headers["x-request-id"] == "abc123"
        text = client.get("/metrics").text
        assert "unmask_requests_total" in text and 'unmask_jobs{state="done"}' in text
        assert "unmask_faces_scored_total" in text and "unmask_model_info" in text
    assert "[abc123]" in server.log_path.read_text()


def test_a_job_survives_a_killed_server(tmp_path_factory, root, shared_data):
    live = _server(tmp_path_factory, root).start()
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    try:
        with live.client() as client:
            running = _submit(client, clip).json()["id"]
            queued = _submit(client, clip).json()["id"]
            wait_for(client, running, {"running"})
        live.kill()
        live.start()
        with live.client() as client:
            again = wait_for(client, running, {"done"})
            assert again["attempts"] == 2 and again["result"]["status"] == "ok"
            assert wait_for(client, queued, {"done"})["attempts"] == 1
    finally:
        live.stop()


def test_api_keys(tmp_path_factory, root, shared_data):
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    live = _server(tmp_path_factory, root, UNMASK_API_KEYS=digest).start()
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    try:
        with live.client() as client:
            problem(_submit(client, frame), 401)
            problem(client.post("/v1/images", files={"files": (frame.name, frame.read_bytes())}, headers={"X-API-Key": "wrong"}), 401)
            assert client.get("/healthz").status_code == 200
            ok = client.post("/v1/images", files={"files": (frame.name, frame.read_bytes())}, headers={"Authorization": f"Bearer {KEY}"})
            assert ok.status_code == 200
            assert _submit(live.client(headers={"X-API-Key": KEY}), frame).status_code == 202
    finally:
        live.stop()
