"""`unmask extract` on two shared clips: crops, manifest, resume."""

import csv
import json
import shutil

import cv2
import pytest
from unmask.cli.main import main
from unmask.training.readers import read_csv_manifest


def _rows(out):
    with (out / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _crop_files(out):
    return {str(p.relative_to(out)) for p in (out / "crops").rglob("*.jpg")}


def test_extract_two_clips_then_resume(shared_data, tiny_checkpoint, tmp_path, capsys):
    clips = [shared_data / "clips" / "ffpp_real_004.mp4", shared_data / "clips" / "dfdc_fake_yhffcuhhjy.mp4"]
    out = tmp_path / "faces"
    args = ["-q", "extract", *map(str, clips), "--out", str(out), "--frames", "4", "--model", str(tiny_checkpoint), "--label", "fake"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["sources"] == 2 and first["crops"] >= 8 and first["failed"] == 0
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == first["crops"]
    assert {r["source"] for r in rows} == {str(c) for c in clips}
    crop = cv2.imread(str(out / rows[0]["path"]))
    assert crop.shape == (224, 224, 3)
    assert len(read_csv_manifest(out / "manifest.csv")) == len(rows)  # training reads it as written

    assert main(args) == 0  # resume: nothing left to do
    second = json.loads(capsys.readouterr().out)
    assert second["sources"] == 0 and second["skipped"] == 2
    assert len(list(csv.DictReader((out / "manifest.csv").open()))) == len(rows)


def test_extract_reports_a_bad_file(bad_files, tiny_checkpoint, tmp_path, capsys):
    code = main(["-q", "extract", str(bad_files["text"]), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)])
    assert code == 1
    assert json.loads(capsys.readouterr().out)["failed"] == 1


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--frames", "0"], "frames must be at least 1, not 0"),  # was: every frame of the video
     (["--frames", "-3"], "frames must be at least 1, not -3"),  # was: a misleading decode error, marked done
     (["--workers", "0"], "workers must be at least 1, not 0"),  # was: quietly 1
     (["--label", "banana"], "label must be real, fake, 0 or 1, not 'banana'")],  # was: written, refused by training
)
def test_a_bad_value_is_a_one_line_usage_error(option, message, shared_data, tmp_path, capsys):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    assert main(["-q", "extract", str(frame), "--out", str(tmp_path / "o"), *option]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"unmask: error: {message}"]
    assert not (tmp_path / "o").exists()


def test_a_failed_source_is_tried_again_on_rerun(bad_files, shared_data, tiny_checkpoint, tmp_path, capsys):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    args = ["-q", "extract", str(bad_files["text"]), str(frame), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)]
    assert main(args) == 1
    assert json.loads(capsys.readouterr().out)["failed"] == 1
    assert main(args) == 1  # was: the bad file was marked done, so this said "skipped": 2 and exit 0
    second = json.loads(capsys.readouterr().out)
    assert (second["sources"], second["skipped"], second["failed"]) == (1, 1, 1)
    assert (tmp_path / "o" / "done.txt").read_text().splitlines() == [str(frame.resolve())]


def test_crop_folders_never_collide_and_resume_maps_to_the_same_folder(shared_data, tiny_checkpoint, tmp_path, capsys):
    real, fake = (shared_data / "frames" / f"dfdc_{k}_fr0.jpg" for k in ("real_lynaeydofd", "fake_mqzvfufzoq"))
    for path, frame in {"c1/x/f.jpg": real, "c2/x/f.jpg": fake, "a b/x.jpg": real, "a_b/x.jpg": fake}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(frame, tmp_path / path)
    out = tmp_path / "out"
    args = ["-q", "extract", *(str(tmp_path / d) for d in ("c1", "c2", "a b", "a_b")), "--out", str(out), "--model", str(tiny_checkpoint)]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["sources"] == 4
    rows = _rows(out)
    folders = {r["source"]: r["path"].rsplit("/", 1)[0] for r in rows}
    assert len(folders) == 4 and len(set(folders.values())) == 4  # was: c1/c2 (and "a b"/a_b) shared one folder
    assert _crop_files(out) == {r["path"] for r in rows}
    first = {r["source"]: cv2.imread(str(out / r["path"])) for r in rows}
    assert (first[str(tmp_path / "c1/x/f.jpg")] != first[str(tmp_path / "c2/x/f.jpg")]).any()  # was: both the second face

    # A run killed after a source's rows but before its done.txt line: the rerun drops those rows
    # and writes them again, into the same folder, once.
    done = (out / "done.txt").read_text().splitlines()
    (out / "done.txt").write_text("\n".join(done[:-1]) + "\n")
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["sources"], again["skipped"]) == (1, 3)
    assert sorted(r["path"] for r in _rows(out)) == sorted(r["path"] for r in rows)


def test_the_same_file_is_extracted_once_however_it_is_named(shared_data, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    (tmp_path / "d").mkdir()
    shutil.copy(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg", tmp_path / "d" / "f.jpg")
    monkeypatch.chdir(tmp_path)
    args = ["-q", "extract", "d", "d/f.jpg", str(tmp_path / "d" / "f.jpg"), "d/../d/f.jpg", "--out", "o", "--model", str(tiny_checkpoint)]
    assert main(args) == 0
    counts = json.loads(capsys.readouterr().out)
    rows = _rows(tmp_path / "o")
    assert counts["sources"] == 1 and len(rows) == counts["crops"] >= 1  # was: 4 sources, the same rows 4 times
    assert {r["source"] for r in rows} == {str(tmp_path / "d" / "f.jpg")}
    assert main(["-q", "extract", "./d/f.jpg", "--out", "o", "--model", str(tiny_checkpoint)]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 1


def test_ctrl_c_leaves_no_crops_the_manifest_does_not_list(shared_data, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    frames = [shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg", shared_data / "frames" / "dfdc_fake_mqzvfufzoq_fr0.jpg"]
    out = tmp_path / "o"
    args = ["-q", "extract", *map(str, frames), "--out", str(out), "--model", str(tiny_checkpoint)]
    imwrite, written = cv2.imwrite, []

    def write_then_interrupt(*a, **k):  # Ctrl-C just after the second source's first crop is on disk
        written.append(imwrite(*a, **k))
        if len(written) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cv2, "imwrite", write_then_interrupt)
    assert main(args) == 130
    assert capsys.readouterr().err.strip() == "unmask: interrupted; rerun to resume"
    rows = _rows(out)
    assert {r["source"] for r in rows} == {str(frames[0])}
    assert _crop_files(out) == {r["path"] for r in rows}  # was: the second source's crop, in no manifest

    monkeypatch.setattr(cv2, "imwrite", imwrite)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 1
    rows = _rows(out)
    assert {r["source"] for r in rows} == set(map(str, frames))
    assert _crop_files(out) == {r["path"] for r in rows}
