"""Training images/s on this machine: fp32 vs bf16 autocast, channels_last or not, one run.

    python bench/train_step_speed.py [--architecture lite0] [--batch 8] [--steps 2] [--rounds 2]

Each configuration runs forward + backward + AdamW step on random 224 px
batches; configurations alternate round by round so they share the load.
Decides the training default on CPU (see docs/training.md). bf16 steps take
~1 s an image here, so keep steps small.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from unmask.model.architectures import create_model, default_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="lite0")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = default_config(args.architecture).input_size
    configs = {
        "fp32": (torch.float32, False),
        "fp32_channels_last": (torch.float32, True),
        "bf16_autocast_channels_last": (torch.bfloat16, True),
    }
    runs = {}
    for name, (dtype, channels_last) in configs.items():
        model = create_model(args.architecture).train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        runs[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4), dtype, channels_last)
    x = torch.randn(args.batch, 3, size, size)
    y = torch.randint(0, 2, (args.batch,)).float()
    seconds = {name: 0.0 for name in configs}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, (model, opt, dtype, channels_last) in runs.items():
            batch = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            start = time.perf_counter()
            for _ in range(args.steps):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch).float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if round_:
                seconds[name] += time.perf_counter() - start
    images = args.batch * args.steps * args.rounds
    rate = {name: round(images / s, 1) for name, s in seconds.items()}
    print(json.dumps({"architecture": args.architecture, "input": size, "batch": args.batch, "threads": torch.get_num_threads(),
                      "images_per_s": rate,
                      "bf16_vs_fp32_channels_last": round(rate["bf16_autocast_channels_last"] / rate["fp32_channels_last"], 2)}, indent=2))


if __name__ == "__main__":
    main()
