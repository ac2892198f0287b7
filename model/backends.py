"""Inference backends: eager PyTorch (CUDA when present) or ONNX Runtime.

A backend maps a float32 NCHW batch (already normalised) to logits (N,).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchBackend:
    name = "torch"

    def __init__(self, model: nn.Module, device: str | None = None) -> None:
        self.device = torch.device(device or default_device())
        self.model = model.eval().to(self.device)
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x).float().cpu().numpy()


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: str | Path, device: str | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort  # imported here: only this backend needs it

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if (device or default_device()) == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def export_onnx(model: nn.Module, input_size: int, path: str | Path, opset: int = 17) -> Path:
    """Write an ONNX file with a dynamic batch axis; input 'faces' -> output 'logits'."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    dummy = torch.zeros(2, 3, input_size, input_size)
    with warnings.catch_warnings():
        # We choose the TorchScript exporter on purpose (see dynamo= below); it
        # warns that it is legacy.
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(model, dummy, path, opset)
    return path


def _export(model: nn.Module, dummy: torch.Tensor, path: Path, opset: int) -> None:
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["faces"],
        output_names=["logits"],
        dynamic_axes={"faces": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=opset,
        dynamo=False,  # the dynamo exporter needs onnxscript, which is not a dependency
    )
