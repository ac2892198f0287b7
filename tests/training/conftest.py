import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "dfdc_faces" / "labels.csv").is_file():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def real_crop(data_dir):
    from unmask.training.cache import read_rgb
    from unmask.training.datasets import dfdc_records

    rec = next(r for r in dfdc_records(data_dir, "all") if r.label == 0)
    return read_rgb(rec.path)
