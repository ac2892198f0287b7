"""The training loop, split timm's way: ``setup``, ``train_one_epoch``, ``validate``, checkpointing.

Data is either the shared DFDC crops (+ UTKFace reals and pseudo-fakes) or any
crops manifest (``manifest``). Crops are decoded once into a uint8 cache
(``training/cache.py``); per-item work (pseudo-fakes, JPEG/blur/down-up scaling)
runs in the DataLoader worker, batch augmentation in the main process.
Runs as one process or under torchrun (DDP).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..model.architectures import create_model
from ..model.checkpoint import CheckpointInfo, checkpoint_paths, load_checkpoint, resolve_checkpoint, save_checkpoint
from ..model.config import ModelConfig, default_config
from ..model.paths import cache_dir as user_cache_dir
from . import ddp, fakes, metrics
from .cache import build_cache, load_image
from .config import TrainConfig
from .datasets import (
    DataError,
    EvalDataset,
    FaceRecord,
    ImageReader,
    JpegReader,
    Mix,
    TrainDataset,
    dfdc_records,
    manifest_records,
    shared_data_dir,
    split_records,
    utk_records,
)
from .errors import ConfigError
from .evaluate import predict
from .losses import make_loss, mixup
from .state import EMA, STATE_JSON, load_state, save_state
from .transforms import BatchAugment

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "train", "build_model", "cap_per_label", "predict"]


# -- setup -------------------------------------------------------------------


def lr_lambda(warmup: int, total: int):
    """Linear warmup over ``warmup`` steps, then cosine to 0 at ``total``."""

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
        model = create_model(cfg.architecture, **kwargs)
        native = default_config(cfg.architecture)  # the backbone entry's size and normalisation
        mean, std = native.mean, native.std
        if cfg.init == "imagenet":
            from ..model.backbones import with_imagenet_weights
            from .imagenet_lite import load_imagenet_lite

            if cfg.architecture not in with_imagenet_weights():
                raise ConfigError(f"ImageNet init is only packaged for {', '.join(with_imagenet_weights())}, not "
                                  f"{cfg.architecture!r} (use init = \"none\")")
            mean, std = load_imagenet_lite(model.backbone, cfg.architecture)
        size = cfg.input_size or native.input_size
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
    # A fine-tuned model is calibrated afresh: its parent's temperature and uncertain band no longer fit.
    config = dataclasses.replace(info.config, input_size=cfg.input_size or info.config.input_size, temperature=1.0,
                                 uncertain_band=None, uncertain_level=None)
    sha = file_sha256(checkpoint_paths(path)[0])
    # the parent as given (a bundled name or the path typed), not this machine's resolved path
    parent = {"name": info.name, "version": info.version, "sha256": sha, "path": cfg.init,
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


@dataclass
class TrainData:
    reals: list[FaceRecord]
    utk: list[FaceRecord]
    fakes: list[FaceRecord]
    val: list[FaceRecord]
    description: dict[str, Any]


def load_records(cfg: TrainConfig) -> TrainData:
    """Train reals, UTKFace reals, train fakes and validation records, split by group (or the manifest's split)."""
    if cfg.manifest:
        recs = manifest_records(cfg.manifest)
        train_recs, val_recs = split_records(recs, "train", cfg.val_permille), split_records(recs, "val", cfg.val_permille)
        if not train_recs:
            raise DataError(f"{cfg.manifest}: no training rows" + (" (no split 'train' in its split column)"
                            if recs and all(r.split for r in recs) else ""))
        utk = []
        desc = {"manifest": str(Path(cfg.manifest).resolve()),
                "split": "the manifest's split column" if all(r.split for r in recs)
                else f"by group: sha1(group)[:8] as hex int mod 1000 < {cfg.val_permille} -> validation"}
    else:
        data = Path(cfg.data).resolve() if cfg.data else shared_data_dir()
        train_recs, val_recs = dfdc_records(data, "train", cfg.val_permille), dfdc_records(data, "val", cfg.val_permille)
        utk = utk_records(data) if cfg.use_utkface else []
        # as given, not resolved: a checkpoint that is shared must not carry this machine's paths
        desc = {"root": cfg.data or "the shared data folder",
                "split": f"dfdc_faces by group: sha1(group)[:8] as hex int mod 1000 < {cfg.val_permille} -> validation"}
    val_recs = cap_per_label(val_recs, cfg.val_limit, cfg.seed)
    reals, fakes = [r for r in train_recs if r.label == 0], [r for r in train_recs if r.label == 1]
    desc.update(train_real=len(reals), train_fake=len(fakes), utkface_real=len(utk),
                val_real=sum(r.label == 0 for r in val_recs), val_fake=sum(r.label == 1 for r in val_recs))
    return TrainData(reals, utk, fakes, val_recs, desc)


def epoch_mix(cfg: TrainConfig, n_real: int, n_fake: int) -> Mix:
    """Shares per epoch. Balanced: real = stored fakes + pseudo-fakes (stored fakes fill what they leave); else
    stored fakes as they occur."""
    sbi = cfg.mix.sbi if cfg.mix.sbi >= 0 else (0.0 if cfg.manifest else 0.25)
    mix = dataclasses.replace(cfg.mix, sbi=sbi)
    real = cfg.mix.real
    if cfg.balance:
        fake = max(real - sum(fakes.shares(mix).values()), 0.0)
    else:  # reals and stored fakes as often as they occur
        fake = real * n_fake / max(1, n_real)
    return dataclasses.replace(mix, dfdc_fake=fake)  # every other share (UTKFace, regional SBI, generators) as configured


@dataclass
class TrainRun:
    """What the epoch functions share: the model, its optimiser, data and bookkeeping."""

    cfg: TrainConfig
    dist: ddp.Dist
    device: torch.device
    out: Path
    model: nn.Module
    mconfig: ModelConfig
    arch_kwargs: dict
    meta: dict  # the checkpoint's "training" section
    parent_ref: str | None
    train_ds: TrainDataset
    val_ds: EvalDataset | None
    fake_ds: dict[str, EvalDataset]  # fixed pseudo-fakes of the val reals, by generator
    augment: BatchAugment
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: EMA | None
    steps_per_epoch: int
    step: int = 0
    history: list[dict] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg.epochs

    @property
    def per_step(self) -> int:
        return self.cfg.batch_size * self.cfg.accum_steps * self.dist.world


# Keys that leave the weights of a resumed run as they were (the rest define the run and must not change).
RESUME_FREE = {"out_dir", "name", "version", "workers", "threads", "device", "val_limit", "cache", "cache_dir", "log_every",
               "max_steps", "resume", "progress", "command"}


def check_run_folder(cfg: TrainConfig) -> None:
    """Before anything is written: a new run never overwrites a run's state; a resumed one keeps its settings."""
    out = Path(cfg.out_dir)
    if not cfg.resume:
        if (out / STATE_JSON).is_file():
            raise ConfigError(f"{out} already holds a run (its {STATE_JSON}): pass --resume to continue it, "
                              "or choose another --out")
        return
    if not (out / STATE_JSON).is_file():
        raise ConfigError(f"{out}: nothing to resume (no {STATE_JSON}); drop --resume to start a new run")
    saved_path = out / "config.json"
    if not saved_path.is_file():
        return
    try:
        saved = json.loads(saved_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{saved_path}: cannot read the run's settings ({exc})") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{saved_path}: not a run's settings (a JSON object)")
    now = json.loads(json.dumps(dataclasses.asdict(cfg)))  # tuples as lists, as saved
    for key, value in now.items():  # a table saved before a key was added: that key at its default (off)
        if isinstance(saved.get(key), dict) and dataclasses.is_dataclass(getattr(cfg, key)):
            default = json.loads(json.dumps(dataclasses.asdict(type(getattr(cfg, key))())))
            saved[key] = {**{k: v for k, v in default.items() if k in value}, **saved[key]}
    skip = RESUME_FREE | ({"architecture"} if cfg.init not in {"imagenet", "none"} else set())  # fine-tune: the parent's
    changed = sorted(k for k in now if k not in skip and k in saved and saved[k] != now[k])
    if changed:
        was = ", ".join(f"{k} {saved[k]!r}" for k in changed)
        raise ConfigError(f"{out} was trained with {was}; --resume with other values would not reproduce the run: pass "
                          f"the same settings (e.g. --config {saved_path} --resume) or choose another --out")


def setup(cfg: TrainConfig, d: ddp.Dist, device: torch.device) -> TrainRun:
    """Build the model, data (cached crops, landmarks for pseudo-fakes), optimiser and schedule of a run."""
    out = Path(cfg.out_dir)
    model, mconfig, arch_kwargs, parent = build_model(cfg)
    if parent and cfg.name == TrainConfig.name:  # no name given: not the parent's own name
        cfg.name = f"{parent['name']}-ft"
    model = model.to(device).to(memory_format=torch.channels_last)

    data = load_records(cfg)
    mix = epoch_mix(cfg, len(data.reals) + len(data.utk), len(data.fakes))
    paths = [r.path for r in data.reals + data.utk + data.fakes + data.val]
    cache = Path(cfg.cache_dir) if cfg.cache_dir else user_cache_dir() / "training"
    read = crop_reader(cfg, mconfig, paths, cache)
    makers = fakes.build(mix, cfg)
    lms = {}
    if makers:
        from .landmarks import load_or_compute

        real_paths = [r.path for r in data.reals + data.utk + data.val if r.label == 0]
        lms = load_or_compute(real_paths, cache / landmarks_name(cfg, mconfig), read)
    log.info("data: train %d real, %d fake, %d UTKFace real; val %d real, %d fake; mix %s",
             len(data.reals), len(data.fakes), len(data.utk), data.description["val_real"], data.description["val_fake"], mix)
    train_ds = TrainDataset(data.reals, data.utk, data.fakes, lms, cfg.samples_per_epoch, read, cfg.augment, mix, cfg.seed,
                            makers)
    val_ds = EvalDataset(data.val, read) if data.val else None
    val_reals = [r for r in data.val if r.label == 0]
    fake_ds = {name: EvalDataset(val_reals, read, landmarks=lms, make_fake=make)
               for name, make in fakes.build(mix, cfg, train=False).items()} if val_reals else {}

    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr * cfg.lr_scale)
    per_step = cfg.batch_size * cfg.accum_steps * d.world
    steps_per_epoch = cfg.samples_per_epoch // per_step
    if steps_per_epoch < 1:
        raise ConfigError(f"samples_per_epoch {cfg.samples_per_epoch} < batch_size x accum_steps x world ({per_step})")
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(min(cfg.warmup_steps, total), total))
    made = {name: share for name, share in fakes.shares(mix).items() if share > 0}  # share of the items, made from train reals
    meta = {"data": {**data.description, "pseudo_fakes": made},
            "recipe": dataclasses.asdict(cfg), "command": cfg.command or shlex.join(sys.argv), "world_size": d.world}
    if parent:
        meta["parent"] = parent
    return TrainRun(
        cfg=cfg, dist=d, device=device, out=out, model=model, mconfig=mconfig, arch_kwargs=arch_kwargs, meta=meta,
        parent_ref=f"{parent['name']}@{parent['version']} sha256:{parent['sha256'][:16]}" if parent else None,
        train_ds=train_ds, val_ds=val_ds, fake_ds=fake_ds, augment=BatchAugment(cfg.augment, mconfig.mean, mconfig.std),
        opt=opt, sched=sched, scaler=torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16"),
        ema=EMA(model, cfg.ema) if cfg.ema > 0 else None, steps_per_epoch=steps_per_epoch,
    )


def crop_reader(cfg: TrainConfig, mconfig: ModelConfig, paths: list[str], cache: Path) -> ImageReader:
    """path -> the training image of a crop: as given and resized, or (``aligned``) re-cut as the service cuts it.

    Aligned crops cost an MTCNN call each, so uncached runs pay it on every read.
    """
    size = mconfig.input_size
    load, variant = load_image, ""
    if cfg.aligned:
        from .align import AlignedLoader

        load = AlignedLoader(mconfig)
        variant = load.variant
    if cfg.cache:
        crops = build_cache(paths, size, cache / crops_name(cfg, mconfig), load=load, variant=variant)
        if cfg.aligned:
            log.info("aligned crops: no face found in %d of %d (used as given)", crops.misses, len(crops))
        return crops
    return JpegReader(size, load)


def _pixels_kind(cfg: TrainConfig, mconfig: ModelConfig) -> str:
    """"" for crops as given; else names the aligned cut, crop geometry included, so each cut has its own files."""
    if not cfg.aligned:
        return ""
    from .align import variant

    return f"aligned{hashlib.sha1(variant(mconfig).encode()).hexdigest()[:8]}_"


def crops_name(cfg: TrainConfig, mconfig: ModelConfig) -> str:
    """The crops cache's file stem: one per source, size and cut (one fingerprint per file: switching never rebuilds)."""
    source = cfg.manifest or str(Path(cfg.data).resolve() if cfg.data else shared_data_dir())
    return f"crops_{_pixels_kind(cfg, mconfig)}{mconfig.input_size}_{hashlib.sha1(source.encode()).hexdigest()[:10]}"


def landmarks_name(cfg: TrainConfig, mconfig: ModelConfig) -> str:
    """The landmarks cache's file: keyed by path inside, so it must be one per size and cut (points belong to pixels)."""
    return f"landmarks_{_pixels_kind(cfg, mconfig)}{mconfig.input_size}.npy"


# -- one epoch -----------------------------------------------------------------


@dataclass
class EpochStats:
    seen: int = 0
    loss_sum: float = 0.0
    seconds: float = 0.0
    stopped: bool = False

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.seen)


def train_one_epoch(run: TrainRun, epoch: int, skip_steps: int, stop: "StopRequest") -> EpochStats:
    """Train one epoch from step ``skip_steps`` of it; stops early at ``max_steps`` or on a signal."""
    cfg, d, model = run.cfg, run.dist, run.model
    model.train()
    net: nn.Module = model
    if d.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    run.train_ds.set_epoch(epoch)
    indices = ddp.shard(run.steps_per_epoch * run.per_step, d, skip_steps * cfg.batch_size * cfg.accum_steps)
    loader = DataLoader(run.train_ds, batch_size=cfg.batch_size, sampler=indices, num_workers=cfg.workers, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.seed + epoch))  # leaves the global RNG to dropout
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    loss_fn = make_loss(cfg.loss, cfg.focal_gamma, cfg.focal_alpha)
    stats, start, micro = EpochStats(), time.monotonic(), 0
    bar = _progress(cfg, d, run.total_steps, run.step, epoch)
    for x, y, _ in loader:
        # Seeded per step: a resumed run draws the same batch augmentations.
        g = torch.Generator().manual_seed(hash((cfg.seed, run.step, micro % cfg.accum_steps, d.rank)) & 0x7FFF_FFFF)
        x = run.augment(x, g).to(run.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(run.device)
        target = y * (1 - cfg.label_smoothing) + 0.5 * cfg.label_smoothing
        x, target = mixup(x, target, cfg.mixup)
        micro += 1
        sync = micro % cfg.accum_steps == 0
        with net.no_sync() if d.world > 1 and not sync else _null():
            with torch.autocast(run.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(net(x).float(), target)
            run.scaler.scale(loss / cfg.accum_steps).backward()
        stats.seen += len(y)
        stats.loss_sum += loss.item() * len(y)
        if not sync:
            continue
        run.scaler.step(run.opt)
        run.scaler.update()
        run.opt.zero_grad(set_to_none=True)
        run.sched.step()
        if run.ema is not None:
            run.ema.update(model, run.step)
        run.step += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{stats.loss:.4f}")
        if run.step % cfg.log_every == 0 and d.main:
            log.info("epoch %d step %d/%d loss %.4f lr %.2e %.1f img/s", epoch, run.step, run.total_steps, stats.loss,
                     run.sched.get_last_lr()[0], stats.seen * d.world / (time.monotonic() - start))
        if (cfg.max_steps and run.step >= cfg.max_steps) or stop.requested:
            stats.stopped = True
            break
    if bar is not None:
        bar.close()
    stats.seconds = time.monotonic() - start
    return stats


# -- validation and checkpoints --------------------------------------------------


def served_model(run: TrainRun) -> nn.Module:
    """The weights a checkpoint gets: the EMA copy when EMA is on."""
    if run.ema is None:
        return run.model
    served = copy.deepcopy(run.model)
    run.ema.copy_to(served)
    return served


def validate(run: TrainRun, model: nn.Module) -> dict[str, dict]:
    """Metrics on the validation split (TTA as served) and, per pseudo-fake generator on, on its fakes of the val reals."""
    evals: dict[str, dict] = {}
    if run.val_ds is None:
        return evals
    workers = min(run.cfg.workers, 1)
    yv, pv = predict(model, run.val_ds, 64, run.device, workers, run.mconfig.tta, run.mconfig.mean, run.mconfig.std)
    evals[f"{'manifest' if run.cfg.manifest else 'dfdc'}_val"] = metrics.summary(yv, pv)
    real = yv == 0
    for name, ds in run.fake_ds.items():
        ys, ps = predict(model, ds, 64, run.device, workers, run.mconfig.tta, run.mconfig.mean, run.mconfig.std)
        evals[f"{name}_val"] = metrics.summary(np.r_[yv[real], ys], np.r_[pv[real], ps])
    return evals


def end_epoch(run: TrainRun, epoch: int, stats: EpochStats) -> Path:
    """Validate, append a row to metrics.csv and the history, write ``epochN`` (safetensors + JSON)."""
    served = served_model(run)
    t0 = time.monotonic()
    evals = validate(run, served)
    row: dict[str, Any] = {"epoch": epoch, "step": run.step, "images": run.step * run.per_step, "train_loss": stats.loss,
                           "train_img_s": stats.seen * run.dist.world / max(stats.seconds, 1e-9),
                           "train_seconds": stats.seconds, "val_seconds": time.monotonic() - t0}
    for name, summary in evals.items():
        row.update({f"{name.removesuffix('_val')}_{k}": v for k, v in summary.items()})
    run.history.append(row)
    log.info("epoch %d: %s | %.1f img/s, %.0f s", epoch,
             " | ".join(f"{k} auc {v['auc']:.4f} log_loss {v['log_loss']:.4f}" for k, v in evals.items()) or "no val",
             row["train_img_s"], stats.seconds)
    csv_path = run.out / "metrics.csv"
    new = not csv_path.exists()
    with csv_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    info = CheckpointInfo(name=run.cfg.name, version=run.cfg.version, config=run.mconfig, architecture_kwargs=run.arch_kwargs,
                          training=run.meta, parent=run.parent_ref,
                          metrics={"epoch": epoch, "ema": run.cfg.ema or None, **evals, "history": run.history})
    path = save_checkpoint(run.out / f"epoch{epoch}", served, info)
    log.info("saved %s", path)
    return path


def _save_state(run: TrainRun, epoch: int) -> None:
    step_in_epoch = run.step - (epoch - 1) * run.steps_per_epoch
    save_state(run.out, model=run.model, opt=run.opt, sched=run.sched, scaler=run.scaler, ema=run.ema,
               scalars={"step": run.step, "epoch": epoch, "step_in_epoch": step_in_epoch, "history": run.history})


def _resume(run: TrainRun) -> tuple[int, int]:
    """Restore the state in the run folder; return (epoch, steps of it already done)."""
    state = load_state(run.out, model=run.model, opt=run.opt, sched=run.sched, scaler=run.scaler, ema=run.ema)
    run.step, run.history = state["step"], state.get("history", [])
    epoch, skip = state["epoch"], state["step_in_epoch"]
    if skip >= run.steps_per_epoch:
        epoch, skip = epoch + 1, 0
    log.info("resumed %s at step %d (epoch %d, step %d of it)", run.out, run.step, epoch, skip)
    return epoch, skip


# -- the whole run -----------------------------------------------------------------


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; return the weights path of the last checkpoint written (None: none yet)."""
    check_run_folder(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    d, device = ddp.init(cfg.device)
    stop = StopRequest(d.world == 1)  # SIGINT/SIGTERM: finish the step, save state, then stop
    try:
        run = setup(cfg, d, device)
        epoch0, skip = _resume(run) if cfg.resume else (1, 0)
        if d.main:
            run.out.mkdir(parents=True, exist_ok=True)
            (run.out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
        last: Path | None = run.out / f"epoch{epoch0 - 1}.safetensors"
        if not last.is_file():  # a run stopped (by max_steps) before the end of its first epoch
            last = None
        frozen: bool | None = None
        for epoch in range(epoch0, cfg.epochs + 1):
            frozen = _apply_freezing(run, epoch, frozen)
            stats = train_one_epoch(run, epoch, skip if epoch == epoch0 else 0, stop)
            complete = run.step - (epoch - 1) * run.steps_per_epoch >= run.steps_per_epoch
            if d.main:
                if complete:
                    last = end_epoch(run, epoch, stats)
                _save_state(run, epoch)
            d.barrier()
            if stats.stopped:
                log.info("stopped at step %d; state saved, continue with --resume", run.step)
                break
        if stop.requested:
            raise KeyboardInterrupt(f"interrupted at step {run.step}; resume with --resume")
        return last
    finally:
        stop.restore()
        ddp.shutdown()


def _apply_freezing(run: TrainRun, epoch: int, frozen: bool | None) -> bool:
    """Freeze the lower blocks for the first ``freeze_epochs`` epochs; return the new state."""
    cfg = run.cfg
    want = cfg.freeze_blocks > 0 and epoch <= cfg.freeze_epochs
    if want or frozen:
        set_frozen(run.model, cfg.freeze_blocks, want)
    if want != frozen and (want or frozen is not None):
        log.info("epoch %d: lower %d blocks %s", epoch, cfg.freeze_blocks, "frozen" if want else "trainable")
    return want


def _progress(cfg, d, total, step, epoch):
    if not (cfg.progress and d.main):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=step, desc=f"epoch {epoch}", unit="step", leave=False, disable=None)


class StopRequest:
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
