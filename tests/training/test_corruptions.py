"""``unmask eval --degrade``: fixed quality losses, parsed strictly and applied the same way to every crop."""

import cv2
import numpy as np
import pytest
from unmask.model.config import ModelConfig
from unmask.training.align import variant
from unmask.training.corruptions import Corruption, parse_corruption
from unmask.training.errors import ConfigError


@pytest.fixture
def face():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8), (0, 0), 3)
    return np.ascontiguousarray(img)


def test_parse_spells_each_loss_once():
    assert parse_corruption("jpeg=40, scale=0.5") == Corruption(scale=0.5, jpeg=40)
    assert parse_corruption("scale=0.5,jpeg=40").name == "scale=0.5,jpeg=40"
    assert parse_corruption("").name == parse_corruption("clean").name == "clean"


@pytest.mark.parametrize("text, words", [("jpeg", "KEY=VALUE"), ("sharpen=2", "KEY=VALUE"), ("jpeg=high", "needs a number"),
                                         ("scale=0", "out of range"), ("scale=1.5", "out of range"), ("jpeg=101", "out of range"),
                                         ("noise=-1", "out of range")])
def test_bad_values_are_refused_with_the_reason(text, words):
    with pytest.raises(ConfigError, match=words):
        parse_corruption(text)


def test_half_resolution_stays_small_and_jpeg_changes_pixels(face):
    half = parse_corruption("scale=0.5")(face)
    assert half.shape == (112, 112, 3) and half.dtype == np.uint8
    q40 = parse_corruption("jpeg=40")(face)
    assert q40.shape == face.shape and np.abs(q40.astype(int) - face).mean() > 0.5
    assert np.array_equal(parse_corruption("jpeg=40")(face), q40)  # the same crop, the same loss
    noisy = Corruption(noise=8)
    assert np.array_equal(noisy(face), noisy(face)) and not np.array_equal(noisy(face), face)
    assert np.array_equal(Corruption()(face), face)


def test_each_loss_has_its_own_aligned_cache():
    config = ModelConfig(architecture="lite0", input_size=224)
    assert variant(config) == variant(config, Corruption())
    assert variant(config, parse_corruption("jpeg=40")) != variant(config, parse_corruption("jpeg=70")) != variant(config)
