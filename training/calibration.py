"""Calibration: a temperature for the logits (probabilities) and a decision threshold (verdicts).

Temperature scaling (Guo et al. 2017) divides every logit by one scalar T
fitted to minimise the log-loss of the served probability
``mean over TTA of sigmoid(logit / T)`` on validation logits. It leaves the
ranking (AUC) unchanged and fixes over- or under-confidence (label
smoothing makes a model under-confident).
"""

from __future__ import annotations

import numpy as np

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
