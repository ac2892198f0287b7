import pytest
from unmask.model.aggregation import confident, get_strategy, list_strategies


def test_mean_and_max():
    assert get_strategy("mean")([0.2, 0.4]) == pytest.approx(0.3)
    assert get_strategy("max")([0.2, 0.4]) == pytest.approx(0.4)


def test_confident_averages_confident_fakes_when_many():
    scores = [0.9] * 5 + [0.1] * 5  # 50% confidently fake > 40%
    assert confident(scores) == pytest.approx(0.9)


def test_confident_averages_confident_reals_when_nearly_all():
    scores = [0.1] * 19 + [0.5]  # 95% confidently real
    assert confident(scores) == pytest.approx(0.1)


def test_confident_falls_back_to_mean():
    scores = [0.9] * 3 + [0.5] * 7  # 30% fakes: not enough
    assert confident(scores) == pytest.approx((2.7 + 3.5) / 10)


def test_unknown_and_empty():
    assert set(list_strategies()) == {"mean", "max", "confident"}
    with pytest.raises(ValueError, match="unknown aggregation"):
        get_strategy("median")
    with pytest.raises(ValueError, match="nothing to aggregate"):
        confident([])
