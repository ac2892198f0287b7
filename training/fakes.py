"""Pseudo-fake generators by name: each turns one real face and its landmarks into a fake.

A generator is a factory registered here under the name of its ``[mix]``
share (a field of ``datasets.Mix``). Given the mix and the training config,
it returns a ``FakeMaker``: ``(img, landmarks, rng) -> (fake, mask)`` on an
RGB uint8 crop. The datasets and the loop only see names and makers, so a new
generator is a function, an entry here and its share in ``Mix``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..model.registry import Registry
from .reenact import ReenactConfig, reenact
from .sbi import sbi_fake

if TYPE_CHECKING:
    from .datasets import Mix

FakeMaker = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
Factory = Callable[["Mix", Any, bool], FakeMaker]  # (mix, TrainConfig or None for defaults, train) -> maker

GENERATORS: Registry[Factory] = Registry("pseudo-fake generator")


@GENERATORS.register("sbi")
def _sbi(mix: Mix, cfg: Any, train: bool) -> FakeMaker:
    """Self-blended images (sbi.py); ``mix.sbi_regional`` of them inside one part of the face.

    Validation fakes are whole-face blends, as they have always been.
    """
    return partial(sbi_fake, regional=mix.sbi_regional if train else 0.0)


@GENERATORS.register("reenact")
def _reenact(mix: Mix, cfg: Any, train: bool) -> FakeMaker:
    """Reenactment-like fakes (reenact.py), with the config's ``[reenact]`` settings."""
    return partial(reenact, cfg=cfg.reenact if cfg is not None else ReenactConfig())


def shares(mix: Mix) -> dict[str, float]:
    """Each generator's share of an epoch, as the mix gives it."""
    return {name: getattr(mix, name) for name in GENERATORS.names()}


def build(mix: Mix, cfg: Any = None, train: bool = True) -> dict[str, FakeMaker]:
    """The makers of the generators with a share above 0, by name (``cfg``: a TrainConfig; None: default settings)."""
    return {name: GENERATORS.get(name)(mix, cfg, train) for name, share in shares(mix).items() if share > 0}
