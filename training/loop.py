"""The training loop: AdamW + warmup/cosine, per-epoch validation, checkpoints and resumable state.

Data is either the shared DFDC crops (+ UTKFace reals and SBI fakes) or any
crops manifest (``manifest``). Runs as one process or under torchrun (DDP).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import json
import logging
import math
import random
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from unmask.model.architectures import create_model, default_config
from unmask.model.checkpoint import CheckpointInfo, checkpoint_paths, load_checkpoint, resolve_checkpoint, save_checkpoint
from unmask.model.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig

from . import distributed, metrics
from .config import TrainConfig
from .datasets import EvalDataset, Mix, TrainDataset, dfdc_records, manifest_records, split_records, utk_records
from .errors import ConfigError
from .evaluate import predict
from .losses import make_loss, mixup
from .state import EMA, STATE_JSON, load_state, save_state

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "train", "build_model", "cap_per_label", "predict"]


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_model(cfg: TrainConfig) -> tuple[nn.Module, ModelConfig, dict, dict | None]:
    """(model with initial weights, serving config, architecture kwargs, parent info or None)."""
    kwargs = {"cbam": True} if cfg.cbam else {}
    if cfg.init in {"imagenet", "none"}:
        if cfg.init == "imagenet" and cfg.architecture != "lite0":
            raise ConfigError(f"ImageNet init is only packaged for lite0, not {cfg.architecture!r} (use init = \"none\")")
        model = create_model(cfg.architecture, **kwargs)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if cfg.init == "imagenet":
            from .imagenet_lite0 import load_imagenet_lite0

            mean, std = load_imagenet_lite0(model.backbone)
        size = cfg.input_size or default_config(cfg.architecture).input_size
        config = ModelConfig(cfg.architecture, size, mean, std)  # crop, threshold and TTA: the serving defaults
        return model, config, kwargs, None
    path = resolve_checkpoint(cfg.init)
    model, info = load_checkpoint(path)
    kwargs = dict(info.architecture_kwargs)
    if cfg.cbam and not kwargs.get("cbam"):
        raise ConfigError(f"{cfg.init}: has no CBAM; cbam cannot be added when fine-tuning")
    if cfg.architecture != info.config.architecture:
        log.info("init %s: architecture %s (from the checkpoint)", path.name, info.config.architecture)
        cfg.architecture = info.config.architecture
    config = dataclasses.replace(info.config, input_size=cfg.input_size or info.config.input_size)
    sha = file_sha256(checkpoint_paths(path)[0])
    parent = {"name": info.name, "version": info.version, "sha256": sha, "path": str(path),
              "recipe": info.training.get("recipe")}
    return model, config, kwargs, parent


def set_frozen(model: nn.Module, n_blocks: int, frozen: bool) -> None:
    """Freeze (or unfreeze) the stem and the lowest ``n_blocks`` blocks of the backbone."""
    bb = model.backbone
    parts = [getattr(bb, "conv_stem", None), getattr(bb, "bn1", None), *list(getattr(bb, "blocks", []))[:n_blocks]]
    for part in parts:
        if part is None:
            continue
        for p in part.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            part.eval()  # keep BatchNorm statistics of frozen layers


def _data(cfg: TrainConfig, data: Path):
    """(train reals, UTK reals, train fakes, val records, description)."""
    if cfg.manifest:
        recs = manifest_records(cfg.manifest)
        train_recs, val_recs = split_records(recs, "train", cfg.val_permille), split_records(recs, "val", cfg.val_permille)
        utk = []
        desc = {"manifest": str(Path(cfg.manifest).resolve()),
                "split": "the manifest's split column" if all(r.split for r in recs)
                else f"by group: sha1(group)[:8] as hex int mod 1000 < {cfg.val_permille} -> validation"}
    else:
        train_recs, val_recs = dfdc_records(data, "train", cfg.val_permille), dfdc_records(data, "val", cfg.val_permille)
        utk = utk_records(data) if cfg.use_utkface else []
        desc = {"root": str(data),
                "split": f"dfdc_faces by group: sha1(group)[:8] as hex int mod 1000 < {cfg.val_permille} -> validation"}
    val_recs = cap_per_label(val_recs, cfg.val_limit, cfg.seed)
    reals, fakes = [r for r in train_recs if r.label == 0], [r for r in train_recs if r.label == 1]
    desc.update(train_real=len(reals), train_fake=len(fakes), utkface_real=len(utk),
                val_real=sum(r.label == 0 for r in val_recs), val_fake=sum(r.label == 1 for r in val_recs))
    return reals, utk, fakes, val_recs, desc


def _mix(cfg: TrainConfig, n_real: int, n_fake: int) -> Mix:
    """Shares per epoch. Balanced: real = fake + SBI (fakes fill what SBI leaves); else fakes as they occur."""
    sbi = cfg.mix.sbi if cfg.mix.sbi >= 0 else (0.0 if cfg.manifest else 0.25)
    real = cfg.mix.real
    if cfg.balance:
        fake = max(real - sbi, 0.0)
    else:  # reals and stored fakes as often as they occur
        fake = real * n_fake / max(1, n_real)
    return Mix(real=real, dfdc_fake=fake, sbi=sbi, utk_share=cfg.mix.utk_share)


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; return the weights path of the last checkpoint written."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    d, device = distributed.init(cfg.device)
    stop = _StopRequest(d.world == 1)  # SIGINT/SIGTERM: finish the step, save state, then stop
    try:
        return _train(cfg, d, device, stop)
    finally:
        stop.restore()
        distributed.shutdown()


def _train(cfg: TrainConfig, d: distributed.Dist, device: torch.device, stop: "_StopRequest") -> Path:
    data = Path(cfg.data).resolve()
    out = Path(cfg.out_dir)
    if cfg.resume and not (out / STATE_JSON).is_file():
        raise ConfigError(f"{out}: nothing to resume (no {STATE_JSON}); drop --resume to start a new run")
    model, mconfig, arch_kwargs, parent = build_model(cfg)
    if parent and cfg.name == TrainConfig.name:  # no name given: not the parent's own name
        cfg.name = f"{parent['name']}-ft"
    model = model.to(device).to(memory_format=torch.channels_last)

    reals, utk, fakes, val_recs, data_desc = _data(cfg, data)
    mix = _mix(cfg, len(reals) + len(utk), len(fakes))
    lms = {}
    if mix.sbi > 0:
        from .landmarks import load_or_compute

        lms = load_or_compute([r.path for r in reals + utk + val_recs if r.label == 0], cfg.landmark_cache)
    log.info("data: train %d real, %d fake, %d UTKFace real; val %d real, %d fake; mix %s",
             len(reals), len(fakes), len(utk), data_desc["val_real"], data_desc["val_fake"], mix)
    size, mean, std = mconfig.input_size, mconfig.mean, mconfig.std
    train_ds = TrainDataset(reals, utk, fakes, lms, cfg.samples_per_epoch, size, mean, std, mix, cfg.seed)
    val_ds = EvalDataset(val_recs, size, mean, std) if val_recs else None
    val_reals = [r for r in val_recs if r.label == 0]
    sbi_ds = EvalDataset(val_reals, size, mean, std, landmarks=lms, sbi=True) if mix.sbi > 0 and val_reals else None

    lr = cfg.lr * cfg.lr_scale
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    per_step = cfg.batch_size * cfg.accum_steps * d.world
    steps_per_epoch = cfg.samples_per_epoch // per_step
    if steps_per_epoch < 1:
        raise ConfigError(f"samples_per_epoch {cfg.samples_per_epoch} < batch_size x accum_steps x world ({per_step})")
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(min(cfg.warmup_steps, total), total))
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    loss_fn = make_loss(cfg.loss, cfg.focal_gamma, cfg.focal_alpha)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None

    step, epoch0, skip, history = 0, 1, 0, []
    if cfg.resume:
        state = load_state(out, model=model, opt=opt, sched=sched, scaler=scaler, ema=ema)
        step, history = state["step"], state.get("history", [])
        epoch0, skip = state["epoch"], state["step_in_epoch"]
        if skip >= steps_per_epoch:
            epoch0, skip = epoch0 + 1, 0
        log.info("resumed %s at step %d (epoch %d, step %d of it)", out, step, epoch0, skip)

    recipe = dataclasses.asdict(cfg)
    training_meta = {"data": {**data_desc, "sbi": "self-blended fakes from train reals" if mix.sbi > 0 else "off"},
                     "recipe": recipe, "command": cfg.command or shlex.join(sys.argv), "world_size": d.world}
    if parent:
        training_meta["parent"] = parent
    parent_ref = f"{parent['name']}@{parent['version']} sha256:{parent['sha256'][:16]}" if parent else None
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(recipe, indent=2) + "\n")
    csv_path = out / "metrics.csv"
    last_path = out / f"epoch{max(1, epoch0 - 1)}.safetensors"
    frozen = None
    stopped = False
    for epoch in range(epoch0, cfg.epochs + 1):
        want_frozen = cfg.freeze_blocks > 0 and epoch <= cfg.freeze_epochs
        model.train()
        if want_frozen or frozen:
            set_frozen(model, cfg.freeze_blocks, want_frozen)
        if want_frozen != frozen:
            log.info("epoch %d: lower %d blocks %s", epoch, cfg.freeze_blocks, "frozen" if want_frozen else "trainable")
            frozen = want_frozen
        net = model
        if d.world > 1:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        train_ds.set_epoch(epoch)
        start_item = (skip if epoch == epoch0 else 0) * cfg.batch_size * cfg.accum_steps
        indices = distributed.shard(steps_per_epoch * per_step, d, start_item)
        loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=indices, num_workers=cfg.workers, drop_last=True,
                            generator=torch.Generator().manual_seed(cfg.seed + epoch))  # keeps the global RNG for dropout
        start, seen, loss_sum = time.monotonic(), 0, 0.0
        bar = _progress(cfg, d, total, step, epoch)
        micro = 0
        for x, y, _ in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device)
            target = y * (1 - cfg.label_smoothing) + 0.5 * cfg.label_smoothing
            x, target = mixup(x, target, cfg.mixup)
            micro += 1
            sync = micro % cfg.accum_steps == 0
            ctx = net.no_sync() if d.world > 1 and not sync else _null()
            with ctx:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss = loss_fn(net(x).float(), target)
                scaler.scale(loss / cfg.accum_steps).backward()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            if not sync:
                continue
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            sched.step()
            if ema is not None:
                ema.update(model)
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
            if step % cfg.log_every == 0 and d.main:
                log.info("epoch %d step %d/%d loss %.4f lr %.2e %.1f img/s", epoch, step, total, loss_sum / seen,
                         sched.get_last_lr()[0], seen * d.world / (time.monotonic() - start))
            if (cfg.max_steps and step >= cfg.max_steps) or stop.requested:
                stopped = True
                break
        if bar is not None:
            bar.close()
        train_time = time.monotonic() - start
        step_in_epoch = step - (epoch - 1) * steps_per_epoch
        if d.main:
            scalars = {"step": step, "epoch": epoch, "step_in_epoch": step_in_epoch, "history": history}
            if not stopped or step_in_epoch >= steps_per_epoch:
                row, last_path = _end_epoch(cfg, out, csv_path, model, ema, mconfig, arch_kwargs, training_meta, parent_ref,
                                            val_ds, sbi_ds, device, epoch, step, loss_sum / max(1, seen),
                                            seen * d.world / max(train_time, 1e-9), train_time, history)
                scalars["history"] = history
            save_state(out, model=model, opt=opt, sched=sched, scaler=scaler, ema=ema, scalars=scalars)
        d.barrier()
        if stopped:
            log.info("stopped at step %d; state saved, continue with --resume", step)
            break
    if stop.requested:
        raise KeyboardInterrupt(f"interrupted at step {step}; resume with --resume")
    return last_path


def _end_epoch(cfg, out, csv_path, model, ema, mconfig, arch_kwargs, training_meta, parent_ref, val_ds, sbi_ds, device,
               epoch, step, train_loss, img_s, train_time, history):
    """Validate, append metrics.csv, write the epoch checkpoint (EMA weights when EMA is on)."""
    served = model
    if ema is not None:
        served = copy.deepcopy(model)
        ema.copy_to(served)
    t0 = time.monotonic()
    prefix = "manifest" if cfg.manifest else "dfdc"
    row = {"epoch": epoch, "step": step, "train_loss": train_loss, "train_img_s": img_s, "train_seconds": train_time}
    evals = {}
    if val_ds is not None:
        yv, pv = predict(served, val_ds, 64, device, cfg.workers)
        evals[f"{prefix}_val"] = metrics.summary(yv, pv)
        if sbi_ds is not None:
            ys, ps = predict(served, sbi_ds, 64, device, cfg.workers)
            real = yv == 0
            evals["sbi_val"] = metrics.summary(np.r_[yv[real], ys], np.r_[pv[real], ps])
    row["val_seconds"] = time.monotonic() - t0
    for name, summary in evals.items():
        row.update({f"{name.removesuffix('_val')}_{k}": v for k, v in summary.items()})
    history.append(row)
    log.info("epoch %d: %s | %.1f img/s, %.0f s", epoch,
             " | ".join(f"{k} auc {v['auc']:.4f} log_loss {v['log_loss']:.4f}" for k, v in evals.items()) or "no val", img_s, train_time)
    new = not csv_path.exists()
    with csv_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    info = CheckpointInfo(name=cfg.name, version=cfg.version, config=mconfig, architecture_kwargs=arch_kwargs,
                          training=training_meta, parent=parent_ref,
                          metrics={"epoch": epoch, "ema": cfg.ema or None, **evals, "history": history})
    path = save_checkpoint(out / f"epoch{epoch}", served, info)
    log.info("saved %s", path)
    return row, path


def _progress(cfg, d, total, step, epoch):
    if not (cfg.progress and d.main):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=step, desc=f"epoch {epoch}", unit="step", leave=False, disable=None)


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked after each optimizer step (single process, main thread)."""

    def __init__(self, enabled: bool) -> None:
        self.requested, self._old = False, {}
        if enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second signal: stop now
            raise KeyboardInterrupt
        log.warning("signal %d: stopping after this step (again to stop now)", signum)
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
