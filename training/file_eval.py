"""Score every file of a labels CSV (images and videos) and compare aggregations.

    python -m unmask.training.file_eval ../shared/data/labels.csv [--model NAME] [--frames 32] [--out report.json] [--pin]

Each file is scored once; the file score under each aggregation strategy
(mean, max, confident) is recomputed from the same per-face scores and
tracks, so the strategies are compared on identical inputs. Prints a markdown
table (for model cards) and writes a JSON report. ``--pin`` writes each file's
served score and verdict into the checkpoint's JSON (``metrics.shared_files``),
which the slow quality test holds later versions of the code to.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from ..model import strict_json
from ..model.aggregation import get_strategy, list_strategies
from ..model.checkpoint import update_metadata
from ..model.config import ScoringConfig
from ..model.predictor import Predictor
from ..model.results import MediaResult
from .metrics import log_loss, roc_auc


def file_score(result: MediaResult, strategy: str) -> float | None:
    """The file score under ``strategy``: max over counted tracks of the strategy over each track's faces."""
    if result.status != "ok":
        return None
    counted = {t.id for t in result.tracks if t.counted} or {t.id for t in result.tracks}
    per_track: dict[int, list[float]] = {}
    for frame in result.frames:
        for face in frame.faces:
            per_track.setdefault(face.track, []).append(face.score)
    aggregate = get_strategy(strategy)
    return max(aggregate(scores) for track, scores in per_track.items() if track in counted or not result.tracks)


def evaluate_files(predictor: Predictor, labels_csv: Path) -> dict:
    root = labels_csv.parent
    rows = list(csv.DictReader(labels_csv.open()))
    files = []
    for row in rows:
        result = predictor.predict(root / row["path"], row["path"], on_error="record")
        files.append(
            {
                "path": row["path"],
                "label": row["label"],
                "manipulation": row.get("manipulation") or "",
                "status": result.status,
                "faces": result.face_count,
                "tracks": len(result.tracks),
                "seconds": round(result.timings_ms.get("total", 0.0) / 1000, 2),
                "score": result.score,
                "verdict": result.label,
                **{s: file_score(result, s) for s in list_strategies()},
            }
        )
    report: dict = {"model": predictor.info.name, "version": predictor.info.version, "frames": predictor.config.frames, "files": files}
    scored = [f for f in files if f["status"] == "ok"]
    labels = [1 if f["label"] == "fake" else 0 for f in scored]
    if 0 < sum(labels) < len(labels):
        report["by_strategy"] = {
            s: {"auc": round(roc_auc(labels, [f[s] for f in scored]), 4), "log_loss": round(log_loss(labels, [f[s] for f in scored]), 4)}
            for s in list_strategies()
        }
    return report


def markdown(report: dict) -> str:
    strategies = list_strategies()
    lines = ["| file | label | status | faces | verdict | " + " | ".join(strategies) + " |",
             "|---|---|---|---|---|" + "---|" * len(strategies)]
    for f in report["files"]:
        cells = [f"{f[s]:.3f}" if f[s] is not None else "-" for s in strategies]
        label = f["label"] + (f" ({f['manipulation']})" if f["manipulation"] else "")
        verdict = f["verdict"] or "-"
        lines.append(f"| {f['path']} | {label} | {f['status']} | {f['faces']} | {verdict} | " + " | ".join(cells) + " |")
    if "by_strategy" in report:
        lines.append("")
        lines.append("| aggregation | AUC over these files | log-loss |")
        lines.append("|---|---|---|")
        for s, m in report["by_strategy"].items():
            lines.append(f"| {s} | {m['auc']:.3f} | {m['log_loss']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("labels", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--frames", type=int, default=ScoringConfig.frames)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--pin", action="store_true", help="write the scores and verdicts into the checkpoint's JSON")
    args = parser.parse_args(argv)
    predictor = Predictor(args.model, ScoringConfig(frames=args.frames))
    report = evaluate_files(predictor, args.labels)
    if args.out:
        args.out.write_text(strict_json.dumps(report, indent=2) + "\n")
    if args.pin:
        pin(predictor, report)
    print(markdown(report))


def pin(predictor: Predictor, report: dict) -> None:
    """Record each file's served score and verdict in the checkpoint's JSON (``metrics.shared_files``)."""
    files = [{"path": f["path"], "label": f["label"], "score": f["score"], "verdict": f["verdict"]} for f in report["files"]]
    update_metadata(predictor.weights_path, shared_files={"frames": report["frames"], "files": files})


if __name__ == "__main__":
    main()
