"""Fit the two thresholds of the speed shortcuts on DFDC validation (never on the shared clips or mesonet_val).

    python bench/fit_shortcuts.py [--model default] [--videos 20000] [--seed 0]

Scores the DFDC validation crops (``dfdc_faces`` split by group, re-cut as
served, as ``unmask eval`` does) with every TTA view, then:

- adaptive TTA: for each band, the served-rule AUC (``model.tta.adaptive_probability``)
  against full TTA and the share of faces that get the flipped view. The
  fitted band is the smallest in the list whose AUC is within 0.001 of full
  TTA (half the 0.002 the shortcut may cost) and whose verdicts differ on at
  most 0.5% of the crops.
- early stopping: DFDC validation has one crop per video, so videos are
  simulated. A pseudo-video of a crop has 32 frame logits: the crop's plain
  logit plus Gaussian noise whose spread is the within-group spread of plain
  logits among the DFDC validation fakes made from one source video (same
  scene, same person, different swaps: wider than one video's frames, so the
  fit errs towards stopping less). The first pass is every 4th frame (8);
  both passes are aggregated with the served rule (``confident``, the
  checkpoint's temperature). The fitted margin is the smallest in the list
  for which, among the pseudo-videos it would stop, the verdict on 32 frames
  differs for at most 0.5%.
Prints one JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from shared_data import shared_data
from unmask.model.aggregation import get_strategy, verdict_is_clear
from unmask.model.checkpoint import load_checkpoint, resolve_checkpoint
from unmask.model.config import ScoringConfig
from unmask.model.tta import adaptive_probability, near_threshold, tta_probability
from unmask.training.datasets import dfdc_records
from unmask.training.evaluate import evaluate
from unmask.training.metrics import roc_auc

BANDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
MARGINS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
AUC_SLACK, FLIP_RATE = 0.001, 0.005


def fit_band(labels: np.ndarray, logits: np.ndarray, temperature: float, threshold: float) -> dict:
    full = tta_probability(logits, temperature)
    rows = []
    for band in BANDS:
        served = adaptive_probability(logits, temperature, threshold, band)
        rows.append({"band": band, "auc_full": round(roc_auc(labels, full), 5), "auc_adaptive": round(roc_auc(labels, served), 5),
                     "auc_diff": round(roc_auc(labels, served) - roc_auc(labels, full), 5),
                     "verdicts_differ": round(float(((served >= threshold) != (full >= threshold)).mean()), 5),
                     "flipped_share": round(float(near_threshold(logits[0], temperature, threshold, band).mean()), 4)})
    fitted = next((r["band"] for r in rows if abs(r["auc_diff"]) <= AUC_SLACK and r["verdicts_differ"] <= FLIP_RATE), None)
    return {"rule": f"smallest band with |AUC diff| <= {AUC_SLACK} and verdicts differing on <= {FLIP_RATE:.1%} of crops",
            "fitted": fitted, "table": rows}


def within_group_spread(records, plain: np.ndarray) -> float:
    """Pooled standard deviation of plain logits among the fakes of each source group with two or more."""
    groups = defaultdict(list)
    for record, z in zip(records, plain):
        if record.label == 1:
            groups[record.group].append(z)
    deviations = [z - np.mean(zs) for zs in groups.values() if len(zs) >= 2 for z in zs]
    dof = sum(len(zs) - 1 for zs in groups.values() if len(zs) >= 2)
    return float(np.sqrt(np.sum(np.square(deviations)) / dof)), len([g for g in groups.values() if len(g) >= 2])


def fit_margin(records, labels, logits, temperature, threshold, videos: int, seed: int, frames: int = 32, first: int = 8) -> dict:
    plain = np.asarray(logits[0], dtype=np.float64)
    sigma, groups = within_group_spread(records, plain)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(plain), videos)
    frame_logits = plain[picks, None] + rng.normal(0.0, sigma, (videos, frames))
    scores = 1.0 / (1.0 + np.exp(-frame_logits / temperature))
    aggregate = get_strategy(ScoringConfig.aggregation)
    stride = frames // first
    early = np.array([aggregate(s[::stride]) for s in scores])
    full = np.array([aggregate(s) for s in scores])
    rows = []
    for margin in MARGINS:
        stop = np.array([verdict_is_clear([e], threshold, margin) for e in early])
        flips = (early >= threshold) != (full >= threshold)
        rows.append({"margin": margin, "stopped_share": round(float(stop.mean()), 4),
                     "flips_among_stopped": round(float(flips[stop].mean()), 5) if stop.any() else None,
                     "max_score_diff_stopped": round(float(np.abs(early - full)[stop].max()), 4) if stop.any() else None,
                     "mean_frames": round(float(first * stop.mean() + frames * (1 - stop.mean())), 2)})
    fitted = next((r["margin"] for r in rows if r["flips_among_stopped"] is not None and r["flips_among_stopped"] <= FLIP_RATE), None)
    return {"rule": f"smallest margin whose stopped pseudo-videos flip verdict on <= {FLIP_RATE:.1%}",
            "noise_sigma_logit": round(sigma, 4), "groups_used_for_sigma": groups, "pseudo_videos": videos,
            "first_pass": first, "frames": frames, "fitted": fitted, "table": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--videos", type=int, default=20000, help="pseudo-videos simulated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    data = shared_data(args.data)
    path = resolve_checkpoint(args.model)
    model, info = load_checkpoint(path)
    records = dfdc_records(data, "val")
    config = info.config
    _, labels, logits = evaluate(model, records, config, tta=config.tta, weights=path)
    report = {"model": f"{info.name}:{info.version}", "crops": len(records), "tta": list(config.tta),
              "adaptive_tta_band": fit_band(labels, logits, config.temperature, config.threshold),
              "early_stop_margin": fit_margin(records, labels, logits, config.temperature, config.threshold, args.videos, args.seed)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
