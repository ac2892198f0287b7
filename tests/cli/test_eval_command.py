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
