"""Problem types: one slug style, every kind the code raises explained at its URI, the base URI a setting."""

import ast
from pathlib import Path

from fastapi.testclient import TestClient
from unmask.model import errors
from unmask.service.core.config import Settings
from unmask.service.core.problem_types import PROBLEM_TYPES, slug
from unmask.service.core.problems import STATUS_KINDS
from unmask.service.main import create_app

from tests.helpers import problem

SERVICE = Path(__file__).resolve().parents[2] / "service"


def _raised_kinds() -> set[str]:
    """Every kind a ``Problem(status, title, detail, kind)`` in the service names (its title's slug when it names none)."""
    kinds = set()
    for path in SERVICE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Problem":
                given = node.args[3] if len(node.args) > 3 else next((k.value for k in node.keywords if k.arg == "kind"), None)
                if isinstance(given, ast.Constant):
                    kinds.add(given.value)
                elif given is None and isinstance(node.args[1], ast.Constant):
                    kinds.add(node.args[1].value)
    return kinds


def test_every_kind_the_service_can_answer_with_is_explained_in_one_slug_style():
    media_kinds = {cls.kind for cls in vars(errors).values() if isinstance(cls, type) and hasattr(cls, "kind")}
    kinds = {slug(k) for k in _raised_kinds() | set(STATUS_KINDS.values()) | media_kinds}
    assert len(kinds) > 15
    assert kinds <= set(PROBLEM_TYPES), sorted(kinds - set(PROBLEM_TYPES))
    assert all(k == slug(k) and "-" not in k for k in PROBLEM_TYPES)


def test_a_problem_type_is_relative_by_default_and_its_page_explains_it(tiny_checkpoint, tmp_path):
    from unmask.model.predictor import Predictor

    app = create_app(Settings(data_dir=tmp_path, api_keys=["0" * 64]), Predictor(tiny_checkpoint))
    with TestClient(app) as client:
        body = problem(client.post("/v1/jobs"), 401)  # the key is checked first, and the pages need none
        assert body["type"] == "/problems/unauthorized"
        page = client.get(body["type"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert PROBLEM_TYPES["unauthorized"][0] in page.text and "Authorization: Bearer KEY" in page.text
        index = client.get("/problems")
        assert all(f"/problems/{k}" in index.text for k in PROBLEM_TYPES)
        assert problem(client.get("/problems/no_such_kind"), 404)["type"] == "/problems/not_found"
        assert "/problems" not in client.get("/openapi.json").json()["paths"]


def test_the_base_uri_is_a_setting(tiny_checkpoint, tmp_path):
    from unmask.model.predictor import Predictor

    app = create_app(Settings(data_dir=tmp_path, problem_base_uri="https://errors.example.org/unmask/"), Predictor(tiny_checkpoint))
    with TestClient(app) as client:
        assert problem(client.get("/v1/jobs/nope"), 404)["type"] == "https://errors.example.org/unmask/not_found"
        assert problem(client.post("/v1/jobs", data={"frames": "0", "path": "x"}), 422)["type"].endswith("/invalid_request")


def test_an_unreadable_authorization_header_is_refused_even_beside_a_good_key(tiny_checkpoint, tmp_path):
    import hashlib

    from unmask.model.predictor import Predictor

    app = create_app(Settings(data_dir=tmp_path, api_keys=[hashlib.sha256(b"good-key").hexdigest()]), Predictor(tiny_checkpoint))
    with TestClient(app) as client:
        assert client.get("/v1/jobs", headers={"X-API-Key": "good-key"}).status_code == 200
        assert client.get("/v1/jobs", headers={"Authorization": "Bearer good-key"}).status_code == 200
        for bad in ("Basic Z29vZA==", "Bearer", "Bearer two words", "good-key"):
            body = problem(client.get("/v1/jobs", headers={"X-API-Key": "good-key", "Authorization": bad}), 401)
            assert "not `Bearer KEY`" in body["detail"], bad
