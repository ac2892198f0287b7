"""The training config: one dataclass, loadable from TOML (or the JSON a run saves), overridable by flags.

Precedence: the dataclass defaults < the fine-tune preset (``finetune = true``)
< the config file < command-line flags. The resolved config is saved as
``OUT/config.json`` and in every checkpoint's ``training.recipe``.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .datasets import VAL_PERMILLE, Mix
from .errors import ConfigError
from .fakes import shares
from .reenact import ReenactConfig
from .transforms import AugmentConfig, augment_config

FINETUNE_PRESET = {"lr_scale": 0.1, "freeze_blocks": 4, "freeze_epochs": 1, "warmup_steps": 10}


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in the checkpoint's ``training.recipe``)."""

    data: str = ""  # shared data folder (DFDC crops + UTKFace), used when no manifest; "": found (datasets.shared_data_dir)
    manifest: str = ""  # crops manifest CSV (unmask extract's manifest.csv or path,label[,group,split,...])
    out_dir: str = "runs/default"
    name: str = "lite0-dfdc-sbi"
    version: str = "1"
    architecture: str = "lite0"
    cbam: bool = False  # CBAM attention before pooling
    input_size: int = 0  # 0: the architecture's (or init checkpoint's) default
    init: str = "imagenet"  # imagenet | none | checkpoint path or bundled name to fine-tune
    finetune: bool = False  # apply FINETUNE_PRESET under the file and flags
    epochs: int = 5
    samples_per_epoch: int = 7000
    batch_size: int = 16
    accum_steps: int = 1  # gradient accumulation: micro-batches per optimizer step
    lr: float = 5e-4
    lr_scale: float = 1.0  # effective lr = lr * lr_scale
    weight_decay: float = 0.01
    warmup_steps: int = 100
    label_smoothing: float = 0.1
    loss: str = "bce"  # bce | focal
    focal_gamma: float = 2.0
    focal_alpha: float = -1.0  # < 0: no class weighting
    mixup: float = 0.0  # Beta(alpha, alpha) mixup; 0: off
    balance: bool = True  # draw real and fake equally often (else as they occur)
    freeze_blocks: int = 0  # lower backbone blocks (plus stem) to freeze ...
    freeze_epochs: int = 0  # ... for the first this many epochs
    ema: float = 0.0  # EMA decay of the weights (e.g. 0.999); 0: off
    amp: str = "none"  # none | bf16 | fp16 (autocast; CUDA in practice; fp32 is fastest on CPU)
    workers: int = 1
    threads: int = 0  # torch threads; 0 keeps torch's default
    seed: int = 0
    device: str = "auto"
    mix: Mix = field(default_factory=lambda: Mix(sbi=-1.0))  # sbi < 0: 0.25 on shared data, 0 on a manifest
    reenact: ReenactConfig = field(default_factory=ReenactConfig)  # settings of the reenact pseudo-fakes (mix.reenact)
    use_utkface: bool = True
    augment: AugmentConfig = field(default_factory=lambda: augment_config("light"))  # preset name or table
    val_permille: int = VAL_PERMILLE
    val_limit: int = 0  # cap on val crops (and SBI val reals) per class; 0 = all
    aligned: bool = False  # train and validate on crops re-cut as served (MTCNN + the model's crop geometry; align.py)
    cache: bool = True  # decode crops once into a uint8 memory map (else read the JPEGs every time)
    cache_dir: str = ""  # crops and landmarks caches; "": $UNMASK_CACHE_DIR/training (~/.cache/unmask/training)
    log_every: int = 20
    max_steps: int = 0  # stop (as if killed) after this many steps in total; resume with --resume
    resume: bool = False
    progress: bool = True  # tqdm bar on a terminal
    command: str = ""

    def __post_init__(self) -> None:
        # Config files bring any JSON/TOML type: check them before any value is used ("false" is a true string).
        for f in dataclasses.fields(self):
            if f.type in _TYPES:
                setattr(self, f.name, _typed(f.name, getattr(self, f.name), f.type))
        self.mix = _mix(self.mix)
        self.augment = augment_config(self.augment)
        self.reenact = _reenact(self.reenact)
        from ..model.backbones import list_architectures

        archs = list_architectures()
        checks = [
            (self.architecture in archs, f"architecture must be one of {', '.join(archs)}, not {self.architecture!r}"),
            (self.input_size == 0 or 32 <= self.input_size <= 1024, f"input_size must be 0 or in [32, 1024], not {self.input_size}"),
            (self.amp in {"none", "bf16", "fp16"}, f"amp must be none, bf16 or fp16, not {self.amp!r}"),
            (self.loss in {"bce", "focal"}, f"loss must be bce or focal, not {self.loss!r}"),
            (self.samples_per_epoch <= MAX_SAMPLES_PER_EPOCH,  # an epoch's draws and indices are held in memory
             f"samples_per_epoch {self.samples_per_epoch} is over {MAX_SAMPLES_PER_EPOCH:,}; use more epochs instead"),
            (self.lr > 0 and self.lr_scale > 0, "lr and lr_scale must be positive"),
            (0 <= self.ema < 1, "ema must be in [0, 1)"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), not {self.label_smoothing}"),
            (0 <= self.val_permille <= 1000, f"val_permille must be in [0, 1000] (validation groups per 1000), not {self.val_permille}"),
            (self.focal_alpha <= 1, f"focal_alpha must be in [0, 1] (or < 0: no class weight), not {self.focal_alpha}"),
        ]
        for key in ("epochs", "samples_per_epoch", "batch_size", "accum_steps", "log_every"):
            checks.append((getattr(self, key) >= 1, f"{key} must be positive, not {getattr(self, key)}"))
        for key in ("warmup_steps", "max_steps", "seed", "threads", "workers", "val_limit", "freeze_blocks", "freeze_epochs",
                    "weight_decay", "focal_gamma", "mixup"):
            checks.append((getattr(self, key) >= 0, f"{key} must not be negative, not {getattr(self, key)}"))
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        check_device(self.device)


MAX_SAMPLES_PER_EPOCH = 10_000_000
_TYPES = {"str": str, "bool": bool, "int": int, "float": float}
_TYPE_NAMES = {"str": "a string", "bool": "true or false", "int": "an integer", "float": "a number"}


def _typed(key: str, value: Any, kind: str) -> Any:
    """``value`` if it has the field's type (an int is a float too; a bool is no number); else a ConfigError."""
    ok = isinstance(value, _TYPES[kind]) or (kind == "float" and isinstance(value, int))
    if not ok or (kind in {"int", "float"} and isinstance(value, bool)):
        raise ConfigError(f"{key} must be {_TYPE_NAMES[kind]}, not {value!r}")
    return float(value) if kind == "float" else value


def _table(key: str, value: Any, cls: type, example: str) -> dict[str, Any]:
    """``value`` if it is a table of ``cls``'s fields; else a ConfigError naming the known keys."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table of {example}, not {value!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown {key} keys {unknown}; known: {', '.join(sorted(known))}")
    return value


def _reenact(value: Any) -> ReenactConfig:
    """A ReenactConfig, or a ``[reenact]`` table of its keys over the defaults."""
    if isinstance(value, ReenactConfig):
        return value
    try:
        return ReenactConfig(**_table("reenact", value, ReenactConfig, "settings (e.g. [reenact] mouth = 0.05)"))
    except (TypeError, ValueError) as exc:  # a value of the wrong type
        raise ConfigError(f"bad reenact table {value}: {exc}") from None


def _mix(value: Any) -> Mix:
    """A Mix, or a ``[mix]`` table of numbers over the default shares."""
    if isinstance(value, Mix):
        return value
    value = _table("mix", value, Mix, "shares (e.g. [mix] sbi = 0.25)")
    mix = Mix(**{**dataclasses.asdict(Mix(sbi=-1.0)), **{k: _typed(f"mix.{k}", v, "float") for k, v in value.items()}})
    generated = [v for k, v in shares(mix).items() if k != "sbi"]  # sbi < 0 means its default
    if not (mix.real > 0 and mix.dfdc_fake >= 0 and mix.sbi <= 1 and 0 <= mix.utk_share <= 1 and 0 <= mix.sbi_regional <= 1
            and all(0 <= v <= 1 for v in generated)):
        raise ConfigError(f"bad mix {value}: real > 0, dfdc_fake >= 0, sbi <= 1 (< 0: the default), "
                          f"utk_share, sbi_regional and {', '.join(k for k in shares(mix) if k != 'sbi')} in [0, 1]")
    return mix


def check_device(device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; CUDA only where torch sees a CUDA device."""
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, not {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device {device}: no CUDA device is available here (use cpu or auto)")


FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Keys of a TOML file (or a saved config.json); a ``[train]`` table is accepted too."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("train", {}), dict):
        raise ConfigError(f"{path}: must hold a table (JSON object) of TrainConfig keys, or a [train] table of them")
    data = data.get("train", data)
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; known: {', '.join(sorted(FIELDS))}")
    return data


def resolve_config(file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults < fine-tune preset < file < overrides (only the keys present)."""
    values: dict[str, Any] = dict(read_config_file(file)) if file else {}
    overrides = overrides or {}
    unknown = sorted(set(overrides) - FIELDS)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}")
    values.update(overrides)
    if values.get("finetune"):
        values = {**FINETUNE_PRESET, **values}
    try:
        return TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"bad config: {exc}") from None
