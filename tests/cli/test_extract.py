"""`unmask extract` on two shared clips: crops, manifest, resume."""

import csv
import json

import cv2
from unmask.cli.main import main


def test_extract_two_clips_then_resume(shared_data, tiny_checkpoint, tmp_path, capsys):
    clips = [shared_data / "clips" / "ffpp_real_004.mp4", shared_data / "clips" / "dfdc_fake_yhffcuhhjy.mp4"]
    out = tmp_path / "faces"
    args = ["-q", "extract", *map(str, clips), "--out", str(out), "--frames", "4", "--model", str(tiny_checkpoint), "--label", "x"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["sources"] == 2 and first["crops"] >= 8 and first["failed"] == 0
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == first["crops"]
    assert {r["source"] for r in rows} == {str(c) for c in clips}
    crop = cv2.imread(str(out / rows[0]["path"]))
    assert crop.shape == (224, 224, 3)

    assert main(args) == 0  # resume: nothing left to do
    second = json.loads(capsys.readouterr().out)
    assert second["sources"] == 0 and second["skipped"] == 2
    assert len(list(csv.DictReader((out / "manifest.csv").open()))) == len(rows)


def test_extract_reports_a_bad_file(bad_files, tiny_checkpoint, tmp_path, capsys):
    code = main(["-q", "extract", str(bad_files["text"]), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)])
    assert code == 1
    assert json.loads(capsys.readouterr().out)["failed"] == 1
