"""Batch scoring past one machine with Ray Data.

Why Ray Data: it is one pip package (no broker or result store to run, unlike
Celery with Redis), it streams items through a pool of actors that each load
the model once, and the same script runs on a laptop (``ray.init()`` starts a
local instance) or on a cluster (``--ray-address auto`` on a node of a
``ray start`` cluster, or ``ray://head:10001``). Each actor runs the same
Predictor as ``unmask score`` and the service, so records are identical.

    unmask score /data/videos --out results.jsonl --engine ray --actors 4

Every scoring option of the command line (frames, rate, aggregation, device,
backend) reaches the actors in one ScoringConfig.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..model.config import ScoringConfig
from ..model.results import MediaResult

log = logging.getLogger(__name__)


class ScoreActor:
    """A Ray actor: loads the Predictor once, scores a batch of paths."""

    def __init__(self, model: str | None, config: ScoringConfig, threads: int) -> None:
        import torch

        from ..model.predictor import Predictor

        torch.set_num_threads(threads)
        self.predictor = Predictor(model, config)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [json.dumps(self.predictor.predict(str(p), on_error="record").to_dict()) for p in batch["path"]]
        return {"record": np.array(records, dtype=object)}


def score_with_ray(
    paths: Iterable[Path],
    model: str | None = None,
    config: ScoringConfig | None = None,
    actors: int = 2,
    threads_per_actor: int = 1,
    address: str | None = None,
) -> Iterator[MediaResult]:
    """Yield a MediaResult per path (in completion order) from a Ray Data job."""
    import ray

    items = [{"path": str(p)} for p in paths]
    if not items:
        return
    env = {"HF_HUB_OFFLINE": "1"}
    if "UNMASK_CACHE_DIR" in os.environ:
        env["UNMASK_CACHE_DIR"] = os.environ["UNMASK_CACHE_DIR"]
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        dataset = ray.data.from_items(items).map_batches(
            ScoreActor,
            fn_constructor_kwargs={"model": model, "config": config or ScoringConfig(), "threads": threads_per_actor},
            batch_size=1,  # a video is already a batch of frames; one file per call keeps the stream even
            concurrency=actors,
            num_cpus=threads_per_actor,
        )
        for row in dataset.iter_rows():
            yield MediaResult.from_dict(json.loads(row["record"]))
    finally:
        if started_here:
            ray.shutdown()
