import math

import numpy as np
import pytest
from unmask.training import metrics


def test_auc_known_cases():
    y = [0, 0, 1, 1]
    assert metrics.roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert metrics.roc_auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    # pairs (pos, neg): (0.4 vs 0.1, 0.35) win, win; (0.8 vs 0.1, 0.35) win, win -> but here one tie:
    # pos 0.35 vs neg 0.1 win, vs neg 0.35 tie; pos 0.8 beats both -> (1 + 0.5 + 1 + 1) / 4
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.35, 0.35, 0.8]) == pytest.approx(0.875)
    # hand-computed: pos {0.4, 0.7}, neg {0.5, 0.2, 0.1}: 0.4 beats 2, 0.7 beats 3 -> 5/6
    assert metrics.roc_auc([1, 0, 1, 0, 0], [0.4, 0.5, 0.7, 0.2, 0.1]) == pytest.approx(5 / 6)
    assert math.isnan(metrics.roc_auc([1, 1], [0.2, 0.3]))


def test_log_loss_and_accuracy():
    assert metrics.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert metrics.log_loss([1, 0], [0.9, 0.2]) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    assert metrics.accuracy([1, 0, 1, 0], [0.6, 0.4, 0.4, 0.5]) == 0.5


def test_average_precision_and_eer():
    y = [1, 0, 1, 0, 0]
    s = [0.4, 0.5, 0.7, 0.2, 0.1]
    # ranking: 0.7(+) P=1 R=.5, 0.5(-), 0.4(+) P=2/3 R=1 -> AP = .5*1 + .5*2/3
    assert metrics.average_precision(y, s) == pytest.approx(0.5 + 1 / 3)
    assert metrics.average_precision([0, 1], [0.1, 0.9]) == 1.0
    assert metrics.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert metrics.eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 1.0
    rng = np.random.default_rng(0)
    assert metrics.eer(rng.integers(0, 2, 4000), rng.random(4000)) == pytest.approx(0.5, abs=0.03)


def test_bad_input():
    with pytest.raises(ValueError):
        metrics.roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError):
        metrics.roc_auc([0, 2], [0.1, 0.2])
