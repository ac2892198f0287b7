"""Batch scoring past one machine with Ray Data.

Why Ray Data: it is one pip package (no broker or result store to run, unlike
Celery with Redis), it streams items through a pool of actors that each load
the model once, and the same script runs on a laptop (``ray.init()`` starts a
local instance) or on a cluster (``--ray-address auto`` on a node of a
``ray start`` cluster, or ``ray://head:10001``). Each actor runs the same
Predictor as ``unmask score`` and the service, so records are identical.

    unmask score /data/videos --out results.jsonl --engine ray --actors 4
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from unmask.model.results import MediaResult

log = logging.getLogger(__name__)


class ScoreActor:
    """A Ray actor: loads the Predictor once, scores a batch of paths."""

    def __init__(self, model: str | None, frames: int, aggregation: str, threads: int) -> None:
        import torch
        from unmask.model.predictor import Predictor

        torch.set_num_threads(threads)
        self.predictor = Predictor(model, device=None, backend="auto", frames=frames, aggregation=aggregation)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [json.dumps(self.predictor.score_file(str(p)).to_dict()) for p in batch["path"]]
        return {"record": np.array(records, dtype=object)}


def score_with_ray(
    paths: Iterable[Path],
    model: str | None = None,
    frames: int = 32,
    aggregation: str = "confident",
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
            fn_constructor_kwargs={"model": model, "frames": frames, "aggregation": aggregation, "threads": threads_per_actor},
            batch_size=1,  # a video is already a batch of frames; one file per call keeps the stream even
            concurrency=actors,
            num_cpus=threads_per_actor,
        )
        for row in dataset.iter_rows():
            yield record_from_json(row["record"])
    finally:
        if started_here:
            ray.shutdown()


def record_from_json(text: str) -> MediaResult:
    """Rebuild a MediaResult from its JSON (the record crosses processes as text)."""
    from unmask.model.results import ErrorInfo, FaceResult, FrameResult, ModelRef, TrackResult

    data = json.loads(text)
    data.pop("label")
    frames = []
    for f in data.pop("frames"):
        f.pop("score")
        frames.append(FrameResult(f["index"], f["time"], [FaceResult(**face) for face in f["faces"]]))
    return MediaResult(
        **{k: v for k, v in data.items() if k not in ("error", "model", "tracks")},
        error=ErrorInfo(**data["error"]) if data["error"] else None,
        model=ModelRef(**data["model"]) if data["model"] else None,
        frames=frames,
        tracks=[TrackResult(**t) for t in data["tracks"]],
    )
