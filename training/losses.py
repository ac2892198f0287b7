"""Losses and batch mixing: BCE, binary focal loss, mixup."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: float = -1.0) -> torch.Tensor:
    """Binary focal loss (Lin et al. 2017), mean over the batch; soft targets allowed.

    ``gamma=0`` and ``alpha<0`` give plain BCE; ``alpha`` in [0, 1] weights fakes by alpha, reals by 1-alpha.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = bce * (1 - p_t).pow(gamma)
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss.mean()


def make_loss(kind: str, gamma: float = 2.0, alpha: float = -1.0):
    """``bce`` or ``focal`` as a function (logits, targets) -> scalar."""
    if kind == "bce":
        return lambda logits, targets: F.binary_cross_entropy_with_logits(logits, targets)
    if kind == "focal":
        return lambda logits, targets: focal_loss(logits, targets, gamma, alpha)
    raise ValueError(f"loss must be bce or focal, not {kind!r}")


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator | None = None):
    """Mix each item with a shuffled partner: lam*a + (1-lam)*b for images and targets (one lam per batch)."""
    if alpha <= 0:
        return x, y
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(x.shape[0], generator=generator, device="cpu").to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]
