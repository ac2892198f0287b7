"""The record's derived verdict fields: label, confidence (the uncertain band) and what a reader shows."""

import pytest
from unmask.model.config import ModelConfig, ScoringConfig
from unmask.model.results import CSV_FIELDS, FaceResult, FrameResult, MediaResult, ModelRef, TrackResult


def _record(score, band, status="ok"):
    frames = [FrameResult(0, 0.0, [FaceResult([0, 0, 10, 10], 0.99, [[1, 1]] * 5, score)])] if score is not None else []
    return MediaResult(path="x.jpg", media="image", status=status, score=score, threshold=0.5, uncertain_band=band,
                       model=ModelRef("m", "1", "lite0"), frames=frames,
                       tracks=[TrackResult(0, score, 1, 0.0, 0.0)] if score is not None else [])


@pytest.mark.parametrize("score,band,label,confidence,verdict", [
    (0.52, [0.45, 0.55], "fake", "low", "uncertain"),
    (0.45, [0.45, 0.55], "real", "low", "uncertain"),  # the band's ends are in it
    (0.55, [0.45, 0.55], "fake", "low", "uncertain"),
    (0.56, [0.45, 0.55], "fake", "high", "fake"),
    (0.2, [0.45, 0.55], "real", "high", "real"),
    (0.5, None, "fake", "high", "fake"),  # no band: every verdict is confident
])
def test_confidence_is_low_inside_the_band_and_the_label_stays(score, band, label, confidence, verdict):
    record = _record(score, band)
    assert (record.label, record.confidence, record.verdict) == (label, confidence, verdict)
    assert record.to_dict()["confidence"] == confidence and record.to_dict()["uncertain_band"] == band
    row = record.to_row()
    assert list(row) == CSV_FIELDS and row["confidence"] == confidence and row["label"] == label


def test_no_score_no_confidence():
    record = _record(None, [0.4, 0.6], status="no_face")
    assert record.label is None and record.confidence is None and record.verdict is None
    assert record.to_row()["confidence"] == ""


def test_the_record_round_trips_and_older_records_read():
    record = _record(0.52, [0.45, 0.55])
    again = MediaResult.from_dict(record.to_dict())
    assert again == record and again.confidence == "low"
    older = {k: v for k, v in record.to_dict().items() if k not in ("confidence", "uncertain_band")}
    assert MediaResult.from_dict(older).confidence == "high"  # written before the band: read, never refused
    forged = record.to_dict() | {"confidence": "high"}  # derived fields are recomputed, not trusted
    assert MediaResult.from_dict(forged).confidence == "low"
    with pytest.raises(ValueError, match="lo <= hi"):
        _record(0.5, [0.6, 0.4])


def test_the_band_a_request_uses():
    config = ModelConfig("lite0", 224, threshold=0.4, uncertain_band=(0.3, 0.55), uncertain_level=0.7)
    assert config.band_for(None) == [0.3, 0.55]  # the checkpoint's own
    assert config.band_for(0) is None  # switched off
    assert config.band_for(0.1) == pytest.approx([0.3, 0.5])  # symmetric around the threshold
    assert config.band_for(0.5) == [0.0, 0.9]  # clipped to [0, 1]
    assert ModelConfig("lite0", 224).band_for(None) is None
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="uncertain_band"):
        ModelConfig("lite0", 224, threshold=0.5, uncertain_band=(0.55, 0.6))  # a band holds the threshold
    with pytest.raises(ValueError, match="uncertain_level"):
        ModelConfig("lite0", 224, uncertain_level=1.5)
    with pytest.raises(ValueError, match="uncertain_margin"):
        ScoringConfig(uncertain_margin=0.6)

