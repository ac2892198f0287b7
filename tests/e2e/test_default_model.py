"""End to end: the bundled default model on shared files, via the CLI and the API.

The CLI runs as a real subprocess of the installed ``unmask`` script; the API
runs the real app (model loaded by its own start-up) in-process.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from unmask.model.checkpoint import DEFAULT_MODEL
from unmask.service.core.config import Settings
from unmask.service.main import create_app

from tests.helpers import record, records

pytestmark = pytest.mark.e2e
UNMASK = str(Path(sys.executable).with_name("unmask"))


def run_cli(*args, timeout=600):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([UNMASK, "-q", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def test_cli_scores_the_shared_frames(shared_data):
    proc = run_cli("score", shared_data / "frames")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [Path(r["path"]).name for r in records] == sorted(p.name for p in (shared_data / "frames").glob("*.jpg"))
    for r in records:
        assert r["status"] == "ok" and 0.0 <= r["score"] <= 1.0
        assert len(r["frames"][0]["faces"]) == 1
        assert r["model"]["name"] == DEFAULT_MODEL
        assert r["label"] == ("fake" if r["score"] >= r["threshold"] else "real")


def test_cli_no_face_bad_file_and_missing_path(no_face_image, bad_files, tmp_path):
    proc = run_cli("score", no_face_image, bad_files["text"], "--format", "jsonl")
    assert proc.returncode == 1  # one file could not be scored
    no_face, bad = (json.loads(line) for line in proc.stdout.splitlines())
    assert no_face["status"] == "no_face" and no_face["score"] is None
    assert bad["status"] == "error" and bad["error"]["type"] == "unsupported_media"
    assert "Traceback" not in proc.stderr

    missing = run_cli("score", tmp_path / "nope.jpg")
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    bad_model = run_cli("score", no_face_image, "--model", "nope")
    assert bad_model.returncode == 2 and "bundled models are" in bad_model.stderr


def test_cli_table_and_out_file(shared_data, tmp_path):
    out = tmp_path / "records.jsonl"
    frame = shared_data / "frames" / "dfdc_fake_mqzvfufzoq_fr0.jpg"
    proc = run_cli("score", frame, "--out", out)
    assert proc.returncode == 0 and proc.stdout == ""
    assert json.loads(out.read_text())["status"] == "ok"
    table = run_cli("score", frame, "--format", "table")
    assert table.stdout.splitlines()[0].split()[:3] == ["status", "label", "score"]


@pytest.fixture(scope="module")
def api():
    with TestClient(create_app(Settings())) as client:  # loads the default model as `unmask serve` does, in the background
        deadline = time.monotonic() + 300
        while client.get("/readyz").status_code == 503:
            assert time.monotonic() < deadline, "the default model did not load"
            time.sleep(0.2)
        yield client


def test_api_scores_the_shared_frames(api, shared_data, no_face_image):
    frames = sorted((shared_data / "frames").glob("*.jpg"))
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in frames]
    files.append(("files", ("no_face.jpg", no_face_image.read_bytes(), "image/jpeg")))
    *faces, empty = records(api.post("/v1/images", files=files))
    for face in faces:
        assert face["status"] == "ok" and 0.0 <= face["score"] <= 1.0
        assert len(face["frames"][0]["faces"]) == 1
    assert empty["status"] == "no_face" and empty["score"] is None
    assert api.get("/readyz").json()["model"]["name"] == DEFAULT_MODEL


@pytest.mark.parametrize("kind, status", [("text", 415), ("empty", 422), ("truncated_jpeg", 422)])
def test_api_bad_files(api, bad_files, kind, status):
    path = bad_files[kind]
    r = api.post("/v1/images", files=[("files", (path.name, path.read_bytes(), "image/jpeg"))])
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert path.name in r.json()["detail"]


def test_cli_and_api_agree(api, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    cli = json.loads(run_cli("score", frame).stdout)
    http = record(api.post("/v1/images", files=[("files", (frame.name, frame.read_bytes(), "image/jpeg"))]))
    assert abs(cli["score"] - http["score"]) < 1e-3  # ONNX Runtime in both (the CPU default)
    assert cli["frames"][0]["faces"][0]["box"] == http["frames"][0]["faces"][0]["box"]


@pytest.mark.slow
def test_cli_scores_every_shared_clip_with_tracks_and_times(shared_data):
    proc = run_cli("score", shared_data / "clips", "--frames", "16", timeout=1200)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 11
    for r in records:
        assert r["status"] == "ok" and r["media"] == "video", r["path"]
        times = [f["time"] for f in r["frames"]]
        assert len(times) == 16 and times == sorted(times) and times[0] > 0
        assert r["tracks"] and max(t["frames"] for t in r["tracks"]) >= 12
        assert r["score"] == max(t["score"] for t in r["tracks"] if t["counted"])
        assert any(t["counted"] and t["frames"] >= 4 for t in r["tracks"])
        assert all(t["start"] <= t["end"] for t in r["tracks"])
