"""ScoringConfig: validation, per-request options, and every scoring default stated once."""

import re
from pathlib import Path

import pytest
from unmask.model.config import ScoringConfig

REPO = Path(__file__).resolve().parents[2]
# A scoring default written as a literal anywhere but model/config.py would drift from it.
DEFAULT_LITERALS = {
    "frames 32": r"\bframes\b[^\n]{0,40}?(=|default=)\s*32\b",
    "aggregation confident": r"\baggregation\b[^\n]{0,40}?(=|default=)\s*\"confident\"",
    "min track fraction": r"min_track_fraction[^\n]{0,20}?=\s*0\.25",
    "detection copy side": r"\b960\b",
    "max pixels": r"50_000_000",
}


def test_scoring_defaults_appear_once_in_the_code():
    sources = [p for folder in ("model", "training", "service", "cli") for p in (REPO / folder).rglob("*.py")]
    config = REPO / "model" / "config.py"
    for what, pattern in DEFAULT_LITERALS.items():
        places = [f"{p.relative_to(REPO)}:{n}" for p in sources for n, line in enumerate(p.read_text().splitlines(), 1)
                  if re.search(pattern, line) and not line.lstrip().startswith("#")]
        assert places and all(place.startswith("model/config.py:") for place in places), (what, places)
    assert config.is_file()


def test_bad_values_fail_with_a_message():
    for kwargs, message in [({"frames": 0}, "frames must be at least 1"), ({"aggregation": "median"}, "unknown aggregation"),
                            ({"backend": "tensorrt"}, "unknown backend"), ({"device": "tpu"}, "unknown device"),
                            ({"sample_fps": -1.0}, "sample_fps must be positive")]:
        with pytest.raises(ValueError, match=message):
            ScoringConfig(**kwargs)


def test_with_options_changes_only_per_request_fields():
    base = ScoringConfig()
    assert base.with_options() is base and base.with_options(frames=None) is base
    changed = base.with_options(frames=8, aggregation="max", explain=True)
    assert (changed.frames, changed.aggregation, changed.explain) == (8, "max", True)
    assert changed.backend == base.backend
    with pytest.raises(ValueError, match="cannot be set per request"):
        base.with_options(device="cpu")
