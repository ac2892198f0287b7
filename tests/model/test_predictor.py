"""The predictor with a tiny random model: plumbing, records, ONNX parity, tracks."""

import cv2
import numpy as np
import pytest
from unmask.model.backends import OnnxBackend, TorchBackend, export_onnx
from unmask.model.checkpoint import load_checkpoint
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))


@pytest.fixture(scope="module")
def onnx_predictor(tiny_checkpoint, predictor):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="onnx"), detector=predictor.detector)


def test_onnx_export_matches_torch_logits(tiny_checkpoint, tmp_path):
    model, info = load_checkpoint(tiny_checkpoint)
    path = export_onnx(model, info.config.input_size, tmp_path / "m.onnx")
    batch = np.random.default_rng(0).standard_normal((5, 3, 224, 224)).astype(np.float32)
    assert np.abs(TorchBackend(model, "cpu")(batch) - OnnxBackend(path)(batch)).max() < 1e-3


def test_both_backends_give_the_same_scores_within_1e3(predictor, onnx_predictor, shared_data):
    frame = shared_data / "frames" / "dfdc_fake_mqzvfufzoq_fr0.jpg"
    a, b = predictor.predict(frame, on_error="record"), onnx_predictor.predict(frame, on_error="record")
    assert abs(a.score - b.score) < 1e-3
    assert onnx_predictor.backend.name == "onnx" and predictor.backend.name == "torch"


def test_tta_averages_identity_and_flip(predictor, tiny_checkpoint, random_crops):
    crops = random_crops
    plain = Predictor(tiny_checkpoint, ScoringConfig(backend="torch", tta=["identity"]), detector=predictor.detector).classify(crops)
    flipped = Predictor(tiny_checkpoint, ScoringConfig(backend="torch", tta=["hflip"]), detector=predictor.detector).classify(crops)
    both = predictor.classify(crops)
    assert np.allclose(both, (plain + flipped) / 2, atol=1e-6)
    assert not np.allclose(plain, flipped)  # the flip really changes the input
    mirrored = predictor.classify([c[:, ::-1].copy() for c in crops])
    assert np.allclose(both, mirrored, atol=1e-5)  # flip-TTA is flip invariant


def test_unknown_tta_is_refused(tiny_checkpoint):
    with pytest.raises(ValueError, match="unknown or empty TTA"):
        Predictor(tiny_checkpoint, ScoringConfig(backend="torch", tta=["rotate"]))


def test_image_record(predictor, shared_data):
    result = predictor.predict(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg", on_error="record").to_dict()
    assert result["status"] == "ok" and result["media"] == "image"
    assert 0.0 <= result["score"] <= 1.0 and result["label"] in ("real", "fake")
    (frame,) = result["frames"]
    (face,) = frame["faces"]
    assert frame["time"] == 0.0 and frame["score"] == face["score"]
    assert len(face["landmarks"]) == 5 and face["detection"] > 0.9
    assert result["tracks"][0]["score"] == face["score"]
    assert set(result["timings_ms"]) == {"decode", "detect", "provenance", "classify", "total"}
    assert result["model"]["name"] == "tiny-random"


def test_no_face_has_no_score(predictor, no_face_image):
    result = predictor.predict(no_face_image, on_error="record")
    assert result.status == "no_face" and result.score is None and result.label is None
    assert len(result.frames) == 1 and result.frames[0].faces == []


def test_bad_files_become_error_records(predictor, bad_files):
    kinds = {name: predictor.predict(path, on_error="record") for name, path in bad_files.items()}
    assert kinds["text"].error.type == "unsupported_media"
    assert kinds["empty"].error.type == "corrupt_media"
    assert kinds["truncated_jpeg"].error.type == "corrupt_media"
    assert kinds["truncated_video"].error.type == "corrupt_media"
    assert all(r.status == "error" and r.score is None for r in kinds.values())


def test_video_record_has_times_and_tracks(predictor, shared_data):
    result = predictor.predict(shared_data / "clips" / "ffpp_real_004.mp4", on_error="record")
    assert result.status == "ok" and result.media == "video"
    times = [f.time for f in result.frames]
    assert len(times) == 32 and times == sorted(times) and times[-1] > 10
    assert result.tracks and result.tracks[0].frames >= 28
    assert result.score == max(t.score for t in result.tracks if t.counted)


@pytest.mark.slow
def test_two_copies_of_a_face_side_by_side_give_two_tracks(predictor, shared_data, tmp_path):
    src = cv2.VideoCapture(str(shared_data / "clips" / "ffpp_real_004.mp4"))
    out_path = tmp_path / "twins.mp4"
    writer = None
    for _ in range(60):
        ok, frame = src.read()
        assert ok
        frame = cv2.resize(frame, (640, 360))
        double = np.hstack([frame, frame])
        if writer is None:
            writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), 25, double.shape[1::-1])
        writer.write(double)
    writer.release()
    result = predictor.predict(out_path, on_error="record")
    assert result.status == "ok"
    assert len(result.tracks) == 2
    assert all(t.frames >= 28 for t in result.tracks)
    left, right = sorted(result.frames[0].faces, key=lambda face: face.box[0])
    assert left.box[2] < 640 <= right.box[0]


def test_score_many_keeps_order_and_survives_bad_files(predictor, shared_data, bad_files, no_face_image):
    from unmask.model.pipeline import score_many

    paths = [shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg", bad_files["text"], no_face_image, bad_files["truncated_video"]]
    results = list(score_many(predictor, paths))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert [r.status for r in results] == ["ok", "error", "no_face", "error"]
    single = predictor.predict(paths[0], on_error="record")
    assert results[0].score == single.score


def test_score_many_stops_cleanly_when_the_caller_stops(predictor, shared_data):
    from unmask.model.pipeline import score_many

    frames = sorted((shared_data / "frames").glob("*.jpg")) * 3
    stream = score_many(predictor, frames, prefetch=1)
    assert next(stream).status == "ok"
    stream.close()  # the producer thread must not hang on its full queue


def test_sampling_by_frame_rate(tiny_checkpoint, predictor, shared_data):
    by_fps = Predictor(tiny_checkpoint, ScoringConfig(backend="torch", sample_fps=1.0), detector=predictor.detector)
    result = by_fps.predict(shared_data / "clips" / "ffpp_real_004.mp4", on_error="record")  # 12.4 s at 25 fps
    assert len(result.frames) == 12
    gaps = {round(b.time - a.time, 2) for a, b in zip(result.frames, result.frames[1:])}
    assert gaps == {1.0}


def test_a_rarely_seen_track_is_reported_but_does_not_set_the_verdict(predictor):
    from unmask.model.faces import DetectedFace

    def face(x):
        return DetectedFace(np.array([x, 100, x + 100, 200]), 0.99, np.zeros((5, 2)))

    kept = [(i, i * 0.5, [face(100)] + ([face(600)] if i == 3 else [])) for i in range(8)]
    scores = np.array([0.2] * 4 + [0.9] + [0.2] * 4)  # the passer-by in frame 3 scores 0.9
    from unmask.model.predictor import Prepared

    prepared = Prepared("clip.mp4", "video", predictor.config, 0.0, frames=kept)
    result = predictor._assemble(prepared, kept, scores)
    main, passer = result.tracks
    assert (main.frames, main.counted) == (8, True) and (passer.frames, passer.counted) == (1, False)
    assert result.score == pytest.approx(0.2) and passer.score == pytest.approx(0.9)


def test_predict_takes_a_path_bytes_an_array_or_frames(predictor, shared_data):
    from unmask.model.media import read_image

    path = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    by_path = predictor.predict(path)
    by_bytes = predictor.predict(path.read_bytes(), "upload.jpg")
    image = read_image(path).image
    by_array = predictor.predict(image, "array")
    by_frames = predictor.predict([read_image(path)], "frames")
    assert by_bytes.path == "upload.jpg" and by_bytes.media == "image" and by_frames.media == "video"
    assert by_path.score == by_bytes.score == by_array.score == by_frames.score


def test_video_bytes_are_scored_like_the_file(predictor, shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    a, b = predictor.predict(clip, frames=4), predictor.predict(clip.read_bytes(), "clip.mp4", frames=4)
    assert a.score == b.score and len(b.frames) == 4


def test_per_request_options_are_used_and_recorded(predictor, shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    result = predictor.predict(clip, frames=6, aggregation="max")
    assert len(result.frames) == 6 and result.aggregation == "max"
    assert result.options == {"frames": 6, "sample_fps": None, "aggregation": "max", "explain": False, "early_stop": False,
                              "min_face_px": 0, "adaptive_tta": False, "uncertain_margin": None}
    assert predictor.config.frames == ScoringConfig().frames  # the predictor's own config is untouched
    with pytest.raises(ValueError, match="cannot be set per request"):
        predictor.predict(clip, backend="onnx")
    with pytest.raises(ValueError, match="unknown aggregation"):
        predictor.predict(clip, aggregation="median")


def test_predict_raises_media_errors_unless_asked_for_a_record(predictor, bad_files):
    from unmask.model.errors import UnsupportedMediaError

    with pytest.raises(UnsupportedMediaError):
        predictor.predict(bad_files["text"])
    assert predictor.predict(bad_files["text"], on_error="record").error.type == "unsupported_media"


def test_temperature_is_applied_the_same_by_torch_and_onnx(tiny_checkpoint, tmp_path, predictor, random_crops):
    """A checkpoint with temperature 2: both backends give sigmoid(logit / 2), averaged over TTA."""
    import json
    import shutil

    from unmask.model.tta import tta_probability

    stem = tmp_path / "warm"
    shutil.copy(tiny_checkpoint, stem.with_suffix(".safetensors"))
    meta = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    meta["config"]["temperature"] = 2.0
    stem.with_suffix(".json").write_text(json.dumps(meta))
    warm_torch = Predictor(stem, ScoringConfig(backend="torch"), detector=predictor.detector)
    warm_onnx = Predictor(stem, ScoringConfig(backend="onnx"), detector=predictor.detector)
    batch = warm_torch.preprocess(random_crops)
    logits = np.stack([warm_torch.backend(batch), warm_torch.backend(np.ascontiguousarray(batch[..., ::-1]))])
    expected = tta_probability(logits, 2.0)
    assert np.allclose(warm_torch.classify(random_crops), expected, atol=1e-6)
    assert np.allclose(warm_onnx.classify(random_crops), expected, atol=1e-4)
    assert not np.allclose(predictor.classify(random_crops), expected, atol=1e-4)  # temperature 1 differs


def test_the_uncertain_band_comes_from_the_checkpoint_and_a_request_or_the_server_switches_it_off(
        predictor, tiny_checkpoint, shared_data, tmp_path):
    """(A request's margin on a checkpoint without a band: tests/service/test_api.py.)"""
    import dataclasses
    import shutil

    from unmask.model.checkpoint import read_info, update_metadata

    banded = tmp_path / "banded"
    shutil.copy(tiny_checkpoint, banded.with_suffix(".safetensors"))
    shutil.copy(tiny_checkpoint.with_suffix(".json"), banded.with_suffix(".json"))
    config = dataclasses.replace(read_info(banded).config, uncertain_band=(0.0, 1.0), uncertain_level=0.7)
    update_metadata(banded, config.to_dict())
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    with_band = Predictor(banded, ScoringConfig(backend="torch"), detector=predictor.detector)
    own = with_band.predict(frame)
    assert own.uncertain_band == [0.0, 1.0] and own.confidence == "low" and own.verdict == "uncertain"
    off = with_band.predict(frame, uncertain_margin=0)
    assert off.uncertain_band is None and off.confidence == "high" and off.options["uncertain_margin"] == 0
    assert (off.label, off.score) == (own.label, own.score)  # the band never moves the score or the label
    served_off = Predictor(banded, ScoringConfig(backend="torch", uncertain_margin=0), detector=predictor.detector)
    assert served_off.predict(frame).confidence == "high"  # the server's setting (UNMASK_UNCERTAIN_MARGIN=0)


def test_the_onnx_cache_keeps_one_export_per_input_size(tmp_path, monkeypatch):
    import onnxruntime
    import torch
    from unmask.model.backends import cached_onnx

    monkeypatch.setenv("UNMASK_CACHE_DIR", str(tmp_path / "cache"))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    weights = tmp_path / "same.safetensors"
    weights.write_bytes(b"the same weights for both sizes")
    small, large = cached_onnx(model, weights, 32), cached_onnx(model, weights, 64)
    assert small != large  # before: the 64 px checkpoint was handed the 32 px export
    shapes = [onnxruntime.InferenceSession(str(p)).get_inputs()[0].shape[2:] for p in (small, large)]
    assert shapes == [[32, 32], [64, 64]]
    assert cached_onnx(model, weights, 32) == small  # and each is reused
