"""An int8 ONNX Runtime classifier against the served fp32 one: AUC parity and time per view, in one run.

    python bench/int8_classifier.py [--model default] [--calibrate 160] [--exclude stem]

The int8 model is made here, not shipped: the checkpoint is exported with
timm's run-time "same" padding folded to constants for the fixed input size
(the served export computes each padding from the input's shape, which the
quantiser handles badly), then quantised statically by ONNX Runtime
(QOperator, per-channel int8 weights, uint8 activations, ``reduce_range`` for
CPUs without VNNI), with activation ranges taken from ``--calibrate`` DFDC
*training* crops re-cut as served. ``--exclude`` keeps layers in fp32:
``stem`` (the first convolution, which sees the pixels), ``ends`` (the stem
and the head), ``dw-ends`` (those and every depthwise convolution), ``none``.

Both models then score the served DFDC validation split (re-cut as served,
the checkpoint's TTA and temperature), alternating batch by batch so both
see the same machine load. Prints one JSON object: AUC of each, verdicts
that differ at the threshold, the largest probability difference, ms per
view of each and their ratio. Never uses ``mesonet_val``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F
from shared_data import shared_data
from torch import nn
from unmask.model.backends import OnnxBackend, export_onnx
from unmask.model.checkpoint import load_checkpoint, resolve_checkpoint
from unmask.model.tta import apply_tta, tta_probability
from unmask.training.datasets import dfdc_records
from unmask.training.evaluate import aligned_crops
from unmask.training.metrics import roc_auc

EXCLUDE = {"none": (), "stem": ("conv_stem",), "ends": ("conv_stem", "head"), "dw-ends": ("conv_stem", "head", "conv_dw")}


class PaddedConv(nn.Module):
    """A timm Conv2dSame with its padding fixed for one input size: a constant Pad, then the convolution."""

    def __init__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.conv, self.pad = conv, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.Conv2d.forward(self.conv, F.pad(x, self.pad))


def fold_same_padding(model: nn.Module, input_size: int) -> nn.Module:
    """A copy of ``model`` whose run-time "same" paddings are constants for ``input_size`` (outputs unchanged)."""
    from timm.layers.conv2d_same import Conv2dSame
    from timm.layers.padding import pad_same_arg

    model = copy.deepcopy(model).eval()
    sizes: dict[str, torch.Size] = {}
    hooks = [m.register_forward_pre_hook(lambda _, args, name=name: sizes.__setitem__(name, args[0].shape[-2:]))
             for name, m in model.named_modules() if isinstance(m, Conv2dSame)]
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    for hook in hooks:
        hook.remove()
    for name, size in sizes.items():
        parent_name, _, child = name.rpartition(".")
        conv = model.get_submodule(name)
        pad = pad_same_arg(list(size), list(conv.kernel_size), list(conv.stride), list(conv.dilation))
        setattr(model.get_submodule(parent_name), child, PaddedConv(conv, tuple(pad)))
    return model


def normalised(images: np.ndarray, mean, std) -> np.ndarray:
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return (x - np.float32(mean).reshape(1, 3, 1, 1)) / np.float32(std).reshape(1, 3, 1, 1)


def quantise(src: Path, dst: Path, calibration: list[np.ndarray], exclude: tuple[str, ...]) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"faces": batch}

    nodes = [n.name for n in onnx.load(str(src)).graph.node
             if n.op_type in ("Conv", "Gemm") and any(part in n.name for part in exclude)]
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QOperator, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                    nodes_to_exclude=nodes)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--calibrate", type=int, default=160, help="DFDC training crops for the activation ranges")
    parser.add_argument("--exclude", choices=sorted(EXCLUDE), default="stem")
    parser.add_argument("--batch", type=int, default=64, help="crops a batch (each with its TTA views)")
    args = parser.parse_args()
    data = shared_data(args.data)

    model, info = load_checkpoint(resolve_checkpoint(args.model))
    config = info.config
    size, mean, std = config.input_size, config.mean, config.std
    train = dfdc_records(data, "train")
    train = [train[i] for i in np.linspace(0, len(train) - 1, args.calibrate).astype(int)]  # spread over the split
    val = dfdc_records(data, "val")
    train_crops, val_crops = aligned_crops(train, config), aligned_crops(val, config)
    labels = np.array([r.label for r in val])

    with tempfile.TemporaryDirectory(prefix="unmask-int8-") as tmp:
        served = OnnxBackend(export_onnx(model, size, Path(tmp) / "served.onnx"))
        folded = export_onnx(fold_same_padding(model, size), size, Path(tmp) / "folded.onnx")
        batches = [normalised(np.stack([train_crops[r.path] for r in train[k:k + 16]]), mean, std)
                   for k in range(0, len(train), 16)]
        int8 = OnnxBackend(quantise(folded, Path(tmp) / "int8.onnx", batches, EXCLUDE[args.exclude]))

        logits = {"fp32": [], "int8": []}
        seconds = {"fp32": 0.0, "int8": 0.0}
        views = 0
        for k in range(0, len(val), args.batch):
            x = normalised(np.stack([val_crops[r.path] for r in val[k:k + args.batch]]), mean, std)
            batch = np.concatenate([apply_tta(t, x) for t in config.tta])  # every view in one call, as served
            views += len(batch)
            for name, backend in (("fp32", served), ("int8", int8)):
                start = time.perf_counter()
                z = np.asarray(backend(batch)).reshape(len(config.tta), -1)
                seconds[name] += time.perf_counter() - start
                logits[name].append(z)

    probs = {name: tta_probability(np.concatenate(z, axis=1), config.temperature) for name, z in logits.items()}
    verdicts = {name: p >= config.threshold for name, p in probs.items()}
    ms = {name: 1000 * s / views for name, s in seconds.items()}
    print(json.dumps({
        "model": f"{info.name}:{info.version}", "exclude": args.exclude, "calibration_crops": len(train),
        "val_crops": len(val), "auc_fp32": round(roc_auc(labels, probs["fp32"]), 5),
        "auc_int8": round(roc_auc(labels, probs["int8"]), 5),
        "auc_difference": round(roc_auc(labels, probs["int8"]) - roc_auc(labels, probs["fp32"]), 5),
        "verdicts_differ": int((verdicts["fp32"] != verdicts["int8"]).sum()),
        "max_probability_difference": round(float(np.abs(probs["fp32"] - probs["int8"]).max()), 4),
        "ms_per_view_fp32": round(ms["fp32"], 2), "ms_per_view_int8": round(ms["int8"], 2),
        "speedup": round(ms["fp32"] / ms["int8"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
