"""Grad-CAM heat maps of face crops: which regions pushed a face's score towards fake.

Computed with the ``grad-cam`` package (``pytorch_grad_cam``) on the PyTorch
model, whatever backend scores the faces (ONNX Runtime has no gradients). The
target is the model's one logit, so a map shows evidence for "fake"; on a face
scored real it is weak and noisy, which is why only the faces that set the
verdict are explained. Maps are min-max scaled per face to [0, 1] (the
package's scaling): they rank regions within a face, not across faces.
"""

from __future__ import annotations

import base64
import contextlib
import io
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch import nn

from .results import FrameResult, TrackResult

METHOD = "gradcam"


class FakeLogit:
    """Grad-CAM target: the model's single logit (higher = more likely fake)."""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output  # the model returns one logit per image, so each output is already a scalar


def gradcam(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    """Grad-CAM maps for a normalised float32 NCHW batch: (N, H, W) float32 in [0, 1] at the input's size.

    Args:
        model: a detector from ``model.architectures`` (its ``cam_layer`` is the layer looked at).
        batch: the crops as the classifier takes them (``Predictor.preprocess``).
    """
    from pytorch_grad_cam import GradCAM  # here: the package imports scikit-learn and pyplot (~5 s cold)

    # Gradients reach the feature map through the input, not the weights: no
    # weight gradients are computed or left behind on the shared model.
    x = torch.from_numpy(batch).requires_grad_(True)
    with _frozen(model), torch.enable_grad(), GradCAM(model, [model.cam_layer]) as cam:
        maps = cam(x, targets=[FakeLogit()] * len(x))
    return np.clip(maps, 0.0, 1.0).astype(np.float32)


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def encode_heatmap(heatmap: np.ndarray) -> str:
    """A [0, 1] map -> grayscale 8-bit PNG, base64 (the record's ``heatmap``)."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(heatmap * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_heatmap(data: str) -> np.ndarray:
    """The record's ``heatmap`` -> float32 (H, W) in [0, 1]."""
    with Image.open(io.BytesIO(base64.b64decode(data))) as img:
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def pick_faces(frames: list[FrameResult], tracks: list[TrackResult], limit: int) -> list[tuple[int, int]]:
    """The faces to explain, as (frame position, face position): at most ``limit``.

    Only counted tracks (those that set the verdict). Round robin over them,
    highest track score first, each track's faces by score: with one person
    the top frames of that person, with several, each person's best face first.
    """
    counted = {t.id: t.score for t in tracks if t.counted}
    by_track: dict[int, list[tuple[float, int, int]]] = {tid: [] for tid in counted}
    for f, frame in enumerate(frames):
        for k, face in enumerate(frame.faces):
            if face.track in by_track:
                by_track[face.track].append((face.score, f, k))
    queues = [sorted(by_track[tid], reverse=True) for tid in sorted(counted, key=lambda t: -counted[t])]
    picks: list[tuple[int, int]] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        picks += [(q[rank][1], q[rank][2]) for q in queues if rank < len(q)]
    return picks[:limit]
