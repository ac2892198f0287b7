"""Binary detection metrics in pure numpy. ``labels``: 1 = fake (positive); ``scores``: P(fake) or logits."""

from __future__ import annotations

import numpy as np


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels for {s.size} scores")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, s


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    sx = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(sx)) + 1]
    ends = np.r_[starts[1:], len(x)]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + 1 + b) / 2.0
    return ranks


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count 1/2). NaN with only one class."""
    y, s = _check(labels, scores)
    n_pos, n_neg = y.sum(), (1 - y).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = _ranks(s)
    return float((r[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels, probs, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities (clipped to [eps, 1-eps])."""
    y, p = _check(labels, probs)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _roc_points(y: np.ndarray, s: np.ndarray):
    """(fpr, tpr, precision, recall) at each distinct threshold, highest first."""
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each tied group
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return fp, tp


def average_precision(labels, scores) -> float:
    """Area under precision-recall as sum over thresholds of (R_n - R_{n-1}) P_n (sklearn's definition)."""
    y, s = _check(labels, scores)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    fp, tp = _roc_points(y, s)
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def eer(labels, scores) -> float:
    """Equal error rate: where false-positive and false-negative rates cross (linear interpolation)."""
    y, s = _check(labels, scores)
    n_pos, n_neg = y.sum(), (1 - y).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    fp, tp = _roc_points(y, s)
    fpr = np.r_[0.0, fp / n_neg]
    fnr = np.r_[1.0, 1 - tp / n_pos]
    d = fnr - fpr  # decreasing from 1 to <= 0
    k = int(np.flatnonzero(d <= 0)[0])
    if d[k] == 0 or k == 0:
        return float(fpr[k])
    t = d[k - 1] / (d[k - 1] - d[k])
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def expected_calibration_error(labels, probs, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): the top-label confidence max(p, 1 - p) against accuracy, in ``bins`` equal bins.

    Sum over bins of (share of items in the bin) x |accuracy - mean confidence|.
    A bin holds confidences in (lo, hi]; the first also holds its lower edge.
    """
    y, p = _check(labels, probs)
    conf = np.maximum(p, 1 - p)
    correct = ((p >= 0.5) == (y == 1)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(total)


def brier(labels, probs) -> float:
    """Mean squared error of P(fake) against the 0/1 label."""
    y, p = _check(labels, probs)
    return float(np.mean((p - y) ** 2))


def tpr_at_fpr(labels, scores, fpr: float) -> float:
    """The highest share of fakes found at any threshold whose false-positive rate is at most ``fpr``."""
    y, s = _check(labels, scores)
    n_pos, n_neg = y.sum(), (1 - y).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    fp, tp = _roc_points(y, s)
    ok = fp / n_neg <= fpr + 1e-12
    return float(tp[ok].max() / n_pos) if ok.any() else 0.0


def accuracy(labels, probs, threshold: float = 0.5) -> float:
    """Share of items where (prob >= threshold) equals the label."""
    y, p = _check(labels, probs)
    return float(np.mean((p >= threshold) == (y == 1)))


def summary(labels, probs, threshold: float = 0.5) -> dict[str, float]:
    """All metrics for one set of probabilities, plus counts."""
    y = np.asarray(labels)
    return {
        "auc": roc_auc(labels, probs),
        "log_loss": log_loss(labels, probs),
        "ap": average_precision(labels, probs),
        "eer": eer(labels, probs),
        "accuracy": accuracy(labels, probs, threshold),
        "ece": expected_calibration_error(labels, probs),
        "brier": brier(labels, probs),
        "tpr_at_fpr_1": tpr_at_fpr(labels, probs, 0.01),
        "tpr_at_fpr_5": tpr_at_fpr(labels, probs, 0.05),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
    }
