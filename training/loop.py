"""The training loop: config, data, AdamW + warmup/cosine, per-epoch validation and checkpoints."""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from unmask.model.architectures import create_model, default_config
from unmask.model.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from unmask.model.config import IMAGENET_MEAN, IMAGENET_STD, CropConfig, ModelConfig

from . import metrics
from .datasets import VAL_PERMILLE, EvalDataset, Mix, TrainDataset, dfdc_records, utk_records
from .imagenet_lite0 import load_imagenet_lite0
from .landmarks import load_or_compute

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in the checkpoint's ``training.recipe``)."""

    data: str = "../shared/data"
    out_dir: str = "runs/default"
    name: str = "lite0-dfdc-sbi"
    version: str = "1"
    architecture: str = "lite0"
    input_size: int = 0  # 0: the architecture's default
    init: str = "imagenet"  # imagenet | none | path of a checkpoint to fine-tune
    epochs: int = 5
    samples_per_epoch: int = 7000
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    label_smoothing: float = 0.1
    amp: str = "none"  # none | bf16 | fp16 (autocast; CUDA only in practice)
    workers: int = 1
    threads: int = 0  # torch threads; 0 keeps torch's default
    seed: int = 0
    device: str = "auto"
    mix: Mix = field(default_factory=Mix)
    use_utkface: bool = True
    val_permille: int = VAL_PERMILLE
    val_limit: int = 0  # cap on DFDC val crops (and SBI val reals) per class; 0 = all
    landmark_cache: str = "runs/landmarks_real.npy"
    log_every: int = 20
    max_steps: int = 0  # stop after this many steps in total (tests); 0 = no cap
    command: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.mix, dict):
            self.mix = Mix(**self.mix)
        if self.amp not in {"none", "bf16", "fp16"}:
            raise ValueError(f"amp must be none, bf16 or fp16, not {self.amp!r}")
        if self.epochs < 1 or self.samples_per_epoch < 1 or self.batch_size < 1:
            raise ValueError("epochs, samples_per_epoch and batch_size must be positive")


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cap_per_label(records, limit: int, seed: int):
    """At most ``limit`` records per label (deterministic); all when limit is 0."""
    if not limit:
        return records
    rng = random.Random(seed)
    out = []
    for label in (0, 1):
        group = [r for r in records if r.label == label]
        out += sorted(rng.sample(group, min(limit, len(group))), key=lambda r: r.path)
    return out


def build_model(cfg: TrainConfig) -> tuple[nn.Module, ModelConfig, str | None]:
    """The model with its initial weights, its serving config, and the parent checkpoint (if any)."""
    if cfg.init == "imagenet":
        if cfg.architecture != "lite0":
            raise ValueError(f"ImageNet init is only packaged for lite0, not {cfg.architecture!r}")
        model = create_model(cfg.architecture)
        mean, std = load_imagenet_lite0(model.backbone)
        parent = None
    elif cfg.init == "none":
        model, (mean, std), parent = create_model(cfg.architecture), (IMAGENET_MEAN, IMAGENET_STD), None
    else:
        model, info = load_checkpoint(cfg.init)
        if info.config.architecture != cfg.architecture:
            raise ValueError(f"--init checkpoint is {info.config.architecture!r}, not {cfg.architecture!r}")
        mean, std, parent = info.config.mean, info.config.std, f"{info.name}@{info.version}"
    size = cfg.input_size or default_config(cfg.architecture).input_size
    config = ModelConfig(
        architecture=cfg.architecture,
        input_size=size,
        mean=mean,
        std=std,
        crop=CropConfig(scale=0.85, shift_y=0.04),
        threshold=0.5,
        tta=("identity", "hflip"),
    )
    return model, config, parent


@torch.no_grad()
def predict(model: nn.Module, dataset, batch_size: int, device: torch.device, workers: int = 0):
    """(labels, P(fake)) over a dataset."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    ys, ps = [], []
    for x, y, _ in loader:
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        ps.append(torch.sigmoid(model(x).float()).cpu().numpy())
        ys.append(y.numpy())
    return np.concatenate(ys), np.concatenate(ps)


def train(cfg: TrainConfig) -> Path:
    """Run training; return the weights path of the last epoch's checkpoint."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    data = Path(cfg.data).resolve()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    model, mconfig, parent = build_model(cfg)
    model = model.to(device).to(memory_format=torch.channels_last)

    train_recs = dfdc_records(data, "train", cfg.val_permille)
    val_recs = cap_per_label(dfdc_records(data, "val", cfg.val_permille), cfg.val_limit, cfg.seed)
    dfdc_reals = [r for r in train_recs if r.label == 0]
    dfdc_fakes = [r for r in train_recs if r.label == 1]
    utk = utk_records(data) if cfg.use_utkface else []
    val_reals = [r for r in val_recs if r.label == 0]
    lms = load_or_compute([r.path for r in dfdc_reals + utk + val_reals], cfg.landmark_cache)
    log.info(
        "data: train %d DFDC real, %d DFDC fake, %d UTKFace real; val %d real, %d fake",
        len(dfdc_reals),
        len(dfdc_fakes),
        len(utk),
        len(val_reals),
        len(val_recs) - len(val_reals),
    )
    size, mean, std = mconfig.input_size, mconfig.mean, mconfig.std
    train_ds = TrainDataset(dfdc_reals, utk, dfdc_fakes, lms, cfg.samples_per_epoch, size, mean, std, cfg.mix, cfg.seed)
    val_ds = EvalDataset(val_recs, size, mean, std)
    sbi_ds = EvalDataset(val_reals, size, mean, std, landmarks=lms, sbi=True)

    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )
    steps_per_epoch = cfg.samples_per_epoch // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(min(cfg.warmup_steps, total), total))
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    loss_fn = nn.BCEWithLogitsLoss()

    recipe = dataclasses.asdict(cfg)
    training_meta = {
        "data": {
            "root": str(data),
            "dfdc_faces": {
                "train_real": len(dfdc_reals),
                "train_fake": len(dfdc_fakes),
                "val_real": len(val_reals),
                "val_fake": len(val_recs) - len(val_reals),
            },
            "utkface_real": len(utk),
            "split": f"dfdc_faces by group: sha1(group)[:8] as hex int mod 1000 < {cfg.val_permille} -> validation",
            "sbi": "self-blended fakes made on the fly from train reals (DFDC + UTKFace), dlib 68-point hull masks",
        },
        "recipe": recipe,
        "command": cfg.command or shlex.join(sys.argv),
    }
    csv_path = out / "metrics.csv"
    history: list[dict] = []
    step = 0
    last_path = out / "epoch1.safetensors"
    for epoch in range(1, cfg.epochs + 1):
        train_ds.set_epoch(epoch)
        loader = DataLoader(
            train_ds, batch_size=cfg.batch_size, num_workers=cfg.workers, drop_last=True, persistent_workers=False
        )
        model.train()
        start, seen, loss_sum = time.monotonic(), 0, 0.0
        for x, y, _ in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device)
            target = y * (1 - cfg.label_smoothing) + 0.5 * cfg.label_smoothing
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(model(x).float(), target)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            seen += len(y)
            loss_sum += loss.item() * len(y)
            if step % cfg.log_every == 0:
                rate = seen / (time.monotonic() - start)
                log.info(
                    "epoch %d step %d/%d loss %.4f lr %.2e %.1f img/s",
                    epoch,
                    step,
                    total,
                    loss_sum / seen,
                    sched.get_last_lr()[0],
                    rate,
                )
            if cfg.max_steps and step >= total:
                break
        train_time = time.monotonic() - start
        t0 = time.monotonic()
        yv, pv = predict(model, val_ds, 64, device, cfg.workers)
        ys, ps = predict(model, sbi_ds, 64, device, cfg.workers)
        real = yv == 0
        dfdc = metrics.summary(yv, pv)
        sbi = metrics.summary(np.r_[yv[real], ys], np.r_[pv[real], ps])
        row = {
            "epoch": epoch,
            "step": step,
            "train_loss": loss_sum / max(1, seen),
            "train_img_s": seen / max(train_time, 1e-9),
            "val_seconds": time.monotonic() - t0,
            **{f"dfdc_{k}": v for k, v in dfdc.items()},
            **{f"sbi_{k}": v for k, v in sbi.items()},
        }
        history.append(row)
        log.info(
            "epoch %d: DFDC auc %.4f log_loss %.4f | SBI auc %.4f log_loss %.4f | %.1f img/s",
            epoch,
            dfdc["auc"],
            dfdc["log_loss"],
            sbi["auc"],
            sbi["log_loss"],
            row["train_img_s"],
        )
        with csv_path.open("a" if epoch > 1 else "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if epoch == 1:
                writer.writeheader()
            writer.writerow(row)
        info = CheckpointInfo(
            name=cfg.name,
            version=cfg.version,
            config=mconfig,
            training=training_meta,
            parent=parent,
            metrics={
                "epoch": epoch,
                "dfdc_val": dfdc,
                "sbi_val": sbi,
                "sbi_val_note": "SBI fakes made once (fixed seed) from the DFDC val reals, scored against those reals",
                "history": history,
            },
        )
        last_path = save_checkpoint(out / f"epoch{epoch}", model, info)
        log.info("saved %s", last_path)
        if cfg.max_steps and step >= total:
            break
    return last_path
