"""Detection on fewer pixels: exact region MTCNN, and following faces through a shared clip."""

import numpy as np
import pytest
import torch
from facenet_pytorch.models.utils.detect_face import detect_face, imresample
from unmask.model.config import ScoringConfig
from unmask.model.face_tracking import FaceFollower
from unmask.model.faces import FaceDetector
from unmask.model.media import read_video
from unmask.model.mtcnn_regions import area_window, detect_in_regions, integral_image, pyramid_scales
from unmask.model.tracker import box_iou


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def clip_frames(shared_data):
    """12 sampled frames of a 1080p DFDC clip (one person, moving)."""
    return [f.image for f in read_video(shared_data / "clips" / "dfdc_real_lynaeydofd.mp4", frames=12)]


def test_area_window_equals_torch_area_resampling(clip_frames, detector):
    small, _ = detector.downscale(clip_frames[0])
    height, width = small.shape[:2]
    image = torch.from_numpy(small.copy()).unsqueeze(0).permute(0, 3, 1, 2).float()
    integral = integral_image(small[100:400, 200:700])
    for scale in pyramid_scales(height, width, 30, 0.709):
        size = (int(height * scale + 1), int(width * scale + 1))
        level = imresample(image, size)[0].numpy()
        rows = (int(110 * scale) + 1, int(380 * scale))
        cols = (int(210 * scale) + 1, int(680 * scale))
        if rows[1] <= rows[0] or cols[1] <= cols[0]:
            continue
        window = area_window(integral, (height, width), size, rows, cols, origin=(200, 100))
        assert np.array_equal(window, level[:, rows[0] : rows[1], cols[0] : cols[1]])  # bit for bit


@pytest.mark.slow
def test_regions_find_what_the_full_pass_finds(clip_frames, detector):
    """Boxes and landmarks from a region around the face equal the full-frame pass's."""
    mtcnn = detector._mtcnn
    for image in clip_frames[:4]:
        small, _ = detector.downscale(image)
        with torch.inference_mode():
            (full,), (full_points,) = detect_face(small[None].copy(), 30, mtcnn.pnet, mtcnn.rnet, mtcnn.onet,
                                                  mtcnn.thresholds, mtcnn.factor, mtcnn.device)
        full = np.asarray(full, dtype=np.float32)
        assert len(full) == 1
        x1, y1, x2, y2 = full[0, :4].astype(int)
        side = max(x2 - x1, y2 - y1)
        region = (max(0, x1 - side), max(0, y1 - side), min(small.shape[1], x2 + side), min(small.shape[0], y2 + side))
        with torch.inference_mode():
            boxes, points = detect_in_regions(mtcnn, small, [region], 30)
        assert boxes.shape == (1, 5)
        np.testing.assert_allclose(boxes, full, atol=1e-3)
        np.testing.assert_allclose(points, np.asarray(full_points, dtype=np.float32).reshape(-1, 5, 2), atol=1e-3)


@pytest.mark.slow
def test_following_finds_the_face_on_every_frame_with_few_full_passes(clip_frames, detector):
    follower = FaceFollower(detector, ScoringConfig(detect_every=8))
    found = [follower.find(image) for image in clip_frames]
    assert all(len(faces) == 1 for faces in found)  # a face on every frame
    assert follower.searches["full"] == 2 and follower.searches["region"] == 10  # frames 0 and 8 in full
    for image, faces in zip(clip_frames, found):
        full = detector.detect(image)
        assert box_iou(faces[0].box, full[0].box) > 0.99  # the full pass's box


def test_a_face_not_found_again_sends_the_frame_to_a_full_pass(clip_frames, detector):
    follower = FaceFollower(detector, ScoringConfig(detect_every=8))
    follower.find(clip_frames[0])
    blank = np.zeros_like(clip_frames[1])  # the face is gone (a cut to black)
    assert follower.find(blank) == []
    assert follower.searches["lost"] == 1 and follower.searches["full"] == 2
    assert len(follower.find(clip_frames[2])) == 1  # someone was missing: a full pass finds the face again
    assert follower.searches["full"] == 3


def test_every_frame_in_full_when_detect_every_is_one(clip_frames, detector):
    follower = FaceFollower(detector, ScoringConfig(detect_every=1))
    for image in clip_frames[:3]:
        follower.find(image)
    assert follower.searches == {"full": 3}


@pytest.mark.parametrize("field, value", [("detect_every", 0), ("track_margin", -1.0), ("region_min_face", 1.0), ("decode_ahead", -1)])
def test_bad_tracking_knobs_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        ScoringConfig(**{field: value})


@pytest.mark.slow
def test_a_clip_scored_with_regions_gives_the_record_of_full_detection(tiny_checkpoint, shared_data):
    """On a one-person clip the predictor's record (boxes, face scores, file score) is the same with and without regions.

    (A newcomer is found at the next full pass: bench/score_video.py measures that recall.)
    """
    from unmask.model.predictor import Predictor

    clip = shared_data / "clips" / "ffpp_real_634.mp4"
    fast = Predictor(tiny_checkpoint, ScoringConfig(device="cpu", frames=8))
    full = Predictor(tiny_checkpoint, ScoringConfig(device="cpu", frames=8, detect_every=1, decode_ahead=0), detector=fast.detector)
    prepared = fast.prepare(clip)
    assert prepared.searches["region"] >= 6  # the regions did the work
    a, b = fast.finish(prepared), full.predict(clip)
    assert [len(f.faces) for f in a.frames] == [len(f.faces) for f in b.frames] and all(len(f.faces) for f in a.frames)
    for fa, fb in zip(a.frames, b.frames):
        for x, y in zip(fa.faces, fb.faces):
            assert x.box == y.box and x.score == pytest.approx(y.score, abs=1e-4)
    assert a.score == pytest.approx(b.score, abs=1e-4)


@pytest.mark.slow
def test_fast_mtcnn_finds_what_facenet_pytorch_finds(shared_data):
    """unmask's full pass (integral-image pyramid and crops, channels-last nets) against
    facenet-pytorch's detect_face, on frames of clips of three sizes: same boxes and points."""
    fast, shipped = FaceDetector(ScoringConfig()), FaceDetector(ScoringConfig(fast_mtcnn=False))
    assert fast._mtcnn.rnet.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    found = 0
    for name in ("dfdc_real_lynaeydofd.mp4", "ffpp_real_004.mp4", "ffpp_real_519.mp4"):
        for frame in read_video(shared_data / "clips" / name, frames=3):
            a, b = fast.detect(frame.image), shipped.detect(frame.image)
            assert len(a) == len(b)
            for x, y in zip(a, b):
                np.testing.assert_allclose(x.box, y.box, atol=0.01)
                np.testing.assert_allclose(x.landmarks, y.landmarks, atol=0.01)
                assert x.probability == pytest.approx(y.probability, abs=1e-5)
            found += len(a)
    assert found >= 9


@pytest.mark.slow
def test_a_region_skips_the_levels_for_faces_far_smaller_than_its_own(clip_frames, detector):
    """region_min_face: the followed face is still found, with the full pass's box; a floor
    above the face's size skips the levels that find it."""
    small, _ = detector.downscale(clip_frames[0])
    full = detector.detect_scaled(small, 1.0)
    assert len(full) == 1
    x1, y1, x2, y2 = full[0].box
    side = max(x2 - x1, y2 - y1)
    region = [(max(0, int(x1 - side)), max(0, int(y1 - side)), min(small.shape[1], int(x2 + side)), min(small.shape[0], int(y2 + side)))]
    floored = detector.detect_regions(small, 1.0, region, [0.5 * full[0].size])
    assert len(floored) == 1
    np.testing.assert_allclose(floored[0].box, full[0].box, atol=1e-3)
    assert detector.detect_regions(small, 1.0, region, [3.0 * full[0].size]) == []
