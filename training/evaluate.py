"""Scoring a checkpoint on labelled crops: frame and video metrics, per-manipulation, ROC, calibration."""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..model.aggregation import get_strategy
from ..model.backends import TorchBackend, make_backend
from ..model.config import ScoringConfig
from ..model.tta import FLIP_AXES, check_tta, tta_probability
from . import metrics
from .cache import CropCache, build_cache
from .datasets import EvalDataset, FaceRecord, JpegReader
from .transforms import normalize

log = logging.getLogger(__name__)



@torch.no_grad()
def predict_logits(classify: Callable[[np.ndarray], np.ndarray], dataset, batch_size: int, workers: int = 0,
                   tta: Sequence[str] = ("identity",), *, mean, std, progress: bool = False):
    """(labels, logits of shape (n_tta, n)) over a dataset of uint8 crops; ``progress``: a bar of crops on stderr.

    ``classify`` is a backend (``model.backends``): normalised NCHW float32 in, logits out.
    """
    tta = check_tta(tta)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    ys, zs = [], []
    views = None
    bar = tqdm(total=len(dataset), unit="crop", desc="eval", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for x, y, _ in loader:
        bar.update(len(y))
        if views is None or len(views) < len(tta) * len(y):
            views = np.empty((len(tta) * len(y), *x.shape[1:]), dtype=np.float32)
        batch = tta_views_into(views[: len(tta) * len(y)], x, tta, mean, std)  # every view in one backend call
        zs.append(np.asarray(classify(batch)).reshape(len(tta), len(y)))
        ys.append(y.numpy())
    bar.close()
    return np.concatenate(ys), np.concatenate(zs, axis=1)


def tta_views_into(out: np.ndarray, x: torch.Tensor, tta: Sequence[str], mean, std) -> np.ndarray:
    """``out`` filled with each TTA view of the uint8 batch ``x``, normalised, view after view (``normalize`` then
    ``apply_tta``, the same values). One buffer reused batch after batch: a 64-crop batch's views are ~77 MB, which
    glibc's malloc would map and unmap (fresh zeroed pages) every batch; this cut an eval's system time by half."""
    n = len(x)
    normalize(x, mean, std, out=torch.from_numpy(out[:n]))  # the plain view, in slot 0
    for i, name in reversed(list(enumerate(tta))):  # slot 0 last: the others are flipped from it (numpy copes with
        np.copyto(out[i * n:(i + 1) * n], np.flip(out[:n], FLIP_AXES[name]))  # an in-place flip of slot 0 itself)
    return out


def predict(model: nn.Module, dataset, batch_size: int, device: torch.device, workers: int, tta: Sequence[str], mean, std,
            temperature: float = 1.0):
    """(labels, P(fake)) over a dataset with the model as it is (eager, e.g. mid-training), scored as the predictor
    scores a face (``tta_probability``)."""
    labels, logits = predict_logits(TorchBackend(model, device.type), dataset, batch_size, workers, tta, mean=mean, std=std)
    return labels, tta_probability(logits, temperature)


def video_scores(records: Sequence[FaceRecord], probs: np.ndarray, aggregation: str = ScoringConfig.aggregation
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) per video (video = record.video or its path): its crops' probabilities aggregated by the
    service's own rule (``model.aggregation``), so a card's video figure is the verdict a user gets."""
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_video[r.video or r.path].append(i)
    aggregate = get_strategy(aggregation)
    labels = np.array([records[idx[0]].label for idx in by_video.values()])
    scores = np.array([float(aggregate([float(p) for p in probs[idx]])) for idx in by_video.values()])
    return labels, scores


def report(records: Sequence[FaceRecord], labels: np.ndarray, probs: np.ndarray, threshold: float,
           aggregation: str = ScoringConfig.aggregation) -> dict:
    """Frame-level metrics (also at top level), video-level metrics and a per-manipulation breakdown."""
    frame = metrics.summary(labels, probs, threshold)
    vy, vs = video_scores(records, probs, aggregation)
    out = {**frame, "frame": frame, "video": {**metrics.summary(vy, vs, threshold), "n_videos": len(vy),
                                              "aggregation": aggregation}}
    manips = sorted({r.manipulation for r in records if r.label == 1 and r.manipulation})
    if manips:
        real = labels == 0
        out["per_manipulation"] = {}
        for m in manips:
            mask = real | np.array([r.manipulation == m for r in records])
            out["per_manipulation"][m] = metrics.summary(labels[mask], probs[mask], threshold)
    return out


def roc_png(labels: np.ndarray, probs: np.ndarray, path: Path, title: str) -> Path:
    """Save the ROC curve as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y, s = np.asarray(labels), np.asarray(probs)
    cands = np.r_[np.inf, np.unique(s)[::-1]]
    tpr = [(s[y == 1] >= t).mean() for t in cands]
    fpr = [(s[y == 0] >= t).mean() for t in cands]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.plot(fpr, tpr, label=f"AUC {metrics.roc_auc(y, s):.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)  # as --out and --scores do
    fig.savefig(path)
    plt.close(fig)
    return path


def evaluate(model: nn.Module, records: Sequence[FaceRecord], config, *, tta: Sequence[str], batch_size: int = 64,
             workers: int = 0, device: torch.device | None = None, progress: bool = False,
             align: bool = True, corruption=None, aggregation: str = ScoringConfig.aggregation,
             backend: str = "auto", weights: Path | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Score ``records`` with a model and its ModelConfig (temperature applied); return (report, labels, logits).

    With ``align`` (the default) each crop is first re-cut as the service cuts
    faces (``align.AlignedLoader``; cached per crop geometry under
    ``$UNMASK_CACHE_DIR/eval``); else it is scored as given, resized.
    ``corruption`` (a ``corruptions.Corruption``, aligned only) degrades each
    source image before it is cut.
    ``backend``/``weights``: as ``model.backends.make_backend`` takes them (``auto``: as served).
    ``logits`` has shape (n_tta, n): what temperature fitting needs.
    """
    device = device or torch.device("cpu")
    classify = make_backend(model, config, device.type, backend, weights=weights)
    records = list(records)
    read, crops = JpegReader(config.input_size), {"crops": "as given, resized"}
    if align:
        read = aligned_crops(records, config, corruption)
        crops = {"crops": "re-cut as served (MTCNN on the crop padded 20%, the model's crop geometry)",
                 "no_face_found": read.misses}
    labels, logits = predict_logits(classify, EvalDataset(records, read), batch_size, workers, tta, mean=config.mean,
                                    std=config.std, progress=progress)
    probs = tta_probability(logits, config.temperature)
    return {**report(records, labels, probs, config.threshold, aggregation), **crops}, labels, logits


def aligned_crops(records: Sequence[FaceRecord], config, corruption=None) -> CropCache:
    """The records' crops re-cut as served, decoded once into a cache shared by every checkpoint of this geometry."""
    import hashlib

    from ..model.paths import cache_dir
    from .align import AlignedLoader

    loader = AlignedLoader(config, corruption=corruption)
    paths = sorted({r.path for r in records})
    key = hashlib.sha1(f"{loader.variant}\n{paths[0] if paths else ''}\n{len(paths)}".encode()).hexdigest()[:12]
    return build_cache(paths, config.input_size, cache_dir() / "eval" / f"aligned_{config.input_size}_{key}",
                       load=loader, variant=loader.variant)
