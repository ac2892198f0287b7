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


def test_ece_brier_and_tpr_at_fpr_by_hand():
    # confidences max(p, 1-p): 0.9, 0.8, 0.6, 0.7 -> bins (15 equal): 0.9 alone, 0.8 alone, 0.6 alone, 0.7 alone
    y = [1, 0, 1, 0]
    p = [0.9, 0.2, 0.4, 0.7]  # right, right, wrong (0.4 < 0.5 for a fake), wrong (0.7 for a real)
    # |acc - conf| per item: |1-0.9|, |1-0.8|, |0-0.6|, |0-0.7| -> mean of 0.1, 0.2, 0.6, 0.7
    assert metrics.expected_calibration_error(y, p) == pytest.approx((0.1 + 0.2 + 0.6 + 0.7) / 4)
    # two items sharing a bin average first: confidences 0.81 and 0.85 (bin 0.8-0.867), one right one wrong
    assert metrics.expected_calibration_error([1, 0], [0.81, 0.85]) == pytest.approx(abs(0.5 - 0.83))
    assert metrics.brier(y, p) == pytest.approx((0.01 + 0.04 + 0.36 + 0.49) / 4)
    # reals 0.1 0.2 0.3 0.9, fakes 0.35 0.8 0.95. No real flagged (FPR 0): only 0.95 is above 0.9 -> 1/3.
    # One real of four flagged (FPR 25%): threshold 0.35 flags the 0.9 real and finds all three fakes.
    labels = [0, 0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.9, 0.35, 0.8, 0.95]
    assert metrics.tpr_at_fpr(labels, scores, 0.0) == pytest.approx(1 / 3)
    assert metrics.tpr_at_fpr(labels, scores, 0.2) == pytest.approx(1 / 3)  # under 25%: still no real may be flagged
    assert metrics.tpr_at_fpr(labels, scores, 0.25) == pytest.approx(1.0)


def test_temperature_fit_recovers_a_known_temperature():
    from unmask.training.calibration import fit_temperature

    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, size=20000)  # over-confident logits ...
    y = (rng.random(20000) < 1 / (1 + np.exp(-z / 2.5))).astype(int)  # ... of a model whose true temperature is 2.5
    assert fit_temperature(y, z) == pytest.approx(2.5, rel=0.05)
    two_passes = np.stack([z, z + rng.normal(0, 0.1, size=z.size)])  # TTA: (n_tta, n)
    assert fit_temperature(y, two_passes) == pytest.approx(2.5, rel=0.06)
    with pytest.raises(ValueError, match="real and fake"):
        fit_temperature(np.ones(5), np.zeros(5))


def test_threshold_for_a_target_false_positive_rate():
    from unmask.training.calibration import threshold_for_fpr

    reals = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    for fpr in (0.0, 0.1, 0.25, 0.5):
        t = threshold_for_fpr(reals, fpr)
        assert (reals >= t).mean() <= fpr
        assert (reals >= np.nextafter(reals[reals < t].max(), 0)).mean() > fpr  # the next lower real would break it


def test_the_uncertain_band_by_hand():
    """Threshold 0.5. Sorted by distance from it, the decisions (fake when >= 0.5) and their non-decreasing fit:

    score   0.48 0.53 0.45 0.56 0.40 0.62 0.30 0.75 0.10 0.95 0.02
    label   fake real real fake fake fake real fake real fake real
    right   0    0    1    1    0    1    1    1    1    1    1
    dist    .02  .03  .05  .06  .10  .12  .20  .25  .40  .45  .48
    fit     0    0    2/3  2/3  2/3  1    1    1    1    1    1     (1, 1, 0 pooled: their mean, 2/3)

    Under 0.7 the fit is last at 0.10: the band is [0.4, 0.6]; under 0.5 or 0.6 last at 0.03: [0.47, 0.53].
    """
    from unmask.training.calibration import fit_uncertain_band, uncertain_band_summary

    scores = [0.48, 0.53, 0.45, 0.56, 0.40, 0.62, 0.30, 0.75, 0.10, 0.95, 0.02]
    labels = [1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 0]
    assert fit_uncertain_band(labels, scores, 0.5) == pytest.approx((0.4, 0.6))  # the default level, 0.7
    assert fit_uncertain_band(labels, scores, 0.5, 1.0) == pytest.approx((0.4, 0.6))
    assert fit_uncertain_band(labels, scores, 0.5, 0.6) == pytest.approx((0.47, 0.53))
    assert fit_uncertain_band(labels, scores, 0.5, 0.5) == pytest.approx((0.47, 0.53))
    summary = uncertain_band_summary(labels, scores, 0.5, 0.7)
    assert summary["band"] == pytest.approx([0.4, 0.6]) and summary["level"] == 0.7 and summary["n"] == 11
    # inside: 0.48, 0.53, 0.45, 0.56, 0.40, of which 0.45 and 0.56 are right; outside every decision is
    assert (summary["n_inside"], summary["accuracy_inside"], summary["accuracy_outside"]) == (5, pytest.approx(0.4), 1.0)
    # right, wrong, right, right moving out: 1 and 0 pool to 1/2, so under 0.6 there is a band, under 0.5 none
    assert fit_uncertain_band([1, 0, 1, 0], [0.51, 0.3, 0.45, 0.2], 0.5, 0.6) == pytest.approx((0.45, 0.55))
    assert fit_uncertain_band([1, 0, 1, 0], [0.51, 0.3, 0.45, 0.2], 0.5, 0.5) is None
    assert uncertain_band_summary([1, 0, 1, 0], [0.51, 0.3, 0.45, 0.2], 0.5, 0.5)["band"] is None
    # samples at one distance share one value: 0.375 (wrong) and 0.625 (right) are 1/2 together, not 0 then 1
    assert fit_uncertain_band([1, 1, 0], [0.375, 0.625, 0.0], 0.5, 0.5) is None
    assert fit_uncertain_band([1, 1, 0], [0.375, 0.625, 0.0], 0.5, 0.6) == (0.375, 0.625)
    # clipped to [0, 1] around a low threshold: 0.3 (real, called fake) is 0.2 away from 0.1: [-0.1, 0.3] -> [0, 0.3]
    assert fit_uncertain_band([0, 1], [0.3, 0.95], 0.1, 0.5) == pytest.approx((0.0, 0.3))
    with pytest.raises(ValueError, match="level"):
        fit_uncertain_band(labels, scores, 0.5, 0.0)
