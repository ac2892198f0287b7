"""Every folder of the packages is listed in pyproject.toml (non-editable installs, as in the Docker image, need it)."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    for name, folder in config["package-dir"].items():  # Python folders and data folders (the web page's files)
        for sub in (REPO / folder, *(REPO / folder).rglob("*")):
            if sub.is_dir() and sub.name != "__pycache__" and any(f.is_file() for f in sub.iterdir()):
                package = ".".join((name, *sub.relative_to(REPO / folder).parts))
                assert package in listed, f"{sub} holds files but is not in [tool.setuptools] packages"
    assert config["package-data"]["unmask.service.web.static"] == ["*"]
    weights = config["package-data"]["unmask.model.weights"]
    assert "*.safetensors" in weights and "*.json" in weights


def test_the_metadata_names_the_code_licence_and_the_weights_terms():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    licence = (REPO / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence and "END OF TERMS AND CONDITIONS" in licence
    assert "weights" in project["description"] and "research-only" in project["description"]
