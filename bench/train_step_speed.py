"""Training images/s on this machine, in one run: the old JPEG loader vs the cached one, and precisions.

    python bench/train_step_speed.py [--batch 32] [--steps 12] [--rounds 2] [--precision]

Loaders (Lite0 224 px, SBI 25%, AdamW steps, one DataLoader worker, both
alternating round by round so they share whatever else loads the machine):

- ``jpeg_albumentations``: v1's path, each item decoded from JPEG and augmented
  by an albumentations pipeline in the worker, then turned into a float tensor;
- ``cache_batch``: the crops cache (uint8 memory map), per-item quality losses
  in the worker, flip/zoom/colour/cutout on the whole batch in the main process.

``--precision`` adds v1's table: fp32 vs channels_last vs bf16 autocast on
random batches (decides fp32 channels_last on CPU; bf16 is ~10x slower here).
albumentations is only needed for the old loader (``pip install albumentations``).

The cached loader's crops cache is built once, as training builds it: all
DFDC train crops, about 2.2 GB, in ``$UNMASK_CACHE_DIR/training/`` (default
``~/.cache/unmask``); later runs reuse it.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations asks PyPI for a newer version on import

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from unmask.model.architectures import create_model, default_config
from unmask.model.paths import cache_dir
from unmask.training.cache import build_cache, read_rgb
from unmask.training.datasets import Mix, TrainDataset, dfdc_records, shared_data_dir
from unmask.training.landmarks import load_or_compute
from unmask.training.sbi import self_blend
from unmask.training.transforms import BatchAugment, augment_config, resize


class JpegAlbumentations(Dataset):
    """v1's training item: JPEG decode, SBI on the fly, albumentations, float tensor (as the old loop did)."""

    def __init__(self, ds: TrainDataset, size: int, lms_full: dict) -> None:
        import albumentations as A

        self.ds, self.size, self.lms = ds, size, lms_full
        self.pipeline = A.Compose([
            A.HorizontalFlip(p=0.5),
            A.Resize(size, size, interpolation=cv2.INTER_AREA),
            A.Affine(scale=(0.92, 1.06), translate_percent=(-0.04, 0.04), border_mode=cv2.BORDER_REFLECT_101, p=0.7),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.2, p=0.5),
            A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.4, 1.2), p=0.15),
            A.ImageCompression(quality_range=(50, 95), p=0.4),
            A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(0.1, 0.3), hole_width_range=(0.1, 0.3), fill=0, p=0.2),
        ], seed=0)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        rng = np.random.default_rng((0, 1, 2, i))
        kind = self.ds.kinds[i]
        pool = self.ds.dfdc_fakes if kind == 1 else self.ds.dfdc_reals
        rec = pool[rng.integers(len(pool))]
        img = resize(read_rgb(rec.path), self.size)
        if kind == 2:
            img, _ = self_blend(img, self.lms[rec.path], rng)
        self.pipeline.set_random_seed(int(rng.integers(2**31 - 1)))
        img = self.pipeline(image=np.ascontiguousarray(img))["image"]
        x = torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0)
        return (x - 0.5) / 0.5, torch.tensor(float(kind != 0))


def train_steps(model, opt, loader, steps: int, augment=None) -> tuple[float, int]:
    """Seconds for ``steps`` optimizer steps fed by ``loader`` (loader start-up included)."""
    start, done = time.perf_counter(), 0
    g = torch.Generator().manual_seed(0)
    for batch in loader:
        x, y = batch[0], batch[1]
        if augment is not None:
            x = augment(x, g)
        x = x.contiguous(memory_format=torch.channels_last)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += len(y)
        if done >= steps * len(y):
            break
    return time.perf_counter() - start, done


def loaders(args) -> dict:
    data = shared_data_dir()
    size = 224
    reals = [r for r in dfdc_records(data, "train") if r.label == 0]
    fakes = [r for r in dfdc_records(data, "train") if r.label == 1]
    cache = build_cache([r.path for r in reals + fakes], size, cache_dir() / "training" / "bench_crops_224")
    lms = load_or_compute([r.path for r in reals], cache_dir() / "training" / "bench_landmarks_224.npy", cache)
    n = args.batch * args.steps
    aug = augment_config("strong")
    new = TrainDataset(reals, [], fakes, lms, n, cache, aug, Mix(sbi=0.25, dfdc_fake=0.25), seed=0)
    old = JpegAlbumentations(TrainDataset(reals, [], fakes, lms, n, cache, aug, Mix(sbi=0.25, dfdc_fake=0.25), seed=0), size, lms)
    return {
        "jpeg_albumentations": (lambda: DataLoader(old, batch_size=args.batch, num_workers=1), None),
        "cache_batch": (lambda: DataLoader(new, batch_size=args.batch, num_workers=1), BatchAugment(aug, (0.5,) * 3, (0.5,) * 3)),
    }


def precision_table(args) -> dict:
    size = default_config("lite0").input_size
    configs = {"fp32": (False, False), "fp32_channels_last": (False, True), "bf16_autocast_channels_last": (True, True)}
    x = torch.randn(8, 3, size, size)
    y = torch.randint(0, 2, (8,)).float()
    seconds = {}
    for name, (bf16, channels_last) in configs.items():
        model = create_model("lite0").train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batch = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        start = time.perf_counter()
        for _ in range(2):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds[name] = time.perf_counter() - start
    return {name: round(16 / s, 1) for name, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precision", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    runs = loaders(args)
    model = create_model("lite0").train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    seconds = {name: 0.0 for name in runs}
    images = {name: 0 for name in runs}
    train_steps(model, opt, runs["cache_batch"][0](), 2, runs["cache_batch"][1])  # warm-up
    for _ in range(args.rounds):
        for name, (make, augment) in runs.items():
            s, n = train_steps(model, opt, make(), args.steps, augment)
            seconds[name] += s
            images[name] += n
    rate = {name: round(images[name] / seconds[name], 2) for name in runs}
    out = {"threads": torch.get_num_threads(), "batch": args.batch, "steps_per_round": args.steps, "rounds": args.rounds,
           "train_images_per_s": rate, "cache_batch_vs_jpeg": round(rate["cache_batch"] / rate["jpeg_albumentations"], 2)}
    if args.precision:
        out["precision_images_per_s"] = precision_table(args)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
