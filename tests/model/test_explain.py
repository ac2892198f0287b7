"""Grad-CAM heat maps (explain): present only when asked, shape, range, which faces; on a real model, faithful."""

import numpy as np
import pytest
import torch
from unmask.model.config import ScoringConfig
from unmask.model.explain import decode_heatmap, encode_heatmap, gradcam, pick_faces
from unmask.model.predictor import Predictor
from unmask.model.results import FaceResult, FrameResult, MediaResult, TrackResult

FAKE_FRAME = "frames/dfdc_fake_mqzvfufzoq_fr0.jpg"
FAKE_CLIP = "clips/dfdc_fake_brtujopkby.mp4"


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))


def _check_maps(result, size: int) -> list[np.ndarray]:
    maps = [decode_heatmap(e.heatmap) for e in result.explanations]
    for explanation, heatmap in zip(result.explanations, maps):
        assert explanation.method == "gradcam"
        assert heatmap.shape == (size, size)
        assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
        assert heatmap.max() == 1.0 and heatmap.std() > 0.01  # scaled per face, and not flat
        x1, y1, x2, y2 = explanation.crop
        assert x2 - x1 == pytest.approx(y2 - y1, abs=0.2)  # the square crop the model saw
        bx1, by1, bx2, by2 = result.frames[explanation.frame].faces[explanation.face].box
        assert x1 < (bx1 + bx2) / 2 < x2 and y1 < (by1 + by2) / 2 < y2
    return maps


def test_heat_maps_only_when_asked(predictor, shared_data):
    frame = shared_data / FAKE_FRAME
    plain = predictor.predict(frame)
    assert plain.explanations is None and "explain" not in plain.timings_ms
    explained = predictor.predict(frame, explain=True)
    assert len(explained.explanations) == 1 and explained.timings_ms["explain"] > 0
    assert explained.score == plain.score  # explaining never changes a score
    _check_maps(explained, 224)
    again = MediaResult.from_dict(explained.to_dict())
    assert again.explanations == explained.explanations


def test_no_face_gets_an_empty_list(predictor, no_face_image):
    result = predictor.predict(no_face_image, explain=True)
    assert result.status == "no_face" and result.explanations == []


@pytest.mark.slow
def test_at_most_explain_faces_from_counted_tracks(tiny_checkpoint, predictor, shared_data):
    two = Predictor(tiny_checkpoint, ScoringConfig(backend="torch", explain_faces=2), detector=predictor.detector)
    result = two.predict(shared_data / FAKE_CLIP, frames=4, explain=True)
    assert len(result.explanations) == 2
    counted = {t.id for t in result.tracks if t.counted}
    assert all(result.frames[e.frame].faces[e.face].track in counted for e in result.explanations)
    _check_maps(result, 224)


def test_gradcam_leaves_the_model_as_it_was(predictor, random_crops):
    model = predictor.torch_model
    flags = [p.requires_grad for p in model.parameters()]
    maps = gradcam(model, predictor.preprocess(random_crops))
    assert maps.shape == (3, 224, 224) and maps.dtype == np.float32
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())  # gradients went through the input, not the weights
    with torch.inference_mode():  # and it still scores as before
        assert np.allclose(predictor.classify(random_crops), predictor.classify(random_crops))


def test_heatmap_png_round_trip():
    heatmap = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    assert np.abs(decode_heatmap(encode_heatmap(heatmap)) - heatmap).max() <= 0.5 / 255 + 1e-6


def _face(score, track):
    return FaceResult(box=[0, 0, 10, 10], detection=0.99, landmarks=[], score=score, track=track)


def test_pick_faces_round_robin_over_counted_tracks_best_first():
    frames = [
        FrameResult(0, 0.0, [_face(0.9, 0), _face(0.6, 1), _face(0.99, 2)]),
        FrameResult(1, 0.1, [_face(0.95, 0), _face(0.7, 1)]),
        FrameResult(2, 0.2, [_face(0.8, 0)]),
    ]
    tracks = [TrackResult(0, 0.9, 3, 0.0, 0.2), TrackResult(1, 0.65, 2, 0.0, 0.1), TrackResult(2, 0.99, 1, 0.0, 0.0, counted=False)]
    assert pick_faces(frames, tracks, 4) == [(1, 0), (1, 1), (0, 0), (0, 1)]
    assert pick_faces(frames, tracks, 1) == [(1, 0)]
    assert pick_faces(frames, tracks, 0) == []


@pytest.mark.e2e
@pytest.mark.slow
def test_on_real_fakes_the_hot_regions_carry_the_fake_score(shared_data):
    """Faithfulness: greying the hottest fifth of a crop lowers its score more than greying the coldest fifth."""
    predictor = Predictor("default")
    drops = []
    for source in (FAKE_FRAME, FAKE_CLIP):
        prepared = predictor.prepare(shared_data / source, frames=8, explain=True)
        result = predictor.finish(prepared)
        assert result.label == "fake"
        maps = _check_maps(result, predictor.model_config.input_size)
        first_crop = np.cumsum([0] + [len(f.faces) for f in result.frames])
        for explanation, heatmap in zip(result.explanations, maps):
            crop = prepared.crops[first_crop[explanation.frame] + explanation.face]
            hot, cold = crop.copy(), crop.copy()
            hot[heatmap >= np.quantile(heatmap, 0.8)] = 128
            cold[heatmap <= np.quantile(heatmap, 0.2)] = 128
            hot_score, cold_score = predictor.classify([hot, cold])
            drops.append(cold_score - hot_score)
    assert len(drops) == 5
    assert np.mean(drops) > 0.02, drops
