"""``unmask eval``: finds the shared data from any working directory and shows progress on stderr (issue 13)."""

import json

from unmask.cli.main import main
from unmask.model.checkpoint import DEFAULT_MODEL


def test_eval_from_another_folder_with_a_progress_bar(tmp_path, monkeypatch, capsys, shared_data):
    monkeypatch.chdir(tmp_path)  # not the checkout: the data is found beside it
    monkeypatch.delenv("UNMASK_SHARED_DATA", raising=False)
    out = tmp_path / "report.json"
    assert main(["eval", "default", "--limit", "4", "--batch-size", "4", "--workers", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["name"] == DEFAULT_MODEL and "dfdc_faces" in report["split"]
    err = capsys.readouterr().err
    assert "eval: 100%" in err and "8/8" in err and "crop" in err


def _strict(text: str):
    """json.loads that refuses NaN and Infinity, as jq and browsers do."""
    return json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(f"{name} is not JSON")))


def test_one_class_gives_null_metrics_and_refuses_calibration(tmp_path, capsys, caplog, shared_data):
    manifest = tmp_path / "reals.csv"
    manifest.write_text(f"path,label\n{shared_data / 'frames' / 'dfdc_real_lynaeydofd_fr0.jpg'},real\n")
    out = tmp_path / "report.json"
    assert main(["-q", "eval", "default", "--manifest", str(manifest), "--workers", "0", "--out", str(out)]) == 0
    report = _strict(out.read_text())
    assert report["auc"] is None and report["eer"] is None and report["tpr_at_fpr_5"] is None
    assert 0 < report["log_loss"] < 10 and report["accuracy"] in (0.0, 1.0)
    assert "only real crops" in caplog.text
    assert main(["-q", "eval", "default", "--manifest", str(manifest), "--workers", "0", "--calibrate", "temperature"]) == 2
    assert "need real and fake crops" in capsys.readouterr().err


def test_degrade_scores_the_crops_after_the_loss_and_refuses_bad_values(tmp_path, capsys, shared_data):
    manifest = tmp_path / "frames.csv"
    manifest.write_text("path,label\n" + "".join(f"{shared_data / 'frames' / name},{label}\n" for name, label in
                                                  [("dfdc_real_lynaeydofd_fr0.jpg", "real"), ("dfdc_fake_mqzvfufzoq_fr0.jpg", "fake")]))
    clean, lossy = tmp_path / "clean.json", tmp_path / "lossy.json"
    common = ["-q", "eval", "default", "--manifest", str(manifest), "--workers", "0"]
    assert main([*common, "--out", str(clean)]) == 0
    assert main([*common, "--degrade", "scale=0.25,jpeg=20", "--out", str(lossy)]) == 0
    before, after = _strict(clean.read_text()), _strict(lossy.read_text())
    assert before["degrade"] == "clean" and after["degrade"] == "scale=0.25,jpeg=20"
    assert after["log_loss"] != before["log_loss"]  # the loss reached the pixels the model saw
    capsys.readouterr()
    assert main([*common, "--degrade", "jpeg=0.5x"]) == 2
    assert "--degrade: jpeg needs a number" in capsys.readouterr().err
    assert main([*common, "--degrade", "jpeg=40", "--as-given"]) == 2
    assert main([*common, "--degrade", "jpeg=40", "--calibrate", "temperature"]) == 2
