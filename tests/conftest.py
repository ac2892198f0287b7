"""Shared fixtures: the shared data folder, a tiny random checkpoint, test images, job databases of both backends."""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm must never reach for the hub
# Two xdist workers and their servers share two cores: OpenMP threads that spin while they wait for work
# burn the other processes' CPU (measured: 30% less CPU and wall on the predictor tests). Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from .service.postgres import PostgresServer, server_binaries

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("UNMASK_SHARED_DATA", REPO.parent / "shared" / "data"))
FRAMES = sorted((SHARED_DATA / "frames").glob("*.jpg"))
CLIPS = sorted((SHARED_DATA / "clips").glob("*.mp4"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"shared data not found at {SHARED_DATA} (set UNMASK_SHARED_DATA)"
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _onnx_cache(tmp_path_factory, worker_id):
    """One cache of ONNX exports and eval crops for the run, shared by the xdist workers (writes are atomic)."""
    root = tmp_path_factory.getbasetemp()
    folder = (root.parent if worker_id != "master" else root) / "unmask-cache"
    folder.mkdir(exist_ok=True)
    os.environ["UNMASK_CACHE_DIR"] = str(folder)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random-weight lite0 checkpoint (unit tests: shapes and plumbing, not accuracy)."""
    from unmask.model.architectures import create_model
    from unmask.model.checkpoint import CheckpointInfo, save_checkpoint
    from unmask.model.config import default_config

    torch.manual_seed(0)
    model = create_model("lite0")
    info = CheckpointInfo(name="tiny-random", version="0", config=default_config("lite0"))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", model, info)


@pytest.fixture(scope="session")
def no_face_image(tmp_path_factory, shared_data) -> Path:
    """Real pixels with no face: the bottom half of the real DFDC frame."""
    image = cv2.imread(str(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"))
    path = tmp_path_factory.mktemp("img") / "no_face.jpg"
    cv2.imwrite(str(path), image[image.shape[0] // 2 :])
    return path


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, shared_data) -> dict[str, Path]:
    """A text file named .jpg, an empty .jpg, a truncated JPEG, a truncated MP4."""
    folder = tmp_path_factory.mktemp("bad")
    jpeg = (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes()
    mp4 = (shared_data / "clips" / "ffpp_real_004.mp4").read_bytes()
    files = {
        "text": (folder / "notes.jpg", b"this is not an image\n" * 10),
        "empty": (folder / "empty.jpg", b""),
        "truncated_jpeg": (folder / "cut.jpg", jpeg[: len(jpeg) // 3]),
        "truncated_video": (folder / "cut.mp4", mp4[: len(mp4) // 10]),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {k: p for k, (p, _) in files.items()}


@pytest.fixture(scope="session")
def c2pa_signer():
    """Signs files with Content Credentials under a test certificate chain made for the session."""
    from .helpers import ContentCredentialsSigner

    return ContentCredentialsSigner()


@pytest.fixture(scope="session")
def c2pa_files(tmp_path_factory, shared_data, c2pa_signer) -> dict[str, Path]:
    """The real DFDC frame: signed (declaring AI generation), tampered with after signing, with a broken manifest."""
    from .helpers import break_manifest

    folder = tmp_path_factory.mktemp("c2pa")
    signed = c2pa_signer.sign((shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes(), "image/jpeg")
    tampered = bytearray(signed)
    # A few bytes of the entropy-coded image data changed (never to or from 0xff, a marker): the pixels change.
    tampered[-5000:-4990] = bytes(b ^ 1 if b < 0xFE else b for b in tampered[-5000:-4990])
    files = {"signed": signed, "tampered": bytes(tampered), "malformed": break_manifest(signed)}
    for kind, data in files.items():
        (folder / f"{kind}.jpg").write_bytes(data)
    return {kind: folder / f"{kind}.jpg" for kind in files}


@pytest.fixture
def random_crops() -> list[np.ndarray]:
    """Three random 224 px RGB crops."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(3)]


# -- job stores: the same tests run on the SQLite file and on a real PostgreSQL server --

def _missing(reason: str):
    """Skip with the reason, except in CI (CI=true), where the Postgres tests must run: fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests (.ci/run installs postgresql)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the whole session."""
    binaries = server_binaries()
    if binaries is None:
        _missing("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    if importlib.util.find_spec("psycopg") is None or importlib.util.find_spec("psycopg_pool") is None:
        _missing("psycopg is not installed (pip install 'unmask[postgres]')")
    server = PostgresServer(binaries).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """A new, empty job database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def store(store_url):
    from unmask.service.jobs.stores import open_store

    s = open_store(store_url)
    yield s
    s.close()


# The longest files first: with ``-n 2 --dist loadfile --no-loadscope-reorder`` (make test) each file
# runs whole on one worker, in collection order, so the long ones must not start last (xdist's own
# reorder puts the files with the most tests first, and so these last). Measured with --durations.
LONGEST_FIRST = ("e2e/test_quality.py", "service/test_scale_out.py", "e2e/test_default_model.py",
                 "service/test_web_browser.py", "service/test_restarts.py", "cli/test_score.py",
                 "service/test_live_server.py", "service/test_schemathesis.py", "model/test_predictor.py",
                 "cli/test_usage_errors.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = item.nodeid.split("::")[0].removeprefix("tests/")
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file, and of the other files, is kept
