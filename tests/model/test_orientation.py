"""Files turned without rotation metadata: found by a turned search, boxes mapped back to the file's pixels."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from unmask.model.config import ScoringConfig
from unmask.model.faces import DetectedFace
from unmask.model.orientation import face_back, points_back, turn_image
from unmask.model.predictor import Predictor


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_points_in_a_turned_image_map_back_to_the_same_pixel(turn):
    image = np.zeros((60, 100, 3), np.uint8)
    image[10, 70] = 255  # row 10, column 70
    turned = turn_image(image, turn)
    y, x = (int(v[0]) for v in np.nonzero(turned[..., 0]))
    back = points_back(np.array([[x + 0.5, y + 0.5]], np.float32), turn, 60, 100)  # the pixel's centre
    assert back[0] == pytest.approx([70.5, 10.5])


def test_a_box_maps_back_as_a_box():
    face = DetectedFace([10, 20, 30, 60], 0.99, [[15, 30]] * 5)
    back = face_back(face, 180, 100, 200)
    assert back.box.tolist() == [170, 40, 190, 80] and back.probability == 0.99
    assert face_back(face, 0, 100, 200) is face


def _copy(clip: Path, out: Path, turn: bool) -> None:
    """The clip re-encoded near losslessly, turned 180 degrees or not, with no rotation metadata (as a bad re-encode leaves it)."""
    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        stream_in = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=round(stream_in.average_rate))
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in src.decode(stream_in):
            rgb = frame.to_ndarray(format="rgb24")
            dst.mux(stream.encode(av.VideoFrame.from_ndarray(cv2.rotate(rgb, cv2.ROTATE_180) if turn else rgb, format="rgb24")))
        dst.mux(stream.encode())


@pytest.mark.e2e
@pytest.mark.slow
def test_an_upside_down_real_clip_gets_the_upright_verdict(shared_data, tmp_path):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    upright_copy, upside_down = tmp_path / "upright.mp4", tmp_path / "upside_down.mp4"
    _copy(clip, upright_copy, turn=False)
    _copy(clip, upside_down, turn=True)
    predictor = Predictor("default", ScoringConfig(frames=8))
    turned = predictor.predict(upside_down)
    assert turned.status == "ok" and turned.label == "real"
    # without the turned search MTCNN finds the upside-down face (less sure) and the classifier scores it upside down
    never_turned = Predictor("default", ScoringConfig(frames=8, turn_probe_frames=0)).predict(upside_down)
    assert abs(never_turned.score - turned.score) > 0.05
    # the boxes are where the face is in the file as it plays: the upright clip's boxes turned by 180 degrees
    with av.open(str(upside_down)) as c:
        width, height = c.streams.video[0].width, c.streams.video[0].height
    upright = predictor.predict(upright_copy)
    # same verdict; the scores differ a little because the encoder compressed the turned frames differently
    assert upright.label == turned.label and turned.score == pytest.approx(upright.score, abs=0.1)
    assert [f.index for f in turned.frames] == [f.index for f in upright.frames]
    x1, y1, x2, y2 = turned.frames[0].faces[0].box
    u1, v1, u2, v2 = upright.frames[0].faces[0].box
    assert [x1, y1, x2, y2] == pytest.approx([width - u2, height - v2, width - u1, height - v1], abs=12)
