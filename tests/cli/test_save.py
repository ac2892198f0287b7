"""``unmask score --save DIR [--explain]``: the pictures written per file, at the input's size."""

import json

import cv2
import numpy as np
import pytest
from unmask.cli.evidence import annotate, score_color
from unmask.cli.main import main
from unmask.model.results import FaceResult, FrameResult

FRAME = "frames/dfdc_fake_mqzvfufzoq_fr0.jpg"
CLIP = "clips/ffpp_real_004.mp4"


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_checkpoint, shared_data, no_face_image):
    """One run over an image, a clip and a no-face image with --explain; returns (records by name, folder)."""
    folder = tmp_path_factory.mktemp("save")
    out = folder / "records.jsonl"
    paths = [str(shared_data / FRAME), str(shared_data / CLIP), str(no_face_image)]
    args = ["-q", "score", *paths, "--model", str(tiny_checkpoint), "--frames", "4", "--out", str(out), "--no-progress",
            "--save", str(folder / "pictures"), "--explain"]
    assert main(args) == 0
    records = {r["path"].rsplit("/", 1)[-1]: r for r in map(json.loads, out.read_text().splitlines())}
    return records, folder / "pictures"


def _png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    image = cv2.imread(str(path))
    assert image is not None and image.std() > 1, f"{path} is blank"
    return image


def test_image_gets_an_annotated_copy_at_its_size_and_its_heat_map(saved, shared_data):
    records, folder = saved
    name = FRAME.split("/")[1]
    annotated = _png(folder / f"{name}.annotated.png")
    original = cv2.imread(str(shared_data / FRAME))
    assert annotated.shape == original.shape
    (face,) = records[name]["frames"][0]["faces"]
    x1, y1, x2, y2 = (round(v) for v in face["box"])
    # The box is drawn in the face's score colour; away from it the pixels are the file's.
    edge = annotated[y1, (x1 + x2) // 2][::-1]
    assert np.abs(edge.astype(int) - score_color(face["score"])).max() <= 2
    assert np.array_equal(annotated[-50:, -50:], original[-50:, -50:])
    assert len(records[name]["explanations"]) == 1
    heat = _png(folder / f"{name}.heatmap-1.png")
    assert heat.shape == (224, 448, 3)  # the crop beside its heat map


def test_video_gets_frame_sheet_timeline_and_heat_maps(saved, shared_data):
    records, folder = saved
    name = CLIP.split("/")[1]
    record = records[name]
    capture = cv2.VideoCapture(str(shared_data / CLIP))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
    capture.release()
    assert _png(folder / f"{name}.annotated.png").shape[:2] == size
    sheet = _png(folder / f"{name}.frames.png")
    assert sheet.shape[1] > sheet.shape[0]  # 4 landscape frames side by side
    _png(folder / f"{name}.timeline.png")
    count = len(record["explanations"])
    assert 1 <= count <= 4
    assert sorted(p.name for p in folder.glob(f"{name}.heatmap-*.png")) == [f"{name}.heatmap-{n}.png" for n in range(1, count + 1)]


def test_no_face_image_gets_its_plain_copy_and_nothing_else(saved, no_face_image):
    records, folder = saved
    assert records["no_face.jpg"]["status"] == "no_face"
    assert sorted(p.name for p in folder.glob("no_face.jpg.*")) == ["no_face.jpg.annotated.png"]
    assert _png(folder / "no_face.jpg.annotated.png").shape == cv2.imread(str(no_face_image)).shape


def test_without_explain_no_heat_maps_and_same_names_do_not_collide(tiny_checkpoint, shared_data, tmp_path):
    twin = tmp_path / "other" / FRAME.split("/")[1]
    twin.parent.mkdir()
    twin.write_bytes((shared_data / FRAME).read_bytes())
    args = ["-q", "score", str(shared_data / FRAME), str(twin), "--model", str(tiny_checkpoint), "--format", "jsonl",
            "--save", str(tmp_path / "pictures")]
    assert main(args) == 0
    names = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    assert names == [f"{twin.name}-2.annotated.png", f"{twin.name}.annotated.png"]


def test_label_goes_below_a_box_at_the_top_edge():
    image = np.full((200, 300, 3), 40, np.uint8)
    frame = FrameResult(0, 0.0, [FaceResult(box=[100, 0, 180, 80], detection=0.99, landmarks=[], score=0.9)])
    out = annotate(image, frame, 0.5)
    assert (out[81:100, 100:180] != 40).any()  # the label sits under the box
    assert (out[0, 120] == score_color(0.9)).all()
