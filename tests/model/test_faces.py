"""Real MTCNN on shared data, and the crop geometry the default model expects."""

import csv
import random

import cv2
import numpy as np
import pytest
from unmask.model.config import CropConfig, ScoringConfig
from unmask.model.faces import FaceDetector, crop_box, crop_face
from unmask.model.tracker import box_iou


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def _rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_crop_box_math():
    box = np.array([100, 100, 200, 300], dtype=np.float32)  # 100 x 200
    c = crop_box(box, CropConfig(scale=1.0, shift_y=0.1))
    assert np.allclose(c, [50, 120, 250, 320])


def test_crop_outside_the_image_is_padded_black():
    image = np.full((100, 100, 3), 255, dtype=np.uint8)
    crop = crop_face(image, np.array([0, 0, 50, 50]), CropConfig(scale=2.0, shift_y=0.0), 64)
    assert crop.shape == (64, 64, 3)
    assert crop[0, 0].sum() == 0 and crop[-1, -1].sum() == 255 * 3


def test_one_face_on_each_shared_frame_mapped_to_full_resolution(detector, shared_data):
    for path in sorted((shared_data / "frames").glob("*.jpg")):
        image = _rgb(path)
        faces = detector.detect(image)
        assert len(faces) == 1, path.name
        x1, y1, x2, y2 = faces[0].box
        assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]
        assert x2 - x1 > 150  # a 1080p face: mapped back from the half-size copy
        assert faces[0].probability > 0.99
        lx, ly = faces[0].landmarks[:, 0], faces[0].landmarks[:, 1]
        assert ((lx > x1) & (lx < x2) & (ly > y1) & (ly < y2)).all()


def test_downscaling_maps_boxes_back(detector, shared_data):
    image = _rgb(shared_data / "frames" / "dfdc_fake_mqzvfufzoq_fr0.jpg")
    full = FaceDetector(ScoringConfig(detect_max_side=4000)).detect(image)[0]
    small = detector.detect(image)[0]
    assert box_iou(full.box, small.box) > 0.85


def test_no_face_on_a_faceless_image(detector, no_face_image):
    assert detector.detect(_rgb(no_face_image)) == []


def test_crops_of_mtcnn_boxes_match_the_training_crops(detector, shared_data):
    """The default crop of an MTCNN box reproduces the DFDC crop square.

    Each DFDC crop is padded 20% with black (as docs/crop_geometry.md
    describes) so the true crop square is known; MTCNN runs on the padded
    image and crop_box() must land on that square.
    """
    rows = list(csv.DictReader((shared_data / "dfdc_faces" / "labels.csv").open()))
    random.Random(0).shuffle(rows)
    full_res = FaceDetector(ScoringConfig(detect_max_side=2000, min_face_size=20))
    ious, sides = [], []
    for row in rows[:30]:
        crop = _rgb(shared_data / "dfdc_faces" / row["path"])
        pad = int(0.2 * crop.shape[0])
        padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        faces = full_res.detect(padded)
        if not faces:
            continue
        truth = np.array([pad, pad, pad + crop.shape[1], pad + crop.shape[0]], dtype=np.float32)
        square = crop_box(faces[0].box, CropConfig())
        ious.append(box_iou(square, truth))
        sides.append((square[2] - square[0]) / crop.shape[1])
    assert len(ious) >= 27
    assert np.median(ious) > 0.75
    assert 0.85 < np.median(sides) < 1.1


@pytest.mark.parametrize("shape", [(1, 1), (29, 29), (20, 4000), (4000, 20)])
def test_images_smaller_than_the_smallest_face_have_no_faces(detector, shape):
    """MTCNN's empty pyramid raised (torch.cat of an empty list) on a side under 30 px: now no face."""
    image = np.full((*shape, 3), 128, dtype=np.uint8)
    assert detector.detect(image) == []
    assert FaceDetector(ScoringConfig(fast_mtcnn=False)).detect(image) == []  # facenet-pytorch's own pass too
