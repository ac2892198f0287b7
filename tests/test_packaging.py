"""Every Python folder of the three packages is listed in pyproject.toml (non-editable installs need it)."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    for name, folder in config["package-dir"].items():
        for init in (REPO / folder).rglob("__init__.py"):
            sub = init.parent.relative_to(REPO / folder).parts
            assert ".".join((name, *sub)) in listed, f"{init.parent} is not in [tool.setuptools] packages"
    weights = config["package-data"]["unmask.model.weights"]
    assert "*.safetensors" in weights and "*.json" in weights
