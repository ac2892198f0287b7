"""The API contract (issue 13): an OpenAPI document generators can use, the jobs listing, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.service.core.config import Settings
from unmask.service.jobs.callbacks import CallbackPolicy
from unmask.service.main import create_app

PROBLEM = "application/problem+json"
SECRET = "s3cret"
OPERATIONS = {"score_images", "score_videos", "create_job", "get_job", "cancel_job", "delete_job", "list_jobs", "create_batch",
              "get_batch", "get_batch_results", "healthz", "readyz", "metrics",
              "model_info", "model_card"}


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="torch", frames=2))


@pytest.fixture(scope="module")
def spec(predictor, tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), api_keys=[hashlib.sha256(b"key").hexdigest()])
    with TestClient(create_app(settings, predictor)) as c:
        return c.get("/openapi.json", headers={"X-API-Key": "key"}).json()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_operation_ids_are_stable_and_readable(spec):
    assert {op["operationId"] for _, _, op in _operations(spec)} == OPERATIONS


def test_upload_fields_are_binary(spec):
    schemas = spec["components"]["schemas"]
    for op in ("score_images", "score_videos"):
        assert schemas[f"Body_{op}"]["properties"]["files"]["items"]["format"] == "binary"
    job_file = schemas["Body_create_job"]["properties"]["file"]
    assert any(v.get("format") == "binary" for v in job_file.get("anyOf", [job_file]))


def test_every_error_is_one_problem_component_as_problem_json(spec):
    schemas = spec["components"]["schemas"]
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail"}
    assert "HTTPValidationError" not in schemas
    for path, method, op in _operations(spec):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == [PROBLEM], (path, method, status)
                assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    declared = {op["operationId"]: set(op["responses"]) for _, _, op in _operations(spec)}
    assert declared["create_job"] >= {"202", "401", "403", "404", "413", "415", "422", "429"}
    assert declared["cancel_job"] >= {"404", "409"} and declared["readyz"] == {"200", "503"}
    assert declared["delete_job"] == {"204", "401", "404"}


def test_security_schemes_cover_the_api_when_keys_are_on(spec, predictor, tmp_path):
    assert spec["components"]["securitySchemes"]["ApiKeyHeader"]["name"] == "X-API-Key"
    assert spec["components"]["securitySchemes"]["BearerKey"]["scheme"] == "bearer"
    for path, _, op in _operations(spec):
        assert ("security" in op) == path.startswith("/v1/")
    with TestClient(create_app(Settings(data_dir=tmp_path), predictor)) as c:  # no keys: nothing to send
        assert all("security" not in op for _, _, op in _operations(c.get("/openapi.json").json()))


def test_fields_are_described_and_typed(spec):
    schemas = spec["components"]["schemas"]
    for name in ("MediaResult", "FaceResult", "FrameResult", "TrackResult", "JobPublic", "JobList", "BatchPublic", "Problem"):
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
    face = schemas["FaceResult"]["properties"]
    assert (face["box"]["minItems"], face["box"]["maxItems"]) == (4, 4)
    assert face["landmarks"]["items"]["minItems"] == face["landmarks"]["items"]["maxItems"] == 2
    assert schemas["JobPublic"]["properties"]["created"]["format"] == "date-time"
    results = spec["paths"]["/v1/batches/{batch_id}/results"]["get"]["responses"]["200"]["content"]["application/json"]
    assert results["schema"]["items"] == {"$ref": "#/components/schemas/MediaResult"}


def test_links_lead_from_a_created_job_or_batch_to_the_operations_on_its_id(spec):
    by_id = {op["operationId"]: (path, op) for path, _, op in _operations(spec)}
    expected = {"create_job": {"get_job", "cancel_job", "delete_job"}, "create_batch": {"get_batch", "get_batch_results"}}
    for source, targets in expected.items():
        links = by_id[source][1]["responses"]["202"]["links"]
        assert set(links) == targets
        for name, link in links.items():
            assert link["operationId"] == name
            path, op = by_id[name]
            (parameter,) = [p["name"] for p in op["parameters"] if p["in"] == "path"]
            assert link["parameters"] == {parameter: "$response.body#/id"} and "{" + parameter + "}" in path
    assert "id" in spec["components"]["schemas"]["JobPublic"]["required"]
    assert "id" in spec["components"]["schemas"]["BatchPublic"]["required"]


def test_examples_for_images_videos_and_jobs(spec):
    def example(path, method, status):
        return spec["paths"][path][method]["responses"][status]["content"]["application/json"]["example"]

    assert example("/v1/images", "post", "200")["results"][0]["media"] == "image"
    assert example("/v1/videos", "post", "200")["results"][0]["media"] == "video"
    assert example("/v1/jobs", "post", "202")["state"] == "queued"
    assert example("/v1/jobs/{job_id}", "get", "200")["result"]["status"] == "ok"


@pytest.fixture
def client(predictor, tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path / "data"), predictor)) as c:
        yield c


def test_list_jobs_filters_by_state_and_pages_with_a_cursor(client, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    ids = [client.post("/v1/jobs", files={"file": (f"{i}.jpg", frame.read_bytes())}).json()["id"] for i in range(5)]
    client.post(f"/v1/jobs/{ids[-1]}/cancel")
    seen, cursor = [], None
    while True:
        page = client.get("/v1/jobs", params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
        assert len(page["jobs"]) <= 2 and all(j["result"] is None for j in page["jobs"])
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]  # newest first, each once
    cancelled = client.get("/v1/jobs", params={"state": "cancelled"}).json()["jobs"]
    assert ids[-1] in [j["id"] for j in cancelled] and all(j["state"] == "cancelled" for j in cancelled)
    assert datetime.fromisoformat(cancelled[0]["created"]).tzinfo is not None
    for bad in ({"state": "lost"}, {"cursor": "bm9wZQ"}, {"limit": 0}):
        r = client.get("/v1/jobs", params=bad)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


class Receiver:
    """A local webhook receiver: answers 500 to the first delivery, 200 after; keeps what it got."""

    def __init__(self, fail_first: int = 1) -> None:
        self.got: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((dict(self.headers), body))
                self.send_response(500 if len(outer.got) <= fail_first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_a_webhook_is_signed_retried_after_a_500_and_shown_on_the_job(predictor, tmp_path, shared_data):
    receiver = Receiver(fail_first=1)
    settings = Settings(data_dir=tmp_path, callback_hosts=["127.0.0.1"], callback_secret=SECRET, callback_backoff_s=0.2)
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    try:
        with TestClient(create_app(settings, predictor)) as c:
            r = c.post("/v1/jobs", files={"file": (frame.name, frame.read_bytes())}, data={"callback_url": receiver.url})
            assert r.status_code == 202 and r.json()["callback"]["state"] == "pending"
            deadline = time.monotonic() + 60
            while (job := c.get(r.json()["url"]).json())["callback"]["state"] == "pending":
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
    finally:
        receiver.close()
    assert job["callback"] | {"last_error": None} == {"url": receiver.url, "state": "delivered", "attempts": 2, "last_status": 200,
                                                      "last_error": None}
    assert len(receiver.got) == 2
    headers, body = receiver.got[-1]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Unmask-Signature"], expected)
    delivered = json.loads(body)
    assert delivered["id"] == job["id"] and delivered["state"] == "done" and delivered["result"]["status"] == "ok"


def test_a_callback_host_not_in_the_allow_list_is_refused(predictor, tmp_path, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    upload = {"file": (frame.name, frame.read_bytes())}
    off = Settings(data_dir=tmp_path / "off")
    on = Settings(data_dir=tmp_path / "on", callback_hosts=["hooks.example.com"], callback_secret=SECRET)
    with TestClient(create_app(off, predictor)) as c:
        r = c.post("/v1/jobs", files=upload, data={"callback_url": "https://hooks.example.com/x"})
        assert r.status_code == 422 and "callbacks are off" in r.json()["detail"]
    with TestClient(create_app(on, predictor)) as c:
        for url in ["https://evil.example.net/x", "http://127.0.0.1:9/x", "ftp://hooks.example.com/x", "https://u:p@hooks.example.com/"]:
            r = c.post("/v1/jobs", files=upload, data={"callback_url": url})
            assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, url
        assert c.get("/v1/jobs").json()["jobs"] == []


def test_listed_names_never_reach_private_addresses_unless_those_are_listed():
    by_name = CallbackPolicy(["localhost"])
    assert by_name.refusal("http://localhost:8080/x") is None  # the name is listed ...
    assert "non-public" in by_name.address_refusal("http://localhost:8080/x")  # ... but loopback is not
    by_address = CallbackPolicy(["localhost", "127.0.0.0/8", "::1"])
    assert by_address.address_refusal("http://localhost:8080/x") is None
    assert CallbackPolicy(["10.0.0.0/8"]).refusal("http://10.1.2.3/x") is None
    assert CallbackPolicy(["10.0.0.0/8"]).refusal("http://192.168.1.1/x") is not None


def test_callbacks_need_a_secret():
    with pytest.raises(ValueError, match="callback_secret"):
        Settings(callback_hosts=["hooks.example.com"])


# -- the schema says what the server enforces ----------------------------------------


def test_the_job_schema_takes_exactly_one_of_file_and_path(spec):
    jsonschema = pytest.importorskip("jsonschema")  # schemathesis's dependency, in the test extra
    body = spec["components"]["schemas"]["Body_create_job"]
    check = jsonschema.Draft202012Validator(body)
    assert check.is_valid({"file": "<bytes>"}) and check.is_valid({"path": "clips/a.mp4", "frames": 4})
    for invalid in ({}, {"frames": 4}, {"file": "<bytes>", "path": "clips/a.mp4"}, {"path": ""}):
        assert not check.is_valid(invalid), invalid
    assert body["properties"]["callback_url"]["minLength"] == 1
    assert "`true` or `false`" in body["properties"]["explain"]["description"]


@pytest.mark.parametrize("fields, says", [
    ({"path": ""}, "`path` is empty"),  # before: read as absent, so a file beside it was queued (202)
    ({"frames": ""}, "`frames` is empty"),  # before: the server's default taken
    ({"callback_url": ""}, "`callback_url` is empty"),
    ({"explain": "0"}, "explain: must be true or false"),  # before: 0, 1, on, off, yes, no ... were booleans
    ({"explain": "yes"}, "explain: must be true or false"),
    ({"frames": ["2", "3"]}, "send one `frames` part, not 2"),  # before: one kept, one dropped
])
def test_form_fields_the_schema_refuses_are_422(client, shared_data, fields, says):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    for route, field in (("/v1/jobs", "file"), ("/v1/images", "files")):
        if route == "/v1/images" and set(fields) & {"path", "callback_url"}:
            continue
        r = client.post(route, files={field: (frame.name, frame.read_bytes())}, data=fields)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (route, r.text)
        assert says in r.json()["detail"], r.json()["detail"]
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_booleans_are_true_or_false_in_any_case(client, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    for value, expected in (("true", True), ("False", False), ("TRUE", True)):  # generated Python clients send True / False
        r = client.post("/v1/jobs", files={"file": (frame.name, frame.read_bytes())}, data={"explain": value})
        assert r.status_code == 202 and r.json()["options"]["explain"] is expected, r.text


def test_a_batch_is_json_as_the_schema_types_it(predictor, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", allowed_root=root), predictor)) as c:
        for body in ({"paths": ["x"], "explain": 1}, {"paths": ["x"], "explain": "true"}, {"paths": ["x"], "frames": "2"}):
            r = c.post("/v1/batches", json=body)
            assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (body, r.text)
