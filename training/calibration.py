"""Calibration: a temperature for the logits (probabilities), a decision threshold (verdicts) and an uncertain band.

Temperature scaling (Guo et al. 2017) divides every logit by one scalar T
fitted to minimise the log-loss of the served probability
``mean over TTA of sigmoid(logit / T)`` on validation logits. It leaves the
ranking (AUC) unchanged and fixes over- or under-confidence (label
smoothing makes a model under-confident).
"""

from __future__ import annotations

import numpy as np

from ..model.config import UNCERTAIN_LEVEL
from ..model.tta import tta_probability
from .metrics import log_loss

T_RANGE = (0.05, 20.0)  # the range ModelConfig accepts


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> float:
    """The T in ``T_RANGE`` that minimises log-loss; ``logits`` has shape (n_tta, n) (or (n,) for one pass).

    Log-loss is smooth and unimodal in log T here, so a golden-section search
    on log T finds the minimum to 1e-6 without a solver dependency.
    """
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    y = np.asarray(labels, dtype=np.float64)
    if z.shape[1] != y.size or y.size == 0:
        raise ValueError(f"{z.shape[1]} logits for {y.size} labels")
    if y.min() == y.max():
        raise ValueError("temperature fitting needs real and fake examples")

    def loss(log_t: float) -> float:
        return log_loss(y, tta_probability(z, float(np.exp(log_t))))

    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    while hi - lo > 1e-6:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(np.exp((lo + hi) / 2))


def pick_threshold(labels: np.ndarray, probs: np.ndarray, method: str = "youden") -> float:
    """Decision threshold: ``youden`` maximises TPR - FPR; ``eer`` is where FPR = FNR (nearest score)."""
    y, s = np.asarray(labels, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    cands = np.unique(s)
    tpr = np.array([(s[y == 1] >= t).mean() for t in cands])
    fpr = np.array([(s[y == 0] >= t).mean() for t in cands])
    if method == "youden":
        k = int(np.argmax(tpr - fpr))
    elif method == "eer":
        k = int(np.argmin(np.abs((1 - tpr) - fpr)))
    else:
        raise ValueError(f"threshold method must be youden or eer, not {method!r}")
    return float(np.clip(cands[k], 1e-4, 1 - 1e-4))


def threshold_for_fpr(real_probs: np.ndarray, fpr: float) -> float:
    """The lowest threshold at which at most ``fpr`` of these real faces score at or above it."""
    if not 0 <= fpr < 1:
        raise ValueError(f"target false-positive rate must be in [0, 1), not {fpr}")
    s = np.sort(np.asarray(real_probs, dtype=np.float64))[::-1]
    k = int(np.floor(fpr * len(s)))  # this many reals may be flagged
    return float(np.nextafter(s[k], 1.0)) if k < len(s) else float(s[-1])


def fit_uncertain_band(labels: np.ndarray, probs: np.ndarray, threshold: float,
                       level: float = UNCERTAIN_LEVEL) -> tuple[float, float] | None:
    """The uncertain band ``[threshold - m, threshold + m]`` (clipped to [0, 1]), or None when there is none.

    The rule: ``m`` is the largest distance ``|s - threshold|`` of a validation score ``s`` at which the decision's
    accuracy (fake when ``s >= threshold``), fitted as a non-decreasing function of that distance, is under
    ``level``. The fit is isotonic regression (pool adjacent violators; samples at one distance share a value): it
    reads the accuracy *at* a distance from the samples around it, without a bin width to choose, where the
    accuracy of everything inside a band would average the worst scores with far better ones. None: the fitted
    accuracy reaches ``level`` even nearest the threshold.
    """
    y, s = np.asarray(labels, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    if s.size != y.size or y.size == 0:
        raise ValueError(f"{s.size} scores for {y.size} labels")
    if not 0 < level <= 1:
        raise ValueError(f"the uncertain band's level must be in (0, 1], not {level}")
    distances, at = np.unique(np.abs(s - threshold), return_inverse=True)  # sorted, ties together
    right = np.bincount(at, weights=((s >= threshold) == (y == 1)).astype(np.float64))
    count = np.bincount(at).astype(np.float64)
    under = np.flatnonzero(_non_decreasing_fit(right / count, count) < level)
    if under.size == 0:
        return None
    margin = float(distances[under[-1]])
    return max(0.0, threshold - margin), min(1.0, threshold + margin)


def _non_decreasing_fit(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence nearest to ``values`` in weighted least squares (pool adjacent violators)."""
    means: list[float] = []
    sizes: list[float] = []
    spans: list[int] = []  # how many values each pooled block covers
    for value, weight in zip(values, weights):
        means.append(float(value)), sizes.append(float(weight)), spans.append(1)
        while len(means) > 1 and means[-2] > means[-1]:  # pool the last two blocks into their weighted mean
            size = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / size
            sizes[-2], spans[-2] = size, spans[-2] + spans[-1]
            del means[-1], sizes[-1], spans[-1]
    return np.repeat(means, spans)


def uncertain_band_summary(labels: np.ndarray, probs: np.ndarray, threshold: float, level: float) -> dict:
    """``fit_uncertain_band``'s band with what it holds: the share of the samples inside, and the decision's accuracy
    inside and outside (None for an empty side), as the checkpoint's metrics and the eval report keep them."""
    band = fit_uncertain_band(labels, probs, threshold, level)
    y, s = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    right = (s >= threshold) == (y == 1)
    inside = (s >= band[0]) & (s <= band[1]) if band is not None else np.zeros(s.size, dtype=bool)

    def accuracy(mask: np.ndarray) -> float | None:
        return float(right[mask].mean()) if mask.any() else None

    return {"method": "uncertain", "level": level, "threshold": threshold,
            "band": None if band is None else [band[0], band[1]], "n": int(s.size), "n_inside": int(inside.sum()),
            "share_inside": float(inside.mean()), "accuracy_inside": accuracy(inside), "accuracy_outside": accuracy(~inside)}
