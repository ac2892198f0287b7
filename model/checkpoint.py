"""Checkpoint I/O: ``NAME.safetensors`` (weights) beside ``NAME.json`` (metadata).

Nothing here unpickles: safetensors holds only tensors, JSON only data. A pair
whose metadata and weights disagree fails with a message naming what differs.
Bundled checkpoints live in ``model/weights`` and are found by name.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from . import __version__, strict_json
from .config import ModelConfig

if TYPE_CHECKING:  # torch and timm load only with weights: reading metadata (serve's checks, listings) stays fast
    import torch
    from torch import nn

log = logging.getLogger(__name__)

FORMAT = "unmask-checkpoint"
FORMAT_VERSION = 1
BUNDLED_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "lite0-dfdc-sbi-reenact"  # what "default" and no --model resolve to


class CheckpointError(ValueError):
    """A file that is not a usable unmask checkpoint."""


@dataclass
class CheckpointInfo:
    """The JSON half of a checkpoint: what the model is and how it was made."""

    name: str
    version: str
    config: ModelConfig
    architecture_kwargs: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    created: str = ""
    unmask_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "config": self.config.to_dict(),
            "architecture_kwargs": self.architecture_kwargs,
            "training": self.training,
            "metrics": self.metrics,
            "parent": self.parent,
            "created": self.created,
            "unmask_version": self.unmask_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "CheckpointInfo":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{source}: not an unmask checkpoint (no \"format\": \"{FORMAT}\")")
        if data.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{source}: format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        try:
            config = ModelConfig.from_dict(data["config"])
            for key in ("architecture_kwargs", "training", "metrics"):
                if not isinstance(data.get(key) or {}, dict):
                    raise ValueError(f"{key}: {data[key]!r} is not an object")
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                config=config,
                architecture_kwargs=dict(data.get("architecture_kwargs") or {}),
                training=dict(data.get("training") or {}),
                metrics=dict(data.get("metrics") or {}),
                parent=data.get("parent"),
                created=str(data.get("created", "")),
                unmask_version=str(data.get("unmask_version", "")),
            )
        except KeyError as exc:
            raise CheckpointError(f"{source}: bad metadata: missing key {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: bad metadata: {exc}") from exc


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, metadata) paths for a stem or either file of the pair."""
    path = Path(path)
    # Only the pair's own suffixes are stripped: "model-v1.5" is a stem, not "model-v1" + ".5".
    stem = str(path).removesuffix(path.suffix) if path.suffix in {".safetensors", ".json"} else str(path)
    return Path(f"{stem}.safetensors"), Path(f"{stem}.json")


def save_checkpoint(path: str | Path, model: nn.Module, info: CheckpointInfo, half: bool = False) -> Path:
    """Write ``path``.safetensors and ``path``.json; return the weights path.

    ``half`` stores floating tensors as float16 (half the size); loading
    always returns float32.
    """
    from safetensors.torch import save_file

    weights_path, meta_path = checkpoint_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    if not info.created:
        info.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor
    save_file(state, str(weights_path), metadata={"format": FORMAT, "architecture": info.config.architecture})
    meta_path.write_text(strict_json.dumps(info.to_dict(), indent=2) + "\n")
    os.chmod(weights_path, meta_path.stat().st_mode & 0o777)  # safetensors writes 0600 (a temp file); the JSON follows the umask
    return weights_path


def update_metadata(path: str | Path, config: dict | None = None, **metrics) -> Path:
    """Rewrite a checkpoint's JSON in place: its ``config`` (when given) and the given ``metrics`` keys.

    The weights are not touched; every other key is kept as written.
    """
    _, meta_path = checkpoint_paths(path)
    data = json.loads(meta_path.read_text())
    if config is not None:
        data["config"] = config
    data.setdefault("metrics", {}).update(metrics)
    meta_path.write_text(strict_json.dumps(data, indent=2) + "\n")
    return meta_path


def read_info(path: str | Path) -> CheckpointInfo:
    """Read and validate only the JSON metadata."""
    _, meta_path = checkpoint_paths(path)
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: metadata file not found (a checkpoint is NAME.safetensors + NAME.json)")
    try:
        data = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON: {exc}") from exc
    return CheckpointInfo.from_dict(data, str(meta_path))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, CheckpointInfo]:
    """Build the model the metadata names and load the weights into it, strictly."""
    from safetensors.torch import load_file

    from .architectures import create_model

    weights_path, meta_path = checkpoint_paths(path)
    info = read_info(path)
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: weights file not found")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: not a safetensors file: {exc}") from exc
    try:
        model = create_model(info.config.architecture, **info.architecture_kwargs)
    except (TypeError, ValueError) as exc:  # e.g. a keyword the architecture does not take
        raise CheckpointError(f"{meta_path}: bad metadata: architecture_kwargs: {exc}") from exc
    _check_state(model, state, weights_path, info.config.architecture)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.eval().to(device)
    return model, info


def _check_state(model: nn.Module, state: dict[str, torch.Tensor], source: Path, arch: str) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if mismatched:
            k = mismatched[0]
            parts.append(f"{len(mismatched)} of another shape (e.g. {k}: {tuple(state[k].shape)} vs {expected[k]})")
        raise CheckpointError(
            f"{source}: weights do not match the metadata's architecture {arch!r}: " + "; ".join(parts)
        )


def list_bundled() -> list[str]:
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.json"))


def resolve_checkpoint(name_or_path: str | Path | None = None) -> Path:
    """A bundled model by name (``default`` when None), or a checkpoint path."""
    if name_or_path is None or str(name_or_path) == "default":
        name_or_path = DEFAULT_MODEL
    weights_path, meta_path = checkpoint_paths(name_or_path)
    if meta_path.is_file() or weights_path.is_file():
        return weights_path
    bundled_weights, bundled_meta = checkpoint_paths(BUNDLED_DIR / str(name_or_path))
    if bundled_meta.is_file():
        return bundled_weights
    raise CheckpointError(
        f"no checkpoint {str(name_or_path)!r}: not a file, and bundled models are: {', '.join(list_bundled()) or 'none'}"
    )
