"""``unmask score --save DIR [--explain] [--save-video]``: the pictures written per file, at the input's size."""

import json

import av
import cv2
import numpy as np
import pytest
from unmask.cli.evidence import annotate, heatmap_caption, score_color
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
            "--save", str(folder / "pictures"), "--explain", "--no-save-video"]  # the MP4 has its own test
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
    heat = _png(folder / f"{name}.heatmap-1.png")[..., ::-1]
    assert heat.shape[0] > 224 and heat.shape[1] > 448  # the crop beside its heat map, a scale to the right, a caption below
    assert (heat[224:] < 100).any()  # the caption's text


def test_a_heat_map_has_a_colour_scale_from_most_at_the_top_to_least_below(saved):
    records, folder = saved
    heat = _png(folder / f"{FRAME.split('/')[1]}.heatmap-1.png")[:224, 448:, ::-1]
    bar = [x for x in range(heat.shape[1]) if (heat[:, x] != 255).any(axis=1).all()]  # coloured top to bottom: the bar
    assert len(bar) >= 8
    column = heat[:, bar[len(bar) // 2]].astype(int)
    jet = cv2.applyColorMap(np.arange(256, dtype=np.uint8), cv2.COLORMAP_JET).reshape(-1, 3)[:, ::-1].astype(int)  # value -> RGB
    values = np.abs(column[:, None] - jet[None]).sum(axis=2).argmin(axis=1)  # each row's colour read back as a value
    assert values[0] >= 250 and values[-1] <= 5
    assert (np.diff(values) <= 0).all()  # 1 (most) at the top down to 0 (least): never back up


def test_the_caption_gives_the_face_score_and_reads_right_for_a_real_verdict():
    real, fake = heatmap_caption(0.12, 0.5), heatmap_caption(0.91, 0.5)
    assert real[0] == "this face scored 0.12: real (threshold 0.5)"
    assert fake[0] == "this face scored 0.91: fake (threshold 0.5)"
    assert real[1:] == fake[1:] and "not a verdict" in real[-1]  # the colours rank regions whatever the verdict


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


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, shared_data):
    """The first 40 frames of the real clip at 640x360, 25 fps: a video worth drawing that encodes in a moment."""
    capture = cv2.VideoCapture(str(shared_data / CLIP))
    path = tmp_path_factory.mktemp("clip") / "short.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 360))
    for _ in range(40):
        ok, frame = capture.read()
        assert ok
        writer.write(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA))
    writer.release()
    capture.release()
    return path


def test_save_video_writes_an_h264_mp4_with_boxes_and_a_timeline(tiny_checkpoint, short_clip, tmp_path, capsys):
    folder = tmp_path / "pictures"
    args = ["score", str(short_clip), "--model", str(tiny_checkpoint), "--frames", "4", "--format", "jsonl", "--no-progress",
            "--save", str(folder)]  # an annotated MP4 of each video is part of --save
    assert main(args) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert f"pictures saved to {folder} (1 annotated video: *.annotated.mp4)" in err
    with av.open(str(folder / "short.mp4.annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt, float(stream.average_rate)) == ("h264", "yuv420p", 25.0)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(frames) == 40  # samples at 5, 15, 25, 35: the record covers the whole clip
    height, width = frames[0].shape[:2]
    assert width == 640 and height > 360 and height % 2 == 0  # the clip at its size (under 720 px), a timeline below
    sampled = next(f for f in record["frames"] if f["faces"])
    (face,) = sampled["faces"]
    x1, y1, x2, y2 = (round(v) for v in face["box"])
    for index in (sampled["index"], sampled["index"] + 1):  # the sampled frame, and the next one holding its box
        edge = frames[index][y1 : y1 + 2, (x1 + x2) // 2 - 5 : (x1 + x2) // 2 + 5].reshape(-1, 3).astype(int)
        assert np.abs(np.median(edge, axis=0) - score_color(face["score"])).max() <= 40, edge
    # The playhead, the timeline's only white column (score colours keep a dark channel), runs from left to right.
    first, last = (np.flatnonzero(f[360:].min(axis=2).mean(axis=0) > 150) for f in (frames[0], frames[-1]))
    assert len(first) and len(last) and first.max() < 640 / 40 and last.min() > 640 * 38 / 40


def test_save_video_without_save_is_a_usage_error(short_clip, capsys):
    assert main(["score", str(short_clip), "--save-video"]) == 2
    assert "--save-video needs --save DIR" in capsys.readouterr().err
