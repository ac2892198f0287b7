"""Each dataset reader on a small fake tree in tmp that mirrors the real layout."""

import json

import pytest
from unmask.training.readers import DatasetLayoutError, list_readers, read_dataset


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_ffpp(tmp_path):
    for vid in ("000", "003", "071"):
        _touch(tmp_path / f"original_sequences/youtube/c23/videos/{vid}.mp4")
    _touch(tmp_path / "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")
    _touch(tmp_path / "manipulated_sequences/Face2Face/c23/videos/003_000.mp4")
    _touch(tmp_path / "manipulated_sequences/Deepfakes/c40/videos/071_000.mp4")  # other compression
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits/train.json").write_text(json.dumps([["000", "003"]]))
    (tmp_path / "splits/test.json").write_text(json.dumps([["071", "054"]]))
    samples = {s.path.name: s for s in read_dataset("ffpp", tmp_path)}
    assert set(samples) == {"000.mp4", "003.mp4", "071.mp4", "000_003.mp4", "003_000.mp4"}
    assert samples["000_003.mp4"].label == 1 and samples["000_003.mp4"].manipulation == "Deepfakes"
    assert samples["003_000.mp4"].group == "003" and samples["003_000.mp4"].split == "train"
    assert samples["071.mp4"].split == "test" and samples["071.mp4"].label == 0
    with pytest.raises(DatasetLayoutError, match="FaceForensics"):
        read_dataset("ffpp", tmp_path, compression="c0")


def test_dfdc(tmp_path):
    part = tmp_path / "dfdc_train_part_0"
    part.mkdir()
    (part / "metadata.json").write_text(json.dumps({
        "aaa.mp4": {"label": "FAKE", "split": "train", "original": "bbb.mp4"},
        "bbb.mp4": {"label": "REAL", "split": "train", "original": None},
    }))
    samples = {s.path.name: s for s in read_dataset("dfdc", tmp_path)}
    assert samples["aaa.mp4"].label == 1 and samples["aaa.mp4"].group == "bbb"
    assert samples["bbb.mp4"].label == 0 and samples["bbb.mp4"].group == "bbb"
    assert samples["aaa.mp4"].path == part / "aaa.mp4"


def test_celebdf(tmp_path):
    _touch(tmp_path / "Celeb-real/id0_0000.mp4")
    _touch(tmp_path / "YouTube-real/00170.mp4")
    _touch(tmp_path / "Celeb-synthesis/id0_id1_0000.mp4")
    _touch(tmp_path / "Celeb-synthesis/id2_id1_0001.mp4")
    (tmp_path / "List_of_testing_videos.txt").write_text("1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    samples = {s.path.name: s for s in read_dataset("celebdf", tmp_path)}
    assert samples["id0_id1_0000.mp4"].split == "test" and samples["id0_id1_0000.mp4"].label == 1
    assert samples["id2_id1_0001.mp4"].split == "train" and samples["id2_id1_0001.mp4"].group == "id2"
    assert samples["00170.mp4"].split == "test" and samples["00170.mp4"].label == 0


def test_csv_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("path,label,group,split\na.jpg,fake,g1,train\n/abs/b.mp4,0,,\n")
    a, b = read_dataset("csv", tmp_path / "m.csv")
    assert (a.path, a.label, a.group, a.split) == (tmp_path / "a.jpg", 1, "g1", "train")
    assert (str(b.path), b.label, b.group) == ("/abs/b.mp4", 0, "/abs/b.mp4")
    (tmp_path / "bad.csv").write_text("path,label\nx.jpg,maybe\n")
    with pytest.raises(DatasetLayoutError, match="bad.csv:2"):
        read_dataset("csv", tmp_path / "bad.csv")


def test_csv_manifest_from_a_spreadsheet_or_not_text(tmp_path):
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbfpath,label\r\na.jpg,real\r\n")  # UTF-8 with BOM, CRLF
    (a,) = read_dataset("csv", tmp_path / "excel.csv")
    assert (a.path, a.label) == (tmp_path / "a.jpg", 0)
    (tmp_path / "binary.csv").write_bytes(b"path,label\n\xff\xfe\x00garbage\n")
    with pytest.raises(DatasetLayoutError, match="not a UTF-8 CSV"):
        read_dataset("csv", tmp_path / "binary.csv")


def test_shared_labels_csv_reads_as_a_manifest(shared_data):
    samples = read_dataset("csv", shared_data / "labels.csv")
    assert len(samples) == 13 and sum(s.label for s in samples) == 8
    assert all(s.path.is_file() for s in samples)


def test_unknown_kind():
    assert list_readers() == ["celebdf", "csv", "dfdc", "ffpp"]
    with pytest.raises(ValueError, match="unknown dataset reader"):
        read_dataset("nope", ".")
