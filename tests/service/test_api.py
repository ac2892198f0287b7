"""The REST API on a tiny random model: contract, errors as problem+json."""

import pytest
from fastapi.testclient import TestClient
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.service.core.config import Settings
from unmask.service.main import create_app

from tests.helpers import PROBLEM, problem, record, records


@pytest.fixture(scope="module")
def client(tiny_checkpoint, tmp_path_factory):
    predictor = Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))
    settings = Settings(sync_max_upload_mb=3.0, max_files=3, sync_max_video_seconds=20, data_dir=tmp_path_factory.mktemp("data"))
    with TestClient(create_app(settings, predictor)) as c:
        yield c


def _upload(path, name=None, mime="application/octet-stream"):
    return ("files", (name or path.name, path.read_bytes(), mime))




def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["model"]["name"] == "tiny-random"


def test_one_image_gives_one_record(client, shared_data):
    body = record(client.post("/v1/images", files=[_upload(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg")]))
    assert body["path"] == "dfdc_real_lynaeydofd_fr0.jpg" and body["status"] == "ok"
    assert 0 <= body["score"] <= 1 and len(body["frames"][0]["faces"]) == 1


def test_several_images_give_a_list_in_order(client, shared_data, no_face_image):
    frames = sorted((shared_data / "frames").glob("*.jpg"))
    body = records(client.post("/v1/images", files=[_upload(p) for p in frames] + [_upload(no_face_image)]))
    assert [b["path"] for b in body] == [p.name for p in frames] + ["no_face.jpg"]
    assert [b["status"] for b in body] == ["ok", "ok", "no_face"]
    assert body[2]["score"] is None and body[2]["label"] is None


def test_either_upload_field_name_is_taken_on_every_route(client, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    one = ("file", (frame.name, frame.read_bytes(), "image/jpeg"))
    assert record(client.post("/v1/images", files=[one]))["path"] == frame.name
    both = records(client.post("/v1/images", files=[_upload(frame), one]))
    assert [b["path"] for b in both] == [frame.name] * 2
    job = client.post("/v1/jobs", files=[("files", (frame.name, frame.read_bytes(), "image/jpeg"))])
    assert job.status_code == 202, job.text
    assert "not both" in problem(client.post("/v1/jobs", files=[one, _upload(frame)]), 422)["detail"]


def test_legacy_shape_setting_answers_one_file_with_its_bare_record(tiny_checkpoint, shared_data, tmp_path):
    settings = Settings(data_dir=tmp_path, legacy_single_record=True)
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    with TestClient(create_app(settings, Predictor(tiny_checkpoint, ScoringConfig(backend="torch")))) as c:
        assert c.post("/v1/images", files=[_upload(frame)]).json()["path"] == frame.name
        assert [b["path"] for b in c.post("/v1/images", files=[_upload(frame)] * 2).json()] == [frame.name] * 2


def test_content_credentials_come_beside_the_score_and_a_broken_manifest_is_no_error(client, c2pa_files):
    signed, malformed = records(client.post("/v1/images", files=[_upload(c2pa_files["signed"]), _upload(c2pa_files["malformed"])]))
    assert signed["status"] == malformed["status"] == "ok" and signed["score"] == malformed["score"]
    assert signed["provenance"]["validation_state"] == "valid" and signed["provenance"]["ai_content"] == "generated"
    assert malformed["provenance"]["present"] and malformed["provenance"]["validation_state"] == "malformed"
    assert "could not be read" in malformed["provenance"]["detail"]


def test_text_file_is_415_whatever_its_name(client, bad_files):
    body = problem(client.post("/v1/images", files=[_upload(bad_files["text"], mime="image/jpeg")]), 415)
    assert "notes.jpg" in body["detail"]


def test_video_sent_to_images_is_415(client, shared_data):
    body = problem(client.post("/v1/images", files=[_upload(shared_data / "clips" / "ffpp_real_004.mp4")]), 415)
    assert "/v1/videos" in body["detail"]


@pytest.mark.parametrize("kind", ["empty", "truncated_jpeg"])
def test_empty_or_corrupt_image_is_422(client, bad_files, kind):
    problem(client.post("/v1/images", files=[_upload(bad_files[kind])]), 422)


def test_oversize_upload_is_413(client, tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\0" * (4 * 1024 * 1024))
    body = problem(client.post("/v1/images", files=[_upload(big)]), 413)
    assert "limit" in body["detail"]


def test_too_many_files_is_413(client, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    problem(client.post("/v1/images", files=[_upload(frame)] * 4), 413)


def test_missing_files_field_is_422(client):
    problem(client.post("/v1/images"), 422)


def test_a_part_without_a_filename_is_422_saying_it_must_be_a_file(client):
    for files in ({"files": ("", b"abc")}, None):
        response = client.post("/v1/images", files=files, data=None if files else {"files": "abc"})
        detail = problem(response, 422)["detail"]
        assert "must be a file" in detail and "UploadFile" not in detail


def test_a_job_named_dot_gets_a_name(client, shared_data):
    jpeg = (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes()
    assert client.post("/v1/jobs", files={"file": (".", jpeg)}).json()["name"] == "upload"
    assert client.post("/v1/jobs", files={"file": ("../../x/face.jpg", jpeg)}).json()["name"] == "face.jpg"


def test_unknown_route_is_problem_json(client):
    problem(client.get("/v1/nothing"), 404)


def test_video_endpoint(client, shared_data, bad_files):
    body = record(client.post("/v1/videos", files=[_upload(shared_data / "clips" / "ffpp_real_004.mp4")]))
    assert body["media"] == "video" and len(body["frames"]) == 32 and body["tracks"]
    problem(client.post("/v1/videos", files=[_upload(bad_files["truncated_video"])]), 422)
    problem(client.post("/v1/videos", files=[_upload(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg")]), 415)


def test_video_over_the_duration_limit_is_413(client, shared_data):
    body = problem(client.post("/v1/videos", files=[_upload(shared_data / "clips" / "ffpp_real_519.mp4")]), 413)
    assert "20 s" in body["detail"]


def test_openapi_documents_examples_and_problems(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/images"]["post"]
    assert post["responses"]["200"]["content"]["application/json"]["example"]["results"][0]["status"] == "ok"
    assert PROBLEM in post["responses"]["415"]["content"]
    assert "MediaResult" in spec["components"]["schemas"]


def test_cors_allows_only_configured_origins(tiny_checkpoint, tmp_path):
    predictor = Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))
    settings = Settings(cors_origins=["https://desk.example"], data_dir=tmp_path)
    with TestClient(create_app(settings, predictor)) as c:
        preflight = {"Access-Control-Request-Method": "POST"}
        ok = c.options("/v1/images", headers={"Origin": "https://desk.example", **preflight})
        assert ok.headers["access-control-allow-origin"] == "https://desk.example"
        other = c.options("/v1/images", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers


def test_webm_upload_is_scored(client, shared_data, tmp_path):
    import cv2

    path = tmp_path / "clip.webm"
    cap = cv2.VideoCapture(str(shared_data / "clips" / "ffpp_real_004.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 25, (640, 360))
    for _ in range(30):
        writer.write(cv2.resize(cap.read()[1], (640, 360)))
    writer.release()
    body = record(client.post("/v1/videos", files=[("files", ("clip.webm", path.read_bytes(), "video/webm"))]))
    assert body["status"] == "ok" and len(body["frames"]) == 30


def test_per_request_options_reach_the_record(client, shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    body = record(client.post("/v1/videos", files=[_upload(clip)], data={"frames": "4", "aggregation": "max"}))
    assert len(body["frames"]) == 4 and body["aggregation"] == "max"
    assert body["options"] == {"frames": 4, "sample_fps": None, "aggregation": "max", "explain": False, "early_stop": False,
                               "min_face_px": 0, "adaptive_tta": False, "uncertain_margin": None}
    image = record(client.post("/v1/images", files=[_upload(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg")],
                               data={"frames": "4"}))
    assert image["options"] == {"explain": False, "min_face_px": 0, "adaptive_tta": False,
                                "uncertain_margin": None}  # only what applies to an image


def test_bad_options_are_422_problems(client, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    assert "over the limit of 128" in problem(client.post("/v1/images", files=[_upload(frame)], data={"frames": "500"}), 422)["detail"]
    problem(client.post("/v1/images", files=[_upload(frame)], data={"aggregation": "median"}), 422)
    problem(client.post("/v1/images", files=[_upload(frame)], data={"frames": "0"}), 422)


def test_a_request_widens_or_switches_off_the_uncertain_band(client, shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"

    def record(**data):
        r = client.post("/v1/images", files=[_upload(frame)], data=data)
        assert r.status_code == 200, r.text
        body = r.json()
        return body["results"][0] if "results" in body else body

    plain, wide, off = record(), record(uncertain_margin="0.5"), record(uncertain_margin="0")
    assert plain["uncertain_band"] is None and plain["confidence"] == "high"  # the tiny model has no band of its own
    assert wide["uncertain_band"] == [0.0, 1.0] and wide["confidence"] == "low" and wide["options"]["uncertain_margin"] == 0.5
    assert off["uncertain_band"] is None and off["confidence"] == "high"
    assert plain["label"] == wide["label"] == off["label"] and plain["score"] == wide["score"]  # the band never moves them
    problem(client.post("/v1/images", files=[_upload(frame)], data={"uncertain_margin": "0.6"}), 422)


def test_a_job_keeps_its_options(client, shared_data):
    import time

    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    r = client.post("/v1/jobs", files={"file": (clip.name, clip.read_bytes())}, data={"frames": "3"})
    assert r.status_code == 202, r.text
    assert r.json()["options"] == {"frames": 3, "explain": False}
    url = r.json()["url"]
    for _ in range(600):
        job = client.get(url).json()
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert job["state"] == "done" and len(job["result"]["frames"]) == 3
    # A dashboard reads each verdict from the listing, without a request per job.
    listed = next(j for j in client.get("/v1/jobs").json()["jobs"] if j["id"] == job["id"])
    assert listed["result"] is None
    assert (listed["result_status"], listed["label"], listed["confidence"], listed["score"]) == (
        job["result"]["status"], job["result"]["label"], job["result"]["confidence"], job["result"]["score"])
    assert listed["result_status"] == "ok" and listed["label"] in ("fake", "real") and 0 <= listed["score"] <= 1


def test_a_synchronous_video_is_opened_once_for_its_checks_and_its_scoring(client, shared_data, monkeypatch):
    """The header, the first-frame check and the read share one av.open; the record is the same as from a path."""
    import av
    from unmask.model import media

    opened, real_open = [], av.open
    monkeypatch.setattr(media.av, "open", lambda path, *a, **k: (opened.append(str(path)), real_open(path, *a, **k))[1])
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    body = record(client.post("/v1/videos", files={"files": ("clip.mp4", clip.read_bytes())}, data={"frames": "4"}))
    assert len(opened) == 1, opened
    assert body["status"] == "ok" and [f["index"] for f in body["frames"]] == [f.index for f in media.read_video(clip, 4)]
