"""Score every file of a labels CSV (images and videos) and compare aggregations.

    python -m unmask.training.file_eval ../shared/data/labels.csv [--model NAME] [--frames 32] [--out report.json] [--pin]

Each file is scored once; the file score under each aggregation strategy
(mean, max, confident) is recomputed from the same per-face scores and
tracks, so the strategies are compared on identical inputs. Each file also
gets its mean frame P(fake) and the share of its frames at or over the
threshold, and the files are grouped by manipulation (Deepfakes, Face2Face,
FaceSwap, NeuralTextures, DFDC, real): a recipe is judged on how far the
reenactment clips (Face2Face, NeuralTextures) sit above the highest real
file (``reenactment_margin``), not on which side of 0.5 they fall, since
every model so far scores them within noise of it. Prints markdown tables
(for model cards) and writes a JSON report. ``--pin`` writes each file's
served score and verdict into the checkpoint's JSON (``metrics.shared_files``),
which the slow quality test holds later versions of the code to.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
from collections import defaultdict
from pathlib import Path

from ..model import strict_json
from ..model.aggregation import get_strategy, list_strategies
from ..model.checkpoint import update_metadata
from ..model.config import ScoringConfig
from ..model.errors import MediaError
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


REENACTMENT = ("Face2Face", "NeuralTextures")


def manipulation_group(row: dict) -> str:
    """The row's group for the per-manipulation table: its manipulation, else its dataset for a fake, else "real"."""
    if row["label"] == "real":
        return "real"
    return row.get("manipulation") or row.get("dataset") or "fake"


def frame_figures(result: MediaResult) -> tuple[float | None, float | None]:
    """Mean frame P(fake) over the frames with a face, and the share of those frames at or over the threshold."""
    scores = [f.score for f in result.frames if f.score is not None]
    if result.status != "ok" or not scores:
        return None, None
    threshold = result.threshold if result.threshold is not None else 0.5
    return sum(scores) / len(scores), sum(s >= threshold for s in scores) / len(scores)


def by_manipulation(files: list[dict]) -> dict:
    """Per group: file count, mean of the files' mean frame P(fake), its lowest and highest, mean share over threshold."""
    groups: dict[str, list[dict]] = {}
    for f in files:
        if f["frame_mean"] is not None:
            groups.setdefault(f["group"], []).append(f)
    return {
        g: {"files": len(fs),
            "frame_mean": round(sum(f["frame_mean"] for f in fs) / len(fs), 4),
            "lowest": round(min(f["frame_mean"] for f in fs), 4),
            "highest": round(max(f["frame_mean"] for f in fs), 4),
            "frames_over": round(sum(f["frames_over"] for f in fs) / len(fs), 4)}
        for g, fs in sorted(groups.items())
    }


def reenactment_margin(groups: dict) -> dict[str, float]:
    """How far each reenactment group's lowest file sits above the highest real file (mean frame P(fake)); < 0: below."""
    if "real" not in groups:
        return {}
    return {g: round(groups[g]["lowest"] - groups["real"]["highest"], 4) for g in REENACTMENT if g in groups}


def evaluate_files(predictor: Predictor, labels_csv: Path, detections: dict | None = None) -> dict:
    """Score every file of a labels CSV as served; the report of figures per file, per manipulation and per strategy.

    ``detections``: a dict kept by the caller across models; files already
    decoded, detected and cropped by a predictor with the same detection
    settings and crop geometry are classified from it rather than found again
    (the crops are the same: only the classifier differs).
    """
    root = labels_csv.parent
    rows = list(csv.DictReader(labels_csv.open()))
    files = []
    for row in rows:
        result = _score(predictor, root / row["path"], row["path"], detections)
        frame_mean, frames_over = frame_figures(result)
        files.append(
            {
                "path": row["path"],
                "label": row["label"],
                "manipulation": row.get("manipulation") or "",
                "group": manipulation_group(row),
                "frame_mean": None if frame_mean is None else round(frame_mean, 4),
                "frames_over": None if frames_over is None else round(frames_over, 4),
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
    report["by_manipulation"] = by_manipulation(files)
    report["reenactment_margin"] = reenactment_margin(report["by_manipulation"])
    scored = [f for f in files if f["status"] == "ok"]
    labels = [1 if f["label"] == "fake" else 0 for f in scored]
    if 0 < sum(labels) < len(labels):
        report["by_strategy"] = {
            s: {"auc": round(roc_auc(labels, [f[s] for f in scored]), 4), "log_loss": round(log_loss(labels, [f[s] for f in scored]), 4)}
            for s in list_strategies()
        }
    return report


def _score(predictor: Predictor, path: Path, name: str, detections: dict | None):
    if detections is None:
        return predictor.predict(path, name, on_error="record")
    key = (name, predictor.config, dataclasses.astuple(predictor.model_config.crop), predictor.model_config.input_size)
    try:
        if key not in detections:
            detections[key] = predictor.prepare(path, name)
        prepared = detections[key]
        return predictor.finish(dataclasses.replace(prepared, timings=defaultdict(float, prepared.timings)))
    except (MediaError, OSError) as exc:
        return predictor.error_record(path, exc, name)


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
    lines += ["", "| manipulation | files | mean frame P(fake) | lowest file | highest file | frames over threshold |",
              "|---|---|---|---|---|---|"]
    for g, m in report["by_manipulation"].items():
        lines.append(f"| {g} | {m['files']} | {m['frame_mean']:.3f} | {m['lowest']:.3f} | {m['highest']:.3f} | {m['frames_over']:.0%} |")
    for g, margin in report["reenactment_margin"].items():
        lines.append(f"\n{g}: its lowest file sits {margin:+.3f} from the highest real file (mean frame P(fake)).")
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
    """Record each file's served score and verdict, and the per-manipulation table, in the checkpoint's JSON."""
    files = [{"path": f["path"], "label": f["label"], "score": f["score"], "verdict": f["verdict"]} for f in report["files"]]
    update_metadata(predictor.weights_path, shared_files={"frames": report["frames"], "files": files,
                                                          "by_manipulation": report["by_manipulation"],
                                                          "reenactment_margin": report["reenactment_margin"]})


if __name__ == "__main__":
    main()
