"""The speed shortcuts (early stopping, the smallest face searched, adaptive TTA): each switch and what the record says."""

import copy
import dataclasses

import cv2
import numpy as np
import pytest
from unmask.model.aggregation import verdict_is_clear
from unmask.model.config import ScoringConfig
from unmask.model.media import Frame
from unmask.model.predictor import Predictor
from unmask.model.tta import adaptive_probability, near_threshold, tta_probability


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))


@pytest.fixture(scope="module")
def face_video(shared_data) -> list[Frame]:
    """16 frames of one face (the real DFDC frame at 640x360, shifted a little each frame)."""
    image = cv2.cvtColor(cv2.imread(str(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg")), cv2.COLOR_BGR2RGB)
    small = cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA)
    return [Frame(i * 10, i / 3, np.ascontiguousarray(np.roll(small, i, axis=1))) for i in range(16)]


def test_a_verdict_is_clear_when_every_counted_track_is_past_the_margin():
    assert verdict_is_clear([0.95, 0.02], 0.5, 0.3)
    assert not verdict_is_clear([0.95, 0.6], 0.5, 0.3)  # one track close to the threshold: go on
    assert verdict_is_clear([0.8], 0.5, 0.3) and not verdict_is_clear([0.79], 0.5, 0.3)
    assert not verdict_is_clear([], 0.5, 0.0)  # no face yet: one may come later


def test_adaptive_probability_flips_only_near_the_threshold():
    logits = np.array([[4.0, 0.1, -3.0], [0.0, -0.3, 5.0]])  # (views, faces)
    near = near_threshold(logits[0], 1.0, 0.5, 0.3)
    assert near.tolist() == [False, True, False]  # sigmoid: 0.98, 0.52, 0.05
    served = adaptive_probability(logits, 1.0, 0.5, 0.3)
    assert served[1] == pytest.approx(tta_probability(logits[:, 1:2], 1.0)[0])
    assert served[[0, 2]] == pytest.approx(tta_probability(logits[:1, [0, 2]], 1.0))
    assert adaptive_probability(logits, 1.0, 0.5, 1.0) == pytest.approx(tta_probability(logits, 1.0))


def test_adaptive_tta_in_the_predictor_matches_the_rule_and_runs_fewer_views(predictor, random_crops):
    crops = random_crops * 2  # 6 crops
    full, full_views = predictor._classify(crops, band=None)
    plain_logits = predictor.backend(predictor.preprocess(crops)).reshape(-1)
    plain = tta_probability(plain_logits[None], predictor.model_config.temperature)
    assert np.allclose(predictor._classify(crops, band=1.0)[0], full, atol=1e-6)  # band 1: every face flipped
    scores, views = predictor._classify(crops, band=0.0)  # band 0: none
    assert np.allclose(scores, plain, atol=1e-6) and views == len(crops) and full_views == 2 * len(crops)
    # A band between: each face gets what adaptive_probability (eval's rule) says.
    band = float(np.median(np.abs(plain - 0.5)))
    scores, views = predictor._classify(crops, band=band)
    near = near_threshold(plain_logits, predictor.model_config.temperature, 0.5, band)
    assert 0 < near.sum() < len(crops) and views == len(crops) + int(near.sum())
    assert np.allclose(scores[near], full[near], atol=1e-6) and np.allclose(scores[~near], plain[~near], atol=1e-6)


def with_config(predictor, **fields) -> Predictor:
    """The predictor (model, detector, locks shared) with other settings."""
    other = copy.copy(predictor)
    other.config = dataclasses.replace(predictor.config, **fields)
    return other


def test_the_record_says_which_shortcuts_were_taken(predictor, face_video):
    full = predictor.predict(face_video, "clip.mp4")
    assert full.status == "ok" and full.options["early_stop"] is False and full.options["adaptive_tta"] is False
    assert full.work.frames_sampled == 16 and full.work.frames_scored == 16 and full.work.stopped == "all_frames"
    assert full.work.views == 2 * full.work.faces

    stopped = with_config(predictor, early_stop_frames=4, early_stop_margin=0.0).predict(face_video, "clip.mp4", early_stop=True)
    assert stopped.options["early_stop"] is True
    assert stopped.work.stopped == "clear_verdict" and stopped.work.frames_scored == 4
    assert [f.index for f in stopped.frames] == [0, 40, 80, 120]  # the first pass: every 4th sampled frame
    by_index = {f.index: f for f in full.frames}
    assert all(f.faces[0].score == by_index[f.index].faces[0].score for f in stopped.frames)  # the same faces, scored alike

    unclear = with_config(predictor, early_stop_frames=4, early_stop_margin=1.0).predict(face_video, "clip.mp4", early_stop=True)
    assert unclear.work.stopped == "all_frames" and unclear.work.frames_scored == 16
    assert unclear.score == full.score and [f.score for f in unclear.frames] == [f.score for f in full.frames]

    adaptive = with_config(predictor, adaptive_tta_band=0.0).predict(face_video, "clip.mp4", adaptive_tta=True)
    assert adaptive.options["adaptive_tta"] is True and adaptive.work.views == adaptive.work.faces


def test_the_smallest_face_is_set_in_the_files_pixels(predictor, face_video):
    detector = predictor.detector
    assert detector.smallest_face(0.5, 0) == detector.min_face  # off: the copy's own floor
    assert detector.smallest_face(0.5, 50) == detector.min_face  # 50 px at half size: finer than the floor
    assert detector.smallest_face(1.0, 50) == 50.0
    image = face_video[0].image
    assert predictor.predict(image, min_face_px=40).status == "ok"  # the face is ~75 px tall here
    skipped = predictor.predict(image, min_face_px=300)
    assert skipped.status == "no_face" and skipped.options["min_face_px"] == 300
