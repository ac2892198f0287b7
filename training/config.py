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
    use_utkface: bool = True
    augment: AugmentConfig = field(default_factory=lambda: augment_config("light"))  # preset name or table
    val_permille: int = VAL_PERMILLE
    val_limit: int = 0  # cap on val crops (and SBI val reals) per class; 0 = all
    cache: bool = True  # decode crops once into a uint8 memory map (else read the JPEGs every time)
    cache_dir: str = ""  # crops and landmarks caches; "": $UNMASK_CACHE_DIR/training (~/.cache/unmask/training)
    log_every: int = 20
    max_steps: int = 0  # stop (as if killed) after this many steps in total; resume with --resume
    resume: bool = False
    progress: bool = True  # tqdm bar on a terminal
    command: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.mix, dict):
            self.mix = Mix(**{**dataclasses.asdict(Mix(sbi=-1.0)), **self.mix})
        self.augment = augment_config(self.augment)
        checks = [
            (self.amp in {"none", "bf16", "fp16"}, f"amp must be none, bf16 or fp16, not {self.amp!r}"),
            (self.loss in {"bce", "focal"}, f"loss must be bce or focal, not {self.loss!r}"),
            (min(self.epochs, self.samples_per_epoch, self.batch_size, self.accum_steps) >= 1,
             "epochs, samples_per_epoch, batch_size and accum_steps must be positive"),
            (self.lr > 0 and self.lr_scale > 0, "lr and lr_scale must be positive"),
            (0 <= self.ema < 1, "ema must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


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
