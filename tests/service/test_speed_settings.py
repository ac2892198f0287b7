"""The speed knobs of issue 14 as service settings: defaults from ScoringConfig, UNMASK_* overrides."""

import pytest
from unmask.model.config import ScoringConfig
from unmask.service.core.config import Settings


def test_defaults_are_the_scoring_defaults(tmp_path):
    scoring, defaults = Settings(data_dir=tmp_path).scoring(), ScoringConfig()
    for field in ("detect_every", "region_min_face", "decode_ahead"):
        assert getattr(scoring, field) == getattr(defaults, field)


def test_environment_reaches_the_predictor_config(tmp_path, monkeypatch):
    monkeypatch.setenv("UNMASK_DETECT_EVERY", "4")
    monkeypatch.setenv("UNMASK_REGION_MIN_FACE", "0.3")
    monkeypatch.setenv("UNMASK_DECODE_AHEAD", "0")
    scoring = Settings(data_dir=tmp_path).scoring()
    assert (scoring.detect_every, scoring.region_min_face, scoring.decode_ahead) == (4, 0.3, 0)


def test_bad_values_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("UNMASK_DETECT_EVERY", "0")
    with pytest.raises(ValueError, match="detect_every"):
        Settings(data_dir=tmp_path)
