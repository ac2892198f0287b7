"""torchrun support: process group from the environment, rank helpers, per-rank sharding.

``torchrun --nproc_per_node N -m unmask.training.commands train ...`` sets
RANK / WORLD_SIZE / LOCAL_RANK; without them everything runs as one process.
The backend is nccl on CUDA and gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def init(device: str) -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun; return it and this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu" if device == "auto" else device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(int(os.environ.get("RANK", "0")), world, local), dev


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(length: int, d: Dist, start: int = 0) -> list[int]:
    """This rank's item indices of an epoch: every world-th item, from item ``start`` of the rank's share."""
    return list(range(d.rank, length - length % d.world, d.world))[start:]
