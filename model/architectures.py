"""The detector networks: a timm backbone (``pretrained=False``: weights only ever come from checkpoint
files) and a binary head whose one logit's sigmoid is the probability that the face is fake.

Which backbones exist, their input sizes and normalisation are entries in
``model.backbones``; this module only builds them (and is the one that
imports timm). Any of them takes ``cbam=True``: CBAM attention (channel then
spatial) on the final feature map before pooling, recorded by a checkpoint in
``architecture_kwargs``.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from .backbones import get_backbone, list_architectures

__all__ = ["create_model", "list_architectures", "DeepfakeDetector", "ViTHeadDetector"]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered architecture with random weights."""
    entry = get_backbone(name)
    head = ViTHeadDetector if entry.head == "vit" else DeepfakeDetector
    return head(entry.timm_name, **kwargs)


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018): channel, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class DeepfakeDetector(nn.Module):
    """A timm backbone plus a one-logit head. ``forward`` returns logits (N,)."""

    def __init__(self, backbone: str, drop_rate: float = 0.2, cbam: bool = False, **timm_kwargs) -> None:
        super().__init__()
        self.backbone = timm.create_model(
            backbone, pretrained=False, num_classes=0, drop_rate=drop_rate, **timm_kwargs
        )
        self.cbam = CBAM(self.backbone.num_features) if cbam else None
        self.head = nn.Linear(self.backbone.num_features, 1)

    @property
    def cam_layer(self) -> nn.Module:
        """The last layer with a spatial feature map (N, C, H, W): where Grad-CAM looks (model.explain)."""
        if self.cbam is not None:
            return self.cbam
        if not hasattr(self.backbone, "bn2"):  # timm's EfficientNets end in conv_head -> bn2 (with its activation)
            raise ValueError(f"no Grad-CAM layer known for the backbone {type(self.backbone).__name__}")
        return self.backbone.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cbam is None:
            feats = self.backbone(x)
        else:
            feats = self.backbone.forward_head(self.cbam(self.backbone.forward_features(x)), pre_logits=True)
        return self.head(feats).squeeze(1)


class ViTHeadDetector(nn.Module):
    """EfficientNet feature map -> tokens -> transformer encoder -> class token logit."""

    def __init__(
        self,
        backbone: str = "efficientnet_b4",
        dim: int = 256,
        depth: int = 2,
        heads: int = 8,
        max_tokens: int = 256,
        cbam: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = timm.create_model(backbone, pretrained=False, features_only=True, out_indices=(-1,))
        channels = self.backbone.feature_info.channels()[-1]
        self.cbam = CBAM(channels) if cbam else None
        self.project = nn.Conv2d(channels, dim, kernel_size=1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, max_tokens + 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 4, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    @property
    def cam_layer(self) -> nn.Module:
        """The projected feature map (N, dim, H, W) before it becomes tokens: where Grad-CAM looks."""
        return self.project

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)[-1]
        if self.cbam is not None:
            feats = self.cbam(feats)
        feats = self.project(feats)  # (N, dim, H, W)
        tokens = feats.flatten(2).transpose(1, 2)  # (N, H*W, dim)
        if tokens.shape[1] + 1 > self.pos_embed.shape[1]:
            raise ValueError(f"input gives {tokens.shape[1]} tokens, more than the head's {self.pos_embed.shape[1] - 1}")
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed[:, : tokens.shape[1] + 1]
        return self.head(self.norm(self.encoder(tokens)[:, 0])).squeeze(1)
