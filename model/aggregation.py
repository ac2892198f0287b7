"""Named strategies that turn many face scores into one.

A track's score is a strategy over its faces' scores across frames; a file's
score is the highest track score (one forged person makes the file fake).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .registry import Registry

Strategy = Callable[[Sequence[float]], float]
STRATEGIES: Registry[Strategy] = Registry("aggregation")
register_strategy = STRATEGIES.register


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def get_strategy(name: str) -> Strategy:
    return STRATEGIES.get(name)


def _check(scores: Sequence[float]) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("nothing to aggregate")
    return arr


@register_strategy("mean")
def mean(scores: Sequence[float]) -> float:
    return float(_check(scores).mean())


@register_strategy("max")
def maximum(scores: Sequence[float]) -> float:
    return float(_check(scores).max())


@register_strategy("confident")
def confident(scores: Sequence[float], fake_at: float = 0.8, real_at: float = 0.2) -> float:
    """The DFDC winners' rule (selimsef): trust the confident frames.

    If more than 40% of the scores are confidently fake (> fake_at), average
    those; if more than 90% are confidently real (< real_at), average those;
    otherwise the plain mean.
    """
    arr = _check(scores)
    fakes = arr[arr > fake_at]
    reals = arr[arr < real_at]
    if fakes.size > arr.size / 2.5:
        return float(fakes.mean())
    if reals.size > 0.9 * arr.size:
        return float(reals.mean())
    return float(arr.mean())


def verdict_is_clear(track_scores: Sequence[float], threshold: float, margin: float) -> bool:
    """Early stopping's rule: the counted tracks' scores after the first pass settle the file when every one is at
    least ``margin`` from ``threshold`` (fitted so the verdict on all frames rarely differs: docs/speed.md). No
    track (no face yet) is never clear: a face may come later."""
    return bool(track_scores) and all(abs(score - threshold) >= margin for score in track_scores)
