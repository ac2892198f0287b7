"""Test-time augmentations: one table for the predictor (numpy) and eval (torch).

Each augmentation is a flip of NCHW batch axes; the score is the mean of the
probabilities over the augmentations.
"""

from __future__ import annotations

from typing import Iterable, TypeVar

import numpy as np
import torch

FLIP_AXES: dict[str, tuple[int, ...]] = {"identity": (), "hflip": (-1,)}  # -1: width of NCHW

Batch = TypeVar("Batch", np.ndarray, torch.Tensor)


def check_tta(names: Iterable[str]) -> tuple[str, ...]:
    """The names as a tuple; raises for an unknown or empty list."""
    names = tuple(names)
    unknown = [n for n in names if n not in FLIP_AXES]
    if unknown or not names:
        raise ValueError(f"unknown or empty TTA {unknown or list(names)}; known: {', '.join(FLIP_AXES)}")
    return names


def apply_tta(name: str, batch: Batch) -> Batch:
    """``batch`` under augmentation ``name`` (a contiguous copy when flipped)."""
    axes = FLIP_AXES[name]
    if not axes:
        return batch
    if isinstance(batch, np.ndarray):
        return np.ascontiguousarray(np.flip(batch, axes))
    return batch.flip(axes)


def tta_probability(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """P(fake) from logits of shape (n_tta, n): the mean over augmentations of sigmoid(logit / temperature).

    The temperature (fitted on validation logits, stored in the checkpoint)
    divides every pass's logit, so torch and ONNX Runtime give the same
    calibrated score from the same logits.
    """
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    return (1.0 / (1.0 + np.exp(-z))).mean(axis=0)


def near_threshold(plain_logits: np.ndarray, temperature: float, threshold: float, band: float) -> np.ndarray:
    """Which faces adaptive TTA gives the other views: those whose plain (first view's) P(fake) lies within
    ``band`` of ``threshold``. Far from it, another view could move the score but not the face's side."""
    return np.abs(tta_probability(np.asarray(plain_logits)[None], temperature) - threshold) <= band


def adaptive_probability(logits: np.ndarray, temperature: float, threshold: float, band: float) -> np.ndarray:
    """``tta_probability`` where the plain score is ``near_threshold``, the plain view's P(fake) elsewhere: what the
    predictor serves with adaptive TTA, computed from every view's logits (eval has them all)."""
    logits = np.array(logits, dtype=np.float64)
    far = ~near_threshold(logits[0], temperature, threshold, band)
    logits[1:, far] = logits[0, far]  # the plain view repeated: its own probability
    return tta_probability(logits, temperature)
