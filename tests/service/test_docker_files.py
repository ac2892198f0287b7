"""The compose file validates, and the images install the package and serve it."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _compose() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def test_compose_config_validates():
    compose = _compose()
    if compose is None:
        pytest.skip("no docker compose CLI here (apt-get install docker-compose)")
    proc = subprocess.run([*compose, "config"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "unmask-data" in proc.stdout and "docker/Dockerfile" in proc.stdout


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfiles_copy_the_package_and_serve(name):
    text = (REPO / "docker" / name).read_text()
    for folder in ("model", "training", "service"):
        assert f"COPY {folder} ./{folder}" in text
    assert 'CMD ["unmask", "serve"]' in text and "UNMASK_HOST=0.0.0.0" in text
    assert "USER unmask" in text  # not root
