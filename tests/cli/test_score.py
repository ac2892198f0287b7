"""Batch scoring from the CLI: one line per file, resume, CSV, and the Ray Data engine."""

import csv
import json

import pytest
from unmask.cli.main import main
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory, shared_data, bad_files):
    """Frames, a clip, two DFDC crops and a bad file: the kinds of files a batch meets."""
    folder = tmp_path_factory.mktemp("batch")
    picks = ["frames/dfdc_real_lynaeydofd_fr0.jpg", "frames/dfdc_fake_mqzvfufzoq_fr0.jpg", "clips/ffpp_real_004.mp4"]
    crops = sorted((shared_data / "dfdc_faces" / "faces").glob("*.jpg"))[:2]
    for src in [shared_data / p for p in picks] + crops:
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "broken.jpg").write_bytes(bad_files["truncated_jpeg"].read_bytes())
    return folder


def test_batch_writes_one_line_per_file_and_resumes(batch_dir, tiny_checkpoint, tmp_path):
    out = tmp_path / "results.jsonl"
    args = ["-q", "score", str(batch_dir), "--out", str(out), "--model", str(tiny_checkpoint), "--frames", "8", "--no-progress"]
    assert main(args) == 1  # the broken file is reported, the run goes on
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6
    assert {r["status"] for r in records} >= {"ok", "error"}
    out.write_text(out.read_text() + '{"path": "half-writ')  # a run killed mid-line
    assert main(args) == 1  # only the broken file is tried again, and it fails again: the exit code still says so
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert again[:5] == [r for r in records if r["status"] != "error"]
    assert [(r["path"], r["status"]) for r in again[5:]] == [(r["path"], r["status"]) for r in records if r["status"] == "error"]


def test_a_rerun_scores_files_that_failed_before(tmp_path, tiny_checkpoint, shared_data, bad_files):
    """Before, an error record counted as done: a rerun skipped the file (even once it was fixed) and exited 0."""
    folder, out = tmp_path / "in", tmp_path / "results.csv"
    folder.mkdir()
    good = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    (folder / "a.jpg").write_bytes(good.read_bytes())
    (folder / "b.jpg").write_bytes(bad_files["truncated_jpeg"].read_bytes())
    args = ["-q", "score", str(folder), "--out", str(out), "--model", str(tiny_checkpoint), "--no-progress"]
    assert main(args) == 1
    (folder / "b.jpg").write_bytes(good.read_bytes())  # the fault has passed
    assert main(args) == 0
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["path"], r["status"]) for r in rows] == [(str(folder / "a.jpg"), "ok"), (str(folder / "b.jpg"), "ok")]


def test_batch_resume_scores_only_new_files(batch_dir, tiny_checkpoint, tmp_path, shared_data):
    out = tmp_path / "results.csv"
    first = [str(batch_dir / "dfdc_real_lynaeydofd_fr0.jpg")]
    base = ["-q", "score", "--out", str(out), "--model", str(tiny_checkpoint), "--no-progress"]
    assert main(base[:2] + first + base[2:]) == 0
    assert main(base[:2] + [str(batch_dir / "dfdc_real_lynaeydofd_fr0.jpg"), str(batch_dir / "dfdc_fake_mqzvfufzoq_fr0.jpg")] + base[2:]) == 0
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == first + [str(batch_dir / "dfdc_fake_mqzvfufzoq_fr0.jpg")]
    assert all(r["status"] == "ok" and 0 <= float(r["score"]) <= 1 for r in rows)


@pytest.mark.slow
def test_ray_data_engine_gives_the_same_records(batch_dir, tiny_checkpoint, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray.jsonl"
    args = ["-q", "score", str(batch_dir), "--out", str(out), "--model", str(tiny_checkpoint), "--frames", "8",
            "--engine", "ray", "--actors", "2", "--no-progress"]
    assert main(args) == 1
    records = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(records) == 6
    local = Predictor(tiny_checkpoint, ScoringConfig(frames=8))
    for path, record in records.items():
        expected = local.predict(path, on_error="record")
        assert record["status"] == expected.status
        if expected.score is not None:
            assert record["score"] == pytest.approx(expected.score, abs=1e-4)


def test_the_table_escapes_control_characters_in_file_names(tiny_checkpoint, tmp_path, shared_data, capsys):
    frame = (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes()
    for name in ("new\nline.jpg", "esc\x1b[31mred.jpg"):
        (tmp_path / name).write_bytes(frame)
    assert main(["-q", "score", str(tmp_path), "--format", "table", "--model", str(tiny_checkpoint), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "\x1b" not in "".join(lines)  # the header and one line a file
    assert lines[1].endswith("esc\\x1b[31mred.jpg") and lines[2].endswith("new\\x0aline.jpg")


def test_a_run_ends_with_one_summary_line_and_the_table_counts_persons(tiny_checkpoint, shared_data, tmp_path, capsys):
    frames = [shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg", shared_data / "frames" / "dfdc_fake_mqzvfufzoq_fr0.jpg"]
    (tmp_path / "notes.jpg").write_text("not an image")
    save = tmp_path / "pictures"
    code = main(["score", *map(str, frames), str(tmp_path / "notes.jpg"), "--format", "table", "--model", str(tiny_checkpoint),
                 "--no-progress", "--save", str(save)])
    out, err = capsys.readouterr()
    assert code == 1  # one file could not be scored
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["status", "label", "score", "persons", "faces", "ms"]
    assert [row.split()[3] for row in rows if row.startswith("ok")] == ["1", "1"]  # one person in each frame
    labels = [row.split()[1] for row in rows if row.startswith("ok")]
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("3 files: ") and summary.endswith(" s") and "1 error" in summary
    assert all(f"{labels.count(k)} {k}" in summary for k in set(labels))
    assert f"pictures saved to {save}" in err and any(save.iterdir())


def test_the_table_has_a_short_provenance_column(capsys):
    from unmask.cli.records import RecordWriter
    from unmask.model.results import MediaResult, Provenance

    cases = [("-", None), ("-", Provenance(present=False)), ("c2pa valid", Provenance(True, "valid")),
             ("c2pa AI-generated", Provenance(True, "trusted", ai_content="generated")),
             ("c2pa invalid", Provenance(True, "invalid", ai_content="generated")),  # a broken seal proves nothing it says
             ("c2pa malformed", Provenance(True, "malformed"))]
    with RecordWriter(None, "table") as writer:
        for i, (_, provenance) in enumerate(cases):
            writer.write(MediaResult(path=f"f{i}.jpg", media="image", status="no_face", provenance=provenance))
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[-2:] == ["provenance", "path"]
    assert [row[header.index("provenance"):header.index("path")].strip() for row in rows] == [cell for cell, _ in cases]

def test_a_score_in_the_uncertain_band_reads_uncertain_in_the_table_and_the_summary(tiny_checkpoint, shared_data, capsys):
    frame = str(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg")
    common = ["score", frame, "--model", str(tiny_checkpoint), "--no-progress"]
    assert main([*common, "--format", "table", "--uncertain-margin", "0.5"]) == 0  # the whole [0, 1]: every score
    out, err = capsys.readouterr()
    header, row = out.splitlines()
    assert header.split()[:3] == ["status", "label", "score"] and row.split()[:2] == ["ok", "uncertain"]
    assert err.strip().splitlines()[-1].startswith("1 files: 1 uncertain in ")
    assert main([*common, "--format", "csv", "--uncertain-margin", "0"]) == 0  # switched off
    (row,) = csv.DictReader(capsys.readouterr().out.splitlines())
    assert row["confidence"] == "high" and row["label"] in ("fake", "real")


def test_a_csv_written_before_the_confidence_column_resumes_aligned(tmp_path):
    from unmask.cli.records import RecordWriter
    from unmask.model.results import CSV_FIELDS, MediaResult

    older = [f for f in CSV_FIELDS if f != "confidence"]
    out = tmp_path / "results.csv"
    with out.open("w", newline="") as fh:
        csv.DictWriter(fh, older).writeheader()
    with RecordWriter(out, "csv", append=True) as writer:
        writer.write(MediaResult(path="x.jpg", media="image", status="ok", score=0.52, threshold=0.5,
                                 uncertain_band=[0.45, 0.55]))
    (row,) = csv.DictReader(out.open(newline=""))
    assert list(row) == older and row["label"] == "fake" and row["score"] == "0.5200"


def test_at_a_terminal_the_shared_clips_get_a_progress_bar_plain_notices_and_the_summary(tiny_checkpoint, shared_data):
    """Run as a person runs it: stdout and stderr a terminal (a pty), no --out."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios
    from pathlib import Path

    clips = sorted((shared_data / "clips").glob("*.mp4"))
    assert len(clips) == 11
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a terminal has a size
    unmask = str(Path(sys.executable).with_name("unmask"))
    proc = subprocess.Popen([unmask, "score", *map(str, clips), "--model", str(tiny_checkpoint), "--frames", "2"],
                            stdin=follower, stdout=follower, stderr=follower, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                            close_fds=True)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=300) == 0
    os.close(leader)
    text = seen.decode(errors="replace")
    assert "11/11 [" in text and ("file/s" in text or "s/file" in text)  # tqdm's bar: files done of 11, and the rate
    assert "status   label" in text and all(clip.name in text for clip in clips)  # the table, a line a clip
    assert "11 files: " in text.splitlines()[-1]
    assert " INFO " not in text  # notices are plain at a terminal, not log lines
