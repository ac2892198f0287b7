"""Each bundled model's quality, pinned: later changes to detection, crops or backends cannot erode it silently.

The figures come from the checkpoint's own JSON, written when it was bundled:
``metrics.calibration.after`` by ``unmask eval --calibrate temperature --in-place``
(the DFDC validation split, crops re-cut as served, TTA, the fitted temperature)
and ``metrics.shared_files`` by ``python -m unmask.training.file_eval --pin``.
"""

import json

import pytest
from unmask.cli.main import main
from unmask.model.checkpoint import checkpoint_paths, list_bundled, resolve_checkpoint
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.training.file_eval import evaluate_files

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module", params=list_bundled())
def model_name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def card(model_name) -> dict:
    return json.loads(checkpoint_paths(resolve_checkpoint(model_name))[1].read_text())["metrics"]


def test_eval_on_the_validation_split_reproduces_the_card(model_name, card, shared_data, tmp_path):
    pinned = card["calibration"]["after"]
    report_path = tmp_path / "report.json"
    # The command as a user types it, in this process (as tests/cli/test_eval_command.py runs it): a process of its
    # own would import torch and timm again for each model, ~8 CPU-s.
    assert main(["-q", "eval", model_name, "--data", str(shared_data), "--out", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert (report["n_real"], report["n_fake"]) == (pinned["n_real"], pinned["n_fake"])
    for key in ("auc", "log_loss", "ece"):
        assert report[key] == pytest.approx(pinned[key], abs=1e-3), key


@pytest.fixture(scope="module")
def detections() -> dict:
    """Faces found once for every bundled model of the same crop geometry (``evaluate_files``): only the classifier
    differs between them, so each model's records are still the served ones."""
    return {}


def test_the_shared_labelled_files_keep_their_verdicts(model_name, card, shared_data, detections):
    pinned = card["shared_files"]
    report = evaluate_files(Predictor(model_name, ScoringConfig(frames=pinned["frames"])), shared_data / "labels.csv",
                            detections)
    got = {f["path"]: (f["verdict"], f["score"]) for f in report["files"]}
    assert set(got) == {f["path"] for f in pinned["files"]}
    for f in pinned["files"]:
        verdict, score = got[f["path"]]
        assert verdict == f["verdict"], f["path"]
        assert score == pytest.approx(f["score"], abs=0.03), f["path"]
