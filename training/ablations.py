"""Equal-budget training ablations: train each variant, then score it the same way.

    python -m unmask.training.ablations docs/experiments/configs/ablations.toml --out runs/ablations [--only NAME ...]

The TOML has a ``[base]`` table (TrainConfig keys shared by every run) and
one ``[[run]]`` table per variant (``name`` plus the keys it changes). Every
run gets the same seed, validation split (by group) and number of images
(or the budget its table sets). Each run is scored on:

- the DFDC validation split (TTA as served), from the training run itself;
- SBI (and, when on, reenact) fakes of the validation reals against those reals;
- a cross-dataset manifest (``cross_manifest``, e.g. mesonet_val): reported
  only, never trained on, never used to set a threshold;
- the verdicts on labelled files (``files``, e.g. the 7 FF++ clips).

A run with ``raw_weights_of = "OTHER"`` is not trained: it scores OTHER's raw
(not EMA) weights, which is OTHER with EMA off (see ``raw_weights_checkpoint``).

Results go to OUT/NAME/ablation.json and a markdown table on stdout. A run
whose ablation.json exists is not trained again.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import time
import tomllib
from pathlib import Path

import torch

from ..model.checkpoint import load_checkpoint, save_checkpoint
from .config import resolve_config
from .datasets import dfdc_records, manifest_records, shared_data_dir
from .evaluate import evaluate
from .loop import train
from .state import raw_model_weights

log = logging.getLogger(__name__)


def score_files(checkpoint: Path, labels_csv: Path, pattern: str) -> list[dict]:
    """Score the labelled files whose path contains ``pattern``; their verdict at the checkpoint's threshold."""
    from ..model.predictor import Predictor

    predictor = Predictor(checkpoint)
    out = []
    for row in csv.DictReader(labels_csv.open()):
        if pattern not in row["path"]:
            continue
        result = predictor.predict(labels_csv.parent / row["path"], on_error="record")
        out.append({"path": row["path"], "label": row["label"], "score": result.score,
                    "right": result.label == row["label"] if result.score is not None else False})
    return out


def last_epoch(folder: Path) -> Path:
    """The newest ``epochN.safetensors`` a run wrote."""
    return max(folder.glob("epoch*.safetensors"), key=lambda p: int(p.stem.removeprefix("epoch")))


def raw_weights_checkpoint(source: Path, folder: Path, val: list) -> Path:
    """A finished run's raw (not EMA) weights as a checkpoint in ``folder``: that run with EMA off.

    EMA only reads the weights and never steers training, so an EMA-off run with
    the same seed takes the same steps and ends at the model weights the state
    file keeps: an equal-budget comparison without training twice. The
    training-time validation is recomputed on ``val`` (crops as given, TTA as
    served).
    """
    served = last_epoch(source)
    model, info = load_checkpoint(served)
    model.load_state_dict(raw_model_weights(source))
    as_given = evaluate(model, val, info.config, tta=info.config.tta, align=False)[0]["frame"]
    info.name, info.created = f"{info.name}-raw", ""
    info.metrics = {**info.metrics, "ema": None, "dfdc_val": as_given, "sbi_val": None, "reenact_val": None}
    return save_checkpoint(folder / served.stem, model, info)


def run_one(name: str, values: dict, plan: dict, out: Path, rescore: bool = False) -> dict:
    """Train the variant (unless done) and score it; ``rescore`` scores a finished run again."""
    folder = out / name
    report_path = folder / "ablation.json"
    if report_path.is_file() and not rescore:
        return json.loads(report_path.read_text())
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        weights = last_epoch(folder)
    elif "raw_weights_of" in values:
        source = out / values["raw_weights_of"]
        weights = raw_weights_checkpoint(source, folder, dfdc_records(shared_data_dir(), "val"))
        report = {"name": name, "changes": values, "minutes": json.loads((source / "ablation.json").read_text())["minutes"]}
    else:
        cfg = resolve_config(None, {**plan.get("base", {}), **values, "out_dir": str(folder), "name": f"ablation-{name}",
                                    "progress": False, "command": f"python -m unmask.training.ablations ({name})",
                                    "resume": (folder / "state.json").is_file()})  # a killed variant continues
        start = time.monotonic()
        weights = train(cfg)
        report = {"name": name, "changes": values, "minutes": round((time.monotonic() - start) / 60, 1)}
    report.update(score(weights, plan))
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def score(weights: Path, plan: dict) -> dict:
    """What the table reports of one checkpoint: training-time validation, then the crops re-cut as served."""
    model, info = load_checkpoint(weights)
    last = info.metrics["history"][-1]
    out = {"images": last["images"], "train_img_s": round(last["train_img_s"], 1), "dfdc_val": info.metrics.get("dfdc_val"),
           "sbi_val": info.metrics.get("sbi_val"), "reenact_val": info.metrics.get("reenact_val")}
    cpu = torch.device("cpu")
    val = dfdc_records(shared_data_dir(), "val")
    out["dfdc_val_served"] = evaluate(model, val, info.config, tta=info.config.tta, device=cpu)[0]["frame"]
    if plan.get("cross_manifest"):
        recs = manifest_records(plan["cross_manifest"])
        for key, align in (("cross_val", True), ("cross_val_as_given", False)):
            out[key] = evaluate(model, recs, info.config, tta=info.config.tta, device=cpu, align=align)[0]["frame"]
    if plan.get("files"):
        files = score_files(weights, Path(plan["files"]), plan.get("files_pattern", ""))
        out["files"], out["files_right"] = files, sum(f["right"] for f in files)
    return out


def table(reports: list[dict]) -> str:
    def fmt(x, key):
        return f"{x[key]:.3f}" if x and key in x and x[key] is not None else "-"

    lines = ["| run | minutes | images | DFDC val AUC | log-loss | ECE | DFDC val AUC (served crops) | mesonet AUC (served "
             "crops) | mesonet AUC (as given) | SBI AUC | reenact AUC | FF++ right |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        files = f"{r['files_right']}/{len(r['files'])}" if "files" in r else "-"
        lines.append(f"| {r['name']} | {r['minutes']} | {r['images']} | {fmt(r['dfdc_val'], 'auc')} | "
                     f"{fmt(r['dfdc_val'], 'log_loss')} | {fmt(r['dfdc_val'], 'ece')} | {fmt(r.get('dfdc_val_served'), 'auc')} | "
                     f"{fmt(r.get('cross_val'), 'auc')} | {fmt(r.get('cross_val_as_given'), 'auc')} | "
                     f"{fmt(r.get('sbi_val'), 'auc')} | {fmt(r.get('reenact_val'), 'auc')} | {files} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", type=Path)
    parser.add_argument("--out", type=Path, default=Path("runs/ablations"))
    parser.add_argument("--only", nargs="*", help="run only these names (the others are read if done)")
    parser.add_argument("--rescore", action="store_true", help="score finished runs again (those of --only, if given), after a change to scoring")
    args = parser.parse_args(argv)
    plan = tomllib.loads(args.plan.read_text())
    reports = []
    for run in plan["run"]:
        values = {k: v for k, v in run.items() if k != "name"}
        done = (args.out / run["name"] / "ablation.json").is_file()
        if args.only and run["name"] not in args.only and not done:
            continue
        rescore = args.rescore and done and (not args.only or run["name"] in args.only)
        reports.append(run_one(run["name"], values, plan, args.out, rescore=rescore))
        print(table(reports), flush=True)


if __name__ == "__main__":
    main()
