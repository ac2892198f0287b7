"""``unmask eval``: finds the shared data from any working directory and shows progress on stderr (issue 13)."""

import json

from unmask.cli.main import main


def test_eval_from_another_folder_with_a_progress_bar(tmp_path, monkeypatch, capsys, shared_data):
    monkeypatch.chdir(tmp_path)  # not the checkout: the data is found beside it
    monkeypatch.delenv("UNMASK_SHARED_DATA", raising=False)
    out = tmp_path / "report.json"
    assert main(["eval", "default", "--limit", "4", "--batch-size", "4", "--workers", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["name"] == "lite0-dfdc-sbi" and "dfdc_faces" in report["split"]
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
