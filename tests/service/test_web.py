"""The page at / and the API docs work without internet: every asset is served by the app itself."""

import re
import time
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from unmask.model.card import card_licence, card_path, read_card
from unmask.model.checkpoint import list_bundled, resolve_checkpoint
from unmask.model.config import ScoringConfig
from unmask.model.media import IMAGE_NAMES, VIDEO_TYPES
from unmask.model.predictor import Predictor
from unmask.service.core.config import Settings
from unmask.service.main import create_app

from tests.helpers import record


@pytest.fixture(scope="module")
def client(tiny_checkpoint, tmp_path_factory):
    predictor = Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))
    with TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("data")), predictor)) as c:
        yield c


class _Links(HTMLParser):
    """Every URL an HTML page loads or links to (src, href), plus inline scripts' text."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def _links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc"])
def test_pages_load_nothing_from_another_host(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    links = _links(response.text)
    assert links.urls, "the page loads no asset at all?"
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), f"{path} references {url}"
        if not url.startswith("/openapi.json"):
            assert client.get(url).status_code == 200, url
    for script in links.scripts:  # inline set-up code (Swagger UI's) names only local URLs
        assert not re.search(r"https?://", script), script


def test_the_page_has_a_strict_content_policy_and_nothing_is_sniffed(client):
    policy = client.get("/").headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    for path in ("/", "/web/app.js", "/docs", "/openapi.json", "/v1/jobs/none", "/healthz"):
        assert client.get(path).headers["x-content-type-options"] == "nosniff", path
    html = client.get("/").text
    assert "<script>" not in html and "style=" not in html  # nothing inline for the policy to block


def test_the_page_script_and_styles_reference_no_other_host(client):
    for asset in ("/web/app.js", "/web/style.css"):
        body = client.get(asset).text
        hosts = set(re.findall(r"https?://([^/\"'\s]+)", body)) - {"www.w3.org"}  # the SVG namespace is a name, not a fetch
        assert not hosts, f"{asset} names {hosts}"


def test_docs_use_the_local_swagger_bundle_and_no_validator(client):
    html = client.get("/docs").text
    assert "/static-offline-docs/swagger-ui-bundle.js" in html
    assert '"validatorUrl": null' in html


def test_the_page_is_not_in_the_api_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/web") for p in paths)


def test_unknown_paths_are_still_problem_json(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/problem+json")


def test_a_job_with_explain_carries_heat_maps(client, shared_data):
    """The page's request: POST /v1/jobs with explain=true, then poll until done."""
    frame = shared_data / "frames" / "dfdc_fake_mqzvfufzoq_fr0.jpg"
    job = client.post("/v1/jobs", files={"file": (frame.name, frame.read_bytes())}, data={"explain": "true"}).json()
    deadline = time.monotonic() + 60
    while (view := client.get(job["url"]).json())["state"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert view["state"] == "done" and view["options"]["explain"] is True
    (explanation,) = view["result"]["explanations"]
    assert explanation["method"] == "gradcam" and len(explanation["crop"]) == 4
    plain = record(client.post("/v1/images", files={"files": (frame.name, frame.read_bytes())}))
    assert plain["explanations"] is None and plain["score"] == view["result"]["score"]


def test_the_page_names_every_type_the_api_takes(client):
    html = client.get("/").text
    offered = re.search(r'<span>or tap to choose files: (.*?)</span>', html).group(1).lower()
    accept = re.search(r'id="file" multiple accept="([^"]+)"', html).group(1).split(",")
    assert "image/*" in accept and "video/*" in accept
    for name in IMAGE_NAMES.split(", ") + list(VIDEO_TYPES):
        assert name.lower() in offered, name
    for suffix in (".bmp", ".tif", ".tiff", ".mkv", ".avi"):  # types a picker may not map to image/* or video/*
        assert suffix in accept, suffix


def test_every_bundled_card_states_its_weights_licence():
    for name in list_bundled():
        licence = card_licence(read_card(resolve_checkpoint(name)))
        assert "non-commercial" in licence and "\n" not in licence and "`" not in licence, name


def test_the_model_route_names_the_model_its_licence_and_card(client, tiny_checkpoint):
    """Open (as /readyz): the page's model line reads it, and its card link is a plain link that sends no key."""
    model = client.get("/model").json()
    assert model == {"name": "tiny-random", "version": model["version"], "architecture": "lite0", "threshold": 0.5,
                     "licence": None, "card": None}
    missing = client.get("/model/card")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    card = card_path(tiny_checkpoint)
    card.write_text("# tiny-random\n\n## Licence\n\nMade up for tests: `any` use,\nno terms.\n\nThe code is Apache-2.0.\n")
    try:
        model = client.get("/model").json()
        assert model["licence"] == "Made up for tests: any use, no terms." and model["card"] == "/model/card"
        served = client.get("/model/card")
        assert served.headers["content-type"] == "text/markdown; charset=utf-8" and served.text == card.read_text()
    finally:
        card.unlink()
