"""``unmask eval``'s video figures use the service's own verdict rule (model.aggregation), not a plain mean."""

import numpy as np
import pytest
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.training.datasets import FaceRecord
from unmask.training.evaluate import video_scores


@pytest.mark.parametrize("aggregation", ["confident", "mean", "max"])
def test_a_video_scored_by_eval_equals_the_served_track_score(tiny_checkpoint, shared_data, aggregation):
    # the served path: one person over 8 frames of a shared clip, scored by the service's predictor
    result = Predictor(tiny_checkpoint, ScoringConfig(frames=8, aggregation=aggregation, backend="torch")).predict(
        shared_data / "clips" / "ffpp_real_519.mp4")
    track = max(result.tracks, key=lambda t: t.frames)
    faces = [face.score for frame in result.frames for face in frame.faces if face.track == track.id]
    # the same face scores as eval sees them: one crop per frame of one video
    records = [FaceRecord(f"crop{i}.jpg", 0, "g", "real", video="clip") for i in range(len(faces))]
    _, scores = video_scores(records, np.array(faces), aggregation)
    assert scores[0] == pytest.approx(track.score, abs=1e-4)  # the record rounds scores to 4 places


def test_the_served_rule_is_not_the_plain_mean():
    probs = np.array([0.9, 0.95, 0.85, 0.3])  # three of four confidently fake
    records = [FaceRecord(f"{i}.jpg", 1, "g", "fake", video="v") for i in range(4)]
    confident, mean = video_scores(records, probs)[1][0], video_scores(records, probs, "mean")[1][0]
    assert confident == pytest.approx(0.9) and mean == pytest.approx(0.75)
