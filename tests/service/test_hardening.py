"""Regression tests for the defects of the outside audit (issue 12), on the tiny random model, in-process."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import threading
import time

import pytest
from fastapi.testclient import TestClient
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.service.api.uploads import PART_PREFIX
from unmask.service.core import prometheus
from unmask.service.core.config import Settings
from unmask.service.jobs.stores import open_store
from unmask.service.jobs.worker import JobRunner
from unmask.service.main import create_app

from tests.helpers import png_bytes, problem, record

from .live import serving

KEY = "k-123"


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))


@pytest.fixture(scope="module")
def root(tmp_path_factory, shared_data):
    """An allowed root whose folder holds a real frame and a symlink to a file outside the root."""
    outside = tmp_path_factory.mktemp("outside") / "secret.jpg"
    outside.write_bytes((shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes())
    root = tmp_path_factory.mktemp("root")
    (root / "media").mkdir()
    (root / "media" / "frame.jpg").write_bytes(outside.read_bytes())
    (root / "media" / "link.jpg").symlink_to(outside)
    (root / "clean").mkdir()
    (root / "clean" / "frame.jpg").write_bytes(outside.read_bytes())
    return root


def _app(predictor, tmp_path, **settings):
    base = {"data_dir": tmp_path / "data", "tmp_dir": tmp_path / "spool"} | settings
    (tmp_path / "spool").mkdir(exist_ok=True)
    return create_app(Settings(**base), predictor)


@pytest.fixture
def client(predictor, tmp_path, root):
    with TestClient(_app(predictor, tmp_path, allowed_root=root)) as c:
        yield c




def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    """An ASGI HTTP scope, to call the app directly where a client would not send these headers or bytes."""
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"", "headers": headers,
            "scheme": "http", "server": ("test", 80), "client": ("127.0.0.1", 1), "root_path": "", "http_version": "1.1"}




def test_a_symlink_found_in_a_batch_folder_cannot_lead_outside_the_root(client):
    body = problem(client.post("/v1/batches", json={"paths": ["media"]}), 403)
    assert "link.jpg" in body["detail"]
    assert client.post("/v1/batches", json={"paths": ["clean"]}).status_code == 202


def test_a_pipe_under_the_root_is_refused_not_read(client, root):
    pipe = root / "pipe.mp4"
    os.mkfifo(pipe)  # opening it to read would wait for a writer forever
    try:
        assert "not a regular file" in problem(client.post("/v1/jobs", data={"path": "pipe.mp4"}), 422)["detail"]
        assert "no media files" in problem(client.post("/v1/batches", json={"paths": ["pipe.mp4"]}), 422)["detail"]
        assert "a folder" in problem(client.post("/v1/jobs", data={"path": "clean"}), 422)["detail"]
    finally:
        pipe.unlink()


@pytest.mark.parametrize("route", ["/v1/jobs", "/v1/batches"])
def test_a_long_path_is_a_4xx_not_a_500(client, route):
    def post(path):
        return client.post(route, data={"path": path}) if route == "/v1/jobs" else client.post(route, json={"paths": [path]})

    for path in ["a" * 300, "media/" + "b" * 300 + "/x.jpg"]:  # a name longer than the file system allows: nothing there
        assert "not a usable path" in problem(post(path), 404)["detail"]
    problem(post("c" * 5000), 422)  # longer than PATH_MAX


def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(predictor, tmp_path):
    app = _app(predictor, tmp_path, api_keys=[hashlib.sha256(KEY.encode()).hexdigest()])
    reads, sent = [], []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = _scope("POST", "/v1/images", [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"20000000")])
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401 and not reads
    with TestClient(app) as c:
        frame = png_bytes(64, 64, "RGB", (90, 120, 150))
        assert c.post("/v1/images", files={"files": ("f.png", frame)}, headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_one_request_over_its_pixel_budget_is_413_before_decoding(predictor, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(predictor, "predict", lambda *a, **k: calls.append(a))
    with TestClient(_app(predictor, tmp_path, sync_max_request_pixels=1_000_000)) as c:
        files = [("files", (f"{i}.png", png_bytes(600, 600, "RGB", (90, 120, 150)))) for i in range(3)]  # 1.08 M pixels
        body = problem(c.post("/v1/images", files=files), 413)
    assert "1.08 megapixels, over the limit of 1 megapixel per request" in body["detail"] and "/v1/jobs" in body["detail"]
    assert calls == []


def test_a_bad_last_file_fails_the_request_before_any_file_is_scored(client, predictor, shared_data, bad_files, monkeypatch):
    calls = []
    monkeypatch.setattr(predictor, "predict", lambda *a, **k: calls.append(a))
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    files = [("files", (clip.name, clip.read_bytes())), ("files", ("cut.mp4", bad_files["truncated_video"].read_bytes()))]
    assert "cut.mp4" in problem(client.post("/v1/videos", files=files), 422)["detail"]
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    files = [("files", (frame.name, frame.read_bytes())), ("files", ("cut.jpg", bad_files["truncated_jpeg"].read_bytes()))]
    assert "cut.jpg" in problem(client.post("/v1/images", files=files), 422)["detail"]
    assert calls == []


@pytest.mark.parametrize("kind, status", [("truncated_jpeg", 422), ("truncated_video", 422), ("empty", 422), ("text", 415)])
def test_a_bad_file_gets_the_same_answer_on_the_sync_and_job_routes(client, bad_files, kind, status):
    path = bad_files[kind]
    sync = client.post("/v1/images" if path.suffix == ".jpg" else "/v1/videos", files={"files": (path.name, path.read_bytes())})
    job = client.post("/v1/jobs", files={"file": (path.name, path.read_bytes())})
    assert problem(sync, status)["type"] == problem(job, status)["type"]
    assert os.listdir(client.app.state.settings.data_dir / "uploads") == []  # a refused upload is not kept


def test_an_unexpected_error_is_a_500_problem_with_the_request_id_logged_once(client, caplog):
    def boom():
        raise RuntimeError("a bug")

    client.app.add_api_route("/boom", boom)
    client.app.middleware_stack = None  # rebuilt with the new route
    with caplog.at_level(logging.ERROR):
        with TestClient(client.app, raise_server_exceptions=False) as c:
            r = c.get("/boom", headers={"X-Request-ID": "req-500"})
    body = problem(r, 500)
    assert r.headers["x-request-id"] == "req-500" and "a bug" not in body["detail"]
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None


def test_a_500_keeps_the_connection_open(predictor, tmp_path):
    """On a real uvicorn: the keep-alive connection that got a 500 serves the next request."""
    import http.client

    app = _app(predictor, tmp_path)

    def boom():
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    with serving(app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/boom")
        first = conn.getresponse()
        assert first.status == 500 and first.getheader("x-request-id")
        first.read()
        conn.request("GET", "/healthz")  # same socket
        assert conn.getresponse().status == 200


def test_a_chunked_body_over_the_limit_is_413(predictor, tmp_path):
    with TestClient(_app(predictor, tmp_path, sync_max_upload_mb=0.5)) as c:
        def chunks():
            yield b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n\r\n"
            for _ in range(40):
                yield b"\xff" * 65536
            yield b"\r\n--x--\r\n"

        r = c.post("/v1/images", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert "over the limit of 524288 bytes" in problem(r, 413)["detail"]


def test_healthz_at_once_and_readyz_503_until_the_model_is_loaded(predictor, tmp_path, monkeypatch):
    release = threading.Event()

    def slow_load(settings):
        release.wait(30)
        return predictor

    monkeypatch.setattr("unmask.service.lifespan.load_predictor", slow_load)
    with TestClient(create_app(Settings(data_dir=tmp_path))) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        problem(r, 503)
        assert int(r.headers["retry-after"]) > 0
        problem(c.post("/v1/images", files={"files": ("a.png", png_bytes(64, 64, "RGB", (90, 120, 150)))}), 503)
        release.set()
        deadline = time.monotonic() + 10
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_metrics_labels_are_bounded(client):
    client.request("FOO", "/v1/images")
    client.get("/docs")
    client.get("/openapi.json")
    client.get("/v1/jobs/abc")
    labels = {tuple(s.labels.values()) for m in prometheus.REGISTRY.collect() if m.name == "unmask_requests" for s in m.samples}
    routes = {r for _, r, _ in labels}
    methods = {m for m, _, _ in labels}
    assert {"/docs", "/openapi.json", "/v1/jobs/{job_id}"} <= routes
    assert "FOO" not in methods and "other" in methods


def test_405_says_which_methods_are_allowed(client):
    r = client.put("/v1/images")
    problem(r, 405)
    assert r.headers["allow"] == "POST"
    assert client.put("/v1/jobs/0c6f").headers["allow"] == "DELETE, GET, HEAD"  # HEAD is answered wherever GET is


def test_head_is_answered_wherever_get_is_without_a_body(client, predictor, tmp_path):
    for path in ("/healthz", "/readyz", "/", "/docs", "/openapi.json", "/v1/jobs"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-length"] == got.headers["content-length"], path
        assert head.headers["content-type"] == got.headers["content-type"] and head.headers["x-request-id"]
    r = client.head("/v1/images")  # POST only
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.content == b""
    assert client.head("/v1/jobs/nothing").status_code == 404
    labels = {tuple(s.labels.values()) for m in prometheus.REGISTRY.collect() if m.name == "unmask_requests" for s in m.samples}
    assert ("HEAD", "/healthz", "200") in labels
    (tmp_path / "keyed").mkdir()
    with TestClient(_app(predictor, tmp_path / "keyed", api_keys=[hashlib.sha256(KEY.encode()).hexdigest()])) as keyed:
        assert keyed.head("/v1/jobs").status_code == 401
        assert keyed.head("/v1/jobs", headers={"X-API-Key": KEY}).status_code == 200


def test_a_request_id_with_control_or_non_ascii_characters_is_replaced(predictor, tmp_path):
    app = _app(predictor, tmp_path)

    def answered_id(given: bytes) -> str:
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        asyncio.run(app(_scope("GET", "/healthz", [(b"x-request-id", given)]), receive, send))
        return dict(sent[0]["headers"])[b"x-request-id"].decode("latin-1")

    assert answered_id(b"trace-1;Root=1-5759e988") == "trace-1;Root=1-5759e988"
    assert answered_id(b"a" * 64) == "a" * 64
    for bad in (b"abc\x1b[31mred", b"two words", b"\xff\xfe", b"tab\there", b"a" * 65):  # cut, two ids could clash
        replaced = answered_id(bad)
        assert len(replaced) == 32 and all(c in "0123456789abcdef" for c in replaced), bad


def _text_access_log(client, fmt: str, *paths: str) -> str:
    """The text log's access lines for GETs of ``paths``."""
    from unmask.model.printable import TextFormatter
    from unmask.service.core.middleware import RequestIdFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(TextFormatter(fmt))
    access = logging.getLogger("unmask.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        for path in paths:
            client.get(path)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    return stream.getvalue()


def test_a_text_log_line_cannot_be_split_or_coloured_by_a_request(client):
    log = _text_access_log(client, "%(levelname)s %(name)s [%(request_id)s] %(message)s",
                           "/v1/jobs/x%0A2026-01-01 INFO unmask.access [forged] GET /admin 200", "/v1/jobs/%1b%5b31mred")
    lines = log.splitlines()
    assert len(lines) == 2 and all(line.startswith("INFO unmask.access [") for line in lines), lines
    assert "/v1/jobs/x\\x0a2026-01-01" in lines[0] and "\\x1b[31mred 404" in lines[1]
    assert "\x1b" not in log


def test_leftovers_of_killed_processes_are_removed_at_start(predictor, tmp_path):
    spool, uploads = tmp_path / "spool", tmp_path / "data" / "uploads"
    uploads.mkdir(parents=True)
    spool.mkdir()
    dead = 2**22 + 12345  # above pid_max's default: no such process
    (spool / f"unmask-{dead}-abc").mkdir()
    (spool / f"unmask-{dead}-abc" / "0").write_bytes(b"x")
    (spool / f"unmask-{os.getpid()}-live").mkdir()  # a live process's request
    (uploads / f"{PART_PREFIX}{dead}-0c6f").write_bytes(b"x")
    other_host = uploads / f"part-00000000-{dead}-0c6f"  # another host's upload in a shared media folder: its pid means nothing here
    other_host.write_bytes(b"x")
    with TestClient(_app(predictor, tmp_path)):
        pass
    assert sorted(p.name for p in spool.iterdir()) == [f"unmask-{os.getpid()}-live"]
    assert list(uploads.iterdir()) == [other_host]


def test_a_clean_shutdown_re_queues_the_running_job_without_an_attempt(predictor, tmp_path, shared_data):
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    job = store.add("path", str(shared_data / "clips" / "ffpp_real_004.mp4"), "clip.mp4")
    runner = JobRunner(store, predictor, poll_s=0.05)
    runner.start()
    deadline = time.monotonic() + 60
    while store.get(job.id).progress_done < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    runner.stop()
    stopped = store.get(job.id)
    assert stopped.state == "queued" and stopped.attempts == 0
    assert store.recover(max_attempts=1) == (0, 0)
    store.close()


def test_a_body_that_is_not_json_is_400_like_a_malformed_multipart(client):
    body = problem(client.post("/v1/batches", content=b'{"paths": [', headers={"content-type": "application/json"}), 400)
    assert "JSON" in body["detail"]
    problem(client.post("/v1/batches", json={"paths": "frames"}), 422)  # JSON, but not the schema's


def test_sync_records_round_timings_as_the_cli_and_jobs_do(client, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    body = record(client.post("/v1/images", files={"files": (frame.name, frame.read_bytes())}))
    assert set(body["timings_ms"]) >= {"decode", "detect", "classify", "total"}
    assert all(round(ms, 1) == ms for ms in body["timings_ms"].values()), body["timings_ms"]


def _multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"x") -> tuple[bytes, dict]:
    """A multipart body from raw (Content-Disposition value, content) pairs: bytes a client library would not send."""
    body = b"".join(b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + content + b"\r\n"
                    for disposition, content in parts)
    return body + b"--" + boundary + b"--\r\n", {"content-type": "multipart/form-data; boundary=" + boundary.decode()}


def _job_result(client, job: dict) -> dict:
    deadline = time.monotonic() + 60
    while (job := client.get(job["url"]).json())["state"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job


@pytest.mark.parametrize("raw, shown", [
    ("evil\u202egnp.exe".encode(), "evil\\u202egnp.exe"),  # a right-to-left override: would read "evilexe.png"
    (b"a\x00b.png", "a\\x00b.png"),  # a NUL
    ("zero\u200bwidth\ufeff.png".encode(), "zero\\u200bwidth\\ufeff.png"),
])
def test_a_file_name_is_shown_with_invisible_characters_escaped(client, shared_data, raw, shown):
    frame = (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes()
    body, headers = _multipart([(b'form-data; name="files"; filename="' + raw + b'"', frame)])
    assert record(client.post("/v1/images", content=body, headers=headers))["path"] == shown
    body, headers = _multipart([(b'form-data; name="file"; filename="' + raw + b'"', frame)])
    job = client.post("/v1/jobs", content=body, headers=headers).json()
    assert job["name"] == shown and _job_result(client, job)["result"]["path"] == shown
    body, headers = _multipart([(b'form-data; name="files"; filename="' + raw + b'"', b"not an image")])
    assert problem(client.post("/v1/images", content=body, headers=headers), 415)["detail"].startswith(shown + ": ")


def test_a_server_side_name_is_shown_escaped_and_its_file_still_found(client, root):
    (root / "clean" / "odd\u202egpj.jpg").write_bytes((root / "clean" / "frame.jpg").read_bytes())
    try:
        job = client.post("/v1/jobs", data={"path": "clean/odd\u202egpj.jpg"}).json()
        assert job["name"] == "clean/odd\\u202egpj.jpg"
        assert _job_result(client, job)["result"]["status"] == "ok"  # the file was found by its real name
        batch = client.post("/v1/batches", json={"paths": ["clean"]}).json()
        assert sorted(j["name"] for j in batch["jobs"]) == ["clean/frame.jpg", "clean/odd\\u202egpj.jpg"]
    finally:
        (root / "clean" / "odd\u202egpj.jpg").unlink()


def test_a_text_log_line_escapes_bidi_and_other_invisible_characters(client):
    log = _text_access_log(client, "%(message)s", "/v1/jobs/a%E2%80%AEb%E2%80%8Bc%C2%9B")  # U+202E, U+200B, the C1 CSI
    assert log.startswith("GET /v1/jobs/a\\u202eb\\u200bc\\x9b 404 "), log
    assert not any(c in log for c in "\u202e\u200b\x9b")
