import pytest
from unmask.model.results import FaceResult, FrameResult, MediaResult
from unmask.training.file_eval import file_score


def _face(score, track):
    return FaceResult(box=[0, 0, 10, 10], detection=1.0, landmarks=[[0, 0]] * 5, score=score, track=track)


def test_file_score_is_max_over_tracks_of_the_strategy():
    frames = [FrameResult(i, i * 0.5, [_face(0.1, 0), _face(s, 1)]) for i, s in enumerate([0.9, 0.9, 0.3, 0.9])]
    result = MediaResult(path="x", media="video", status="ok", score=0.5, frames=frames)
    assert file_score(result, "mean") == pytest.approx(0.75)  # track 1's mean beats track 0's 0.1
    assert file_score(result, "max") == pytest.approx(0.9)
    assert file_score(result, "confident") == pytest.approx(0.9)  # 3 of 4 confidently fake


def test_no_score_without_faces():
    assert file_score(MediaResult(path="x", media="image", status="no_face"), "mean") is None
