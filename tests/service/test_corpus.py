"""Every file of the bad-file corpus gets its answer, the same on the synchronous route and as a job (issue 12)."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.service.core.config import Settings
from unmask.service.main import create_app

from tests.helpers import record

from ..conftest import SHARED_DATA
from .corpus import corpus

PROBLEM = "application/problem+json"
CORPUS = corpus(SHARED_DATA) if SHARED_DATA.is_dir() else []


@pytest.fixture(scope="module")
def client(tiny_checkpoint, tmp_path_factory):
    predictor = Predictor(tiny_checkpoint, ScoringConfig(backend="torch", frames=4))
    with TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("data")), predictor)) as c:
        yield c


def test_the_corpus_is_large_and_varied():
    assert len(CORPUS) >= 30
    assert len({bad.name for bad in CORPUS}) == len(CORPUS)


def _answer(response) -> tuple[int, str] | str:
    """A problem's (status, type), or a record's status."""
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM, response.text
        body = response.json()
        assert body["status"] == response.status_code and body["detail"]
        # no server paths or objects, no library internals
        assert not re.search(r"/tmp/|/uploads/|<_io\.| at 0x|Plugin|MAX_[A-Z]", body["detail"]), body["detail"]
        return response.status_code, body["type"].rsplit("/", 1)[-1]
    return record(response)["status"]


def _job_answer(client, response) -> tuple[int, str] | str:
    if response.status_code != 202:
        return _answer(response)
    url = response.json()["url"]
    deadline = time.monotonic() + 60
    while (job := client.get(url).json())["state"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["state"] == "done", job
    return job["result"]["status"]


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
def test_each_bad_file_gets_its_answer_on_both_routes(client, bad):
    sync = _answer(client.post(bad.route, files={"files": (bad.name, bad.data)}))
    assert sync == bad.expected, bad.what
    if bad.sync_only:
        return
    job = _job_answer(client, client.post("/v1/jobs", files={"file": (bad.name, bad.data)}))
    assert job == sync, bad.what
