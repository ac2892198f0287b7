"""Inference backends: eager PyTorch (CUDA when present) or ONNX Runtime.

A backend maps a float32 NCHW batch (already normalised) to logits (N,).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbones import get_backbone
from .config import ModelConfig

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
        # Idle threads sleep instead of spinning: the decoder and MTCNN share the cores (docs/speed.md, "Thread spinning").
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if (device or default_device()) == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def resolve_backend(backend: str, device: str, exportable: bool = True) -> str:
    """``auto`` is ONNX Runtime on the CPU (about 3x eager PyTorch there) and PyTorch on CUDA or for a backbone
    that cannot be exported (``Backbone.onnx``)."""
    if backend == "auto":
        return "torch" if device == "cuda" or not exportable else "onnx"
    return backend


def make_backend(model: nn.Module, config: ModelConfig, device: str, backend: str = "auto", *,
                 onnx_path: str | Path | None = None, weights: Path | None = None) -> TorchBackend | OnnxBackend:
    """The backend that scores faces: the service and ``unmask eval`` both build theirs here, so both score alike.

    ``config`` is the checkpoint's: its input size, and whether its backbone exports (``Backbone.onnx``).

    For ONNX: ``onnx_path`` if given; else, with the checkpoint's ``weights``
    file, an export cached once per weights hash (``$UNMASK_CACHE_DIR``);
    else (a model only in memory, e.g. mid-training) a fresh export to a
    temporary file (about 2 s for Lite0).
    """
    if resolve_backend(backend, device, get_backbone(config.architecture).onnx) == "torch":
        return TorchBackend(model, device)
    if onnx_path:
        return OnnxBackend(onnx_path, device)
    if weights is not None:
        return OnnxBackend(cached_onnx(model, weights, config.input_size), device)
    with tempfile.TemporaryDirectory(prefix="unmask-onnx-") as tmp:
        return OnnxBackend(export_onnx(model, config.input_size, Path(tmp) / "model.onnx"), device)  # the session keeps it loaded


def cached_onnx(model: nn.Module, weights: Path, input_size: int) -> Path:
    """The model's ONNX export, made once per weights file and input size (keyed by the weights' hash) into the cache.

    The size is in the key: the export fixes the input's height and width, and
    two checkpoints may share weights but not their input size.
    """
    from .paths import cache_dir

    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]
    path = cache_dir() / f"{Path(weights).stem}-{digest}-{input_size}px.onnx"
    if not path.is_file():
        log.info("exporting %s to ONNX at %s (once)", Path(weights).stem, path)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        export_onnx(model, input_size, tmp)
        tmp.replace(path)  # atomic: concurrent workers never read half a file
    return path


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
