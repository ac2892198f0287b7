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


def test_frame_figures_are_the_mean_frame_score_and_the_share_over_the_threshold():
    from unmask.training.file_eval import frame_figures

    frames = [FrameResult(i, i * 0.5, [_face(s, 0)]) for i, s in enumerate([0.2, 0.6, 0.7])] + [FrameResult(3, 1.5, [])]
    result = MediaResult(path="x", media="video", status="ok", score=0.6, threshold=0.5, frames=frames)
    mean, over = frame_figures(result)
    assert mean == pytest.approx(0.5)  # the frame without a face does not count
    assert over == pytest.approx(2 / 3)
    assert frame_figures(MediaResult(path="x", media="image", status="no_face")) == (None, None)


def test_groups_and_the_reenactment_margin_over_the_highest_real_file():
    from unmask.training.file_eval import by_manipulation, manipulation_group, reenactment_margin

    rows = [("real", "", "FF++", 0.30), ("real", "", "DFDC", 0.45), ("fake", "Face2Face", "FF++", 0.55),
            ("fake", "NeuralTextures", "FF++", 0.40), ("fake", "", "DFDC", 0.9), ("fake", "", "DFDC", None)]
    files = [{"group": manipulation_group({"label": lab, "manipulation": man, "dataset": ds}), "frame_mean": m,
              "frames_over": None if m is None else float(m >= 0.5)} for lab, man, ds, m in rows]
    groups = by_manipulation(files)
    assert set(groups) == {"real", "Face2Face", "NeuralTextures", "DFDC"}
    assert groups["real"] == {"files": 2, "frame_mean": 0.375, "lowest": 0.3, "highest": 0.45, "frames_over": 0.0}
    assert groups["DFDC"]["files"] == 1  # a file without a score is left out, not counted as 0.5
    assert reenactment_margin(groups) == {"Face2Face": pytest.approx(0.10), "NeuralTextures": pytest.approx(-0.05)}
