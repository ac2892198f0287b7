"""Resumable training state without pickle, and an EMA of the weights.

``state.safetensors`` holds tensors (model, optimizer moments, EMA, RNG);
``state.json`` holds everything else (step, epoch, optimizer param groups,
scheduler and grad-scaler scalars). Both are written atomically (tmp + rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import TrainingError

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"


class EMA:
    """Exponential moving average of a model's state (float tensors averaged, others copied).

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after n updates
    (as TensorFlow's and timm's EMAs do): with a flat 0.999, the random head
    of step 0 would still weigh 0.999**450 = 64% in a 450-step run.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
                       for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int) -> None:
        """Fold in the model's current state; ``updates`` counts the updates before this one."""
        decay = min(self.decay, (1 + updates) / (10 + updates))
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].mul_(decay).add_(v.detach().float(), alpha=1 - decay)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)


def save_state(out: Path, *, model: nn.Module, opt, sched, scaler, ema: EMA | None, scalars: dict) -> None:
    """Write the training state beside the checkpoints in ``out``."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for idx, entry in opt_state["state"].items():
        for key, value in entry.items():
            tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    if ema is not None:
        tensors.update({f"ema.{k}": v.cpu().contiguous() for k, v in ema.shadow.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {
        **scalars,
        "param_groups": opt_state["param_groups"],
        "scheduler": sched.state_dict(),  # lambdas are functions: stored as None, rebuilt by the caller
        "scaler": scaler.state_dict(),
    }
    _atomic(out / STATE_TENSORS, lambda p: save_file(tensors, str(p)))
    _atomic(out / STATE_JSON, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))


def with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors saved under ``prefix`` (``model.``, ``ema.``), keyed without it."""
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def raw_model_weights(out: Path) -> dict[str, torch.Tensor]:
    """The model's own weights (not the EMA copy) from the state file in ``out``."""
    return with_prefix(load_file(str(out / STATE_TENSORS)), "model.")


def load_state(out: Path, *, model: nn.Module, opt, sched, scaler, ema: EMA | None) -> dict:
    """Restore what ``save_state`` wrote; return its scalars (step, epoch, ...)."""
    tensors_path, json_path = out / STATE_TENSORS, out / STATE_JSON
    if not (tensors_path.is_file() and json_path.is_file()):
        raise TrainingError(f"{out}: nothing to resume (no {STATE_TENSORS} + {STATE_JSON})")
    tensors = load_file(str(tensors_path))
    meta = json.loads(json_path.read_text())
    model.load_state_dict(with_prefix(tensors, "model."))
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    sched.load_state_dict(meta.pop("scheduler"))
    scaler.load_state_dict(meta.pop("scaler"))
    if ema is not None:
        ema.shadow = with_prefix(tensors, "ema.") or ema.shadow
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return meta


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
