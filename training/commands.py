"""The ``train`` and ``eval`` subcommands, registered on the unmask CLI's argparse subparsers.

    unmask train --config run.toml --epochs 2            # flags override the file
    unmask train --init default --finetune --manifest new/manifest.csv --out runs/ft
    unmask eval runs/ft/epoch2.safetensors --manifest test.csv --out report.json --roc roc.png
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import sys
from pathlib import Path

from ..model.backbones import list_architectures, with_imagenet_weights
from ..model.config import UNCERTAIN_LEVEL, ScoringConfig
from .errors import MissingExtraError

log = logging.getLogger(__name__)

S = argparse.SUPPRESS


def _flag(p, name: str, key: str, kind=str, help: str = "", **kw) -> None:
    p.add_argument(name, dest=key, type=kind, default=S, help=help, **kw)


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train``: a config file (TOML) plus flags that override it."""
    p = subparsers.add_parser("train", help="train or fine-tune a detector (config file + flags)",
                              description="Train a detector. Precedence: defaults < --finetune preset < --config < flags.")
    _flag(p, "--config", "config_file", help="TOML config (keys as training/config.py TrainConfig) or a run's config.json")
    _flag(p, "--manifest", "manifest", help="crops manifest CSV (unmask extract's manifest.csv or path,label[,group,split])")
    _flag(p, "--data-manifest", "manifest", help="same as --manifest")
    _flag(p, "--data", "data", help="shared data folder, used without a manifest (default: found beside the checkout, "
                                    "or $UNMASK_SHARED_DATA)")
    _flag(p, "--out", "out_dir", help="run folder (checkpoints, metrics.csv, state)")
    _flag(p, "--name", "name", help="checkpoint name in the metadata")
    _flag(p, "--version", "version")
    _flag(p, "--architecture", "architecture", help=", ".join(list_architectures()))
    p.add_argument("--cbam", dest="cbam", action="store_true", default=S, help="CBAM attention before pooling")
    _flag(p, "--input-size", "input_size", int, "0: the architecture's default; else 32-1024")
    _flag(p, "--init", "init", help=f"imagenet ({', '.join(with_imagenet_weights())}), none, or a checkpoint path / "
                                   "bundled name to fine-tune")
    p.add_argument("--finetune", dest="finetune", action="store_true", default=S,
                   help="preset: lr x0.1, stem + 4 lower blocks frozen for epoch 1, 10 warmup steps")
    for name, kind in [("epochs", int), ("samples-per-epoch", int), ("batch-size", int), ("accum-steps", int),
                       ("lr", float), ("lr-scale", float), ("weight-decay", float), ("warmup-steps", int),
                       ("label-smoothing", float), ("focal-gamma", float), ("focal-alpha", float), ("mixup", float),
                       ("freeze-blocks", int), ("freeze-epochs", int), ("ema", float), ("workers", int),
                       ("threads", int), ("seed", int), ("val-limit", int), ("val-permille", int), ("max-steps", int),
                       ("log-every", int)]:
        _flag(p, f"--{name}", name.replace("-", "_"), kind)
    p.add_argument("--loss", dest="loss", choices=["bce", "focal"], default=S)
    p.add_argument("--amp", dest="amp", choices=["none", "bf16", "fp16"], default=S, help="autocast dtype (CUDA)")
    _flag(p, "--device", "device", help="auto, cpu, cuda or cuda:N")
    _flag(p, "--sbi", "sbi", float, "share of self-blended fakes per epoch (default 0.25 on shared data, 0 on a manifest)")
    _flag(p, "--augment", "augment", help="augmentation preset: none, light, strong (a config file can override single keys)")
    _flag(p, "--cache-dir", "cache_dir", help="where decoded crops and landmarks are cached (default "
                                              "$UNMASK_CACHE_DIR/training, ~/.cache/unmask/training); '' reads the JPEGs "
                                              "each time (cache = false)")
    p.add_argument("--no-balance", dest="balance", action="store_false", default=S, help="draw classes as they occur")
    p.add_argument("--aligned", dest="aligned", action="store_true", default=S,
                   help="train and validate on crops re-cut as served (MTCNN on each crop once, cached)")
    p.add_argument("--resume", dest="resume", action="store_true", default=S, help="continue the run in --out")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=S)
    p.set_defaults(func=run_train)
    return p


def _import(what: str):
    try:
        from . import config, loop

        return config, loop
    except ImportError as exc:
        raise MissingExtraError(f"{what} needs the 'train' extra ({exc.name} is missing): pip install 'unmask[train]'") from None


def train_config(args: argparse.Namespace):
    """The resolved TrainConfig of parsed ``train`` arguments."""
    config, _ = _import("training")
    flags = {k: v for k, v in vars(args).items() if k not in {"func", "config_file", "sbi", "command_line", "command", "quiet"}}
    if "sbi" in vars(args):
        base = config.read_config_file(args.config_file).get("mix", {}) if "config_file" in vars(args) else {}
        flags["mix"] = {**base, "sbi": args.sbi} if isinstance(base, dict) else base  # not a table: the config says so
    if flags.get("cache_dir") == "":  # --cache-dir '': no crops cache (landmarks still go to the default folder)
        del flags["cache_dir"]
        flags["cache"] = False
    flags["command"] = getattr(args, "command_line", None) or shlex.join(["unmask", *sys.argv[1:]])
    return config.resolve_config(getattr(args, "config_file", None), flags)


def _one_line(fn):
    """Errors raised in DataLoader workers arrive with the worker's traceback in the message: keep its last line."""

    def wrapped(args: argparse.Namespace) -> int:
        from .errors import TrainingError

        try:
            return fn(args)
        except TrainingError as exc:
            lines = str(exc).strip().splitlines()
            if len(lines) > 1 and lines[0].startswith("Caught "):
                raise TrainingError(lines[-1].split(": ", 1)[-1]) from None
            raise

    return wrapped


@_one_line
def run_train(args: argparse.Namespace) -> int:
    _, loop = _import("training")
    cfg = train_config(args)
    path = loop.train(cfg)
    if path is None:
        log.info("no epoch checkpoint yet (stopped in epoch 1); the state in %s continues with --resume", cfg.out_dir)
    else:
        log.info("last checkpoint: %s", path)
    return 0


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``eval``: score a checkpoint on a crops manifest (or the shared DFDC validation split)."""
    p = subparsers.add_parser("eval", help="evaluate a checkpoint on a crops manifest or the DFDC validation split")
    p.add_argument("checkpoint", nargs="?", default="default", help="checkpoint path or bundled model name")
    p.add_argument("--manifest", help="crops manifest CSV; without it, the DFDC validation split of --data")
    p.add_argument("--split", choices=["all", "train", "val"], default="all", help="manifest rows to use (default all)")
    p.add_argument("--data", default="", help="shared data folder (without --manifest; default: found beside the checkout, "
                                              "or $UNMASK_SHARED_DATA)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=0, help="at most this many crops per class (0: all)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="auto: as the service scores (ONNX Runtime on CPU, PyTorch on CUDA)")
    p.add_argument("--no-tta", action="store_true", help="score the plain crop only, not the checkpoint's TTA")
    band = ScoringConfig.adaptive_tta_band
    p.add_argument("--adaptive-tta", type=float, nargs="?", const=band, default=None, metavar="BAND",
                   help="score as the service's adaptive TTA does: the other views only for crops whose plain score is "
                   f"within BAND of the threshold (default band {band})")
    p.add_argument("--as-given", action="store_true", help="score the crops as they are (resized), not re-cut as the "
                                                           "service cuts faces (MTCNN + the model's crop geometry)")
    p.add_argument("--out", default="-", help="JSON report path ('-': stdout)")
    p.add_argument("--roc", help="write the frame-level ROC curve to this PNG")
    p.add_argument("--scores", help="write per-crop scores to this CSV")
    p.add_argument("--calibrate", choices=["temperature", "youden", "eer", "fpr", "uncertain"],
                   help="fit on these crops: a temperature for the probabilities, a threshold (Youden's J, the EER "
                        "point, or the lowest one whose false-positive rate is at most --target-fpr), or the uncertain "
                        "band around the threshold (refitted by the others when the checkpoint has one)")
    p.add_argument("--aggregation", default=None, metavar="NAME",
                   help="how a video's crops make its score for the video-level figures (default: the service's, "
                        "confident; also mean, max)")
    p.add_argument("--degrade", default="", metavar="LOSS",
                   help="score the crops after a fixed quality loss, e.g. 'scale=0.5,jpeg=40' (keys: scale, jpeg, blur, "
                        "noise): the robustness table's rows")
    p.add_argument("--target-fpr", type=float, default=0.01, help="with --calibrate fpr: the false-positive rate to keep under")
    p.add_argument("--uncertain-level", type=float, default=None, metavar="ACCURACY",
                   help="the uncertain band holds the scores near the threshold where the decision is right for under "
                        "this share of the crops (default: the checkpoint's level, else %s)" % UNCERTAIN_LEVEL)
    p.add_argument("--save-as", help="where the calibrated copy goes (default: NAME-calibrated beside --out)")
    p.add_argument("--in-place", action="store_true", help="write the calibration into the checkpoint's own JSON")
    p.set_defaults(func=run_eval)
    return p


@_one_line
def run_eval(args: argparse.Namespace) -> int:
    _import("eval")
    import torch

    from ..model import strict_json
    from ..model.checkpoint import checkpoint_paths, load_checkpoint, resolve_checkpoint
    from ..model.tta import adaptive_probability, near_threshold, tta_probability
    from .calibration import fit_temperature, pick_threshold, threshold_for_fpr, uncertain_band_summary
    from .datasets import dfdc_records, manifest_records, shared_data_dir, split_records
    from .errors import TrainingError
    from .evaluate import evaluate, report, roc_png
    from .loop import cap_per_label

    corruption = _check_eval_args(args)
    path = resolve_checkpoint(args.checkpoint)
    model, info = load_checkpoint(path)
    # Every output is checked (its folder made) now: a bad one fails before the slow scoring, with nothing written.
    outputs = [Path(p) for p in (args.roc, args.scores, None if args.out == "-" else args.out) if p]
    if args.calibrate:
        outputs += [checkpoint_paths(path)[1]] if args.in_place else list(checkpoint_paths(_calibrated_stem(args, info)))
    for target in outputs:
        _check_writable(target)
    if args.manifest:
        recs, split = split_records(manifest_records(args.manifest), args.split), f"{args.manifest} ({args.split})"
    else:
        data = Path(args.data) if args.data else shared_data_dir()
        recs, split = dfdc_records(data, "val"), "dfdc_faces validation (by group)"
    if not recs:
        raise TrainingError(f"{split}: no crops to score")
    recs = cap_per_label(recs, args.limit, 0)
    tta = ("identity",) if args.no_tta else info.config.tta
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    result, labels, logits = evaluate(model, recs, info.config, tta=tta, batch_size=args.batch_size,
                                      workers=args.workers, device=device, progress=not getattr(args, "quiet", False),
                                      align=not args.as_given, corruption=corruption,
                                      aggregation=args.aggregation or ScoringConfig.aggregation,
                                      backend=args.backend, weights=path)
    probs = tta_probability(logits, info.config.temperature)
    if args.adaptive_tta is not None:  # every view was scored; the served rule picks which count (model.tta)
        probs = adaptive_probability(logits, info.config.temperature, info.config.threshold, args.adaptive_tta)
        result.update(report(recs, labels, probs, info.config.threshold, args.aggregation or ScoringConfig.aggregation))
        result["adaptive_tta"] = {"band": args.adaptive_tta, "flipped_share": round(float(near_threshold(
            logits[0], info.config.temperature, info.config.threshold, args.adaptive_tta).mean()), 4)}
    classes = {int(label) for label in labels}
    if len(classes) < 2:
        only = "real" if classes == {0} else "fake"
        if args.calibrate or args.roc:
            raise TrainingError(f"--calibrate and --roc need real and fake crops; {split} has only {only} ones")
        log.warning("%s has only %s crops: AUC, AP, EER and TPR at FPR are undefined (null)", split, only)
    report_ = {"checkpoint": str(path), "name": info.name, "version": info.version, "split": split,
               "threshold": info.config.threshold, "temperature": info.config.temperature, "tta": list(tta),
               "degrade": corruption.name, **result}
    if args.roc:
        report_["roc_png"] = str(roc_png(labels, probs, Path(args.roc), f"{info.name} on {Path(args.manifest or split).name}"))
    if args.scores:
        _write_scores(Path(args.scores), recs, probs)
    if args.calibrate:
        fitted = {}  # metrics key -> what was fitted
        # The band lies around the threshold in served scores: a new temperature or threshold drops it, refitted below.
        new_config, served = dataclasses.replace(info.config, uncertain_band=None), probs
        if args.calibrate == "temperature":
            temperature = fit_temperature(labels, logits)
            new_config = dataclasses.replace(new_config, temperature=temperature)
            served = tta_probability(logits, temperature)
            fitted["calibration"] = {"method": "temperature", "temperature": temperature, "on": split,
                                     "after": report(recs, labels, served, info.config.threshold)["frame"]}
        elif args.calibrate != "uncertain":
            if args.calibrate == "fpr":
                threshold = threshold_for_fpr(probs[labels == 0], args.target_fpr)
            else:
                threshold = pick_threshold(labels, probs, args.calibrate)
            new_config = dataclasses.replace(new_config, threshold=threshold)
            fitted["calibration"] = {"method": args.calibrate, "threshold": threshold, "on": split,
                                     "accuracy_at_threshold": float(((probs >= threshold) == (labels == 1)).mean()),
                                     "fpr_at_threshold": float((probs[labels == 0] >= threshold).mean()),
                                     "tpr_at_threshold": float((probs[labels == 1] >= threshold).mean())}
        if args.calibrate == "uncertain" or info.config.uncertain_band is not None:
            level = args.uncertain_level or info.config.uncertain_level or UNCERTAIN_LEVEL
            band = uncertain_band_summary(labels, served, new_config.threshold, level) | {"on": split}
            new_config = dataclasses.replace(new_config, uncertain_band=band["band"], uncertain_level=level)
            fitted["uncertain_band"] = band
        target = _write_calibrated(args, path, info, model, new_config, fitted)
        for key, summary in fitted.items():
            report_[key] = {**summary, "written_to": str(target)}
        log.info("%s calibration written to %s", args.calibrate, target)
    text = strict_json.dumps(report_, indent=2)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


def _check_eval_args(args: argparse.Namespace):
    """Numbers and choices, before anything is loaded, scored or written; returns the --degrade Corruption."""
    from .config import check_device
    from .corruptions import parse_corruption
    from .errors import ConfigError

    checks = [(args.batch_size >= 1, f"--batch-size must be positive, not {args.batch_size}"),
              (args.limit >= 0, f"--limit must not be negative, not {args.limit}"),
              (args.workers >= 0, f"--workers must not be negative, not {args.workers}"),
              (0 <= args.target_fpr < 1, f"--target-fpr must be in [0, 1), not {args.target_fpr}"),
              (args.adaptive_tta is None or 0 <= args.adaptive_tta <= 1, f"--adaptive-tta must be in [0, 1], not {args.adaptive_tta}"),
              (args.uncertain_level is None or 0 < args.uncertain_level <= 1,
               f"--uncertain-level must be in (0, 1], not {args.uncertain_level}")]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    check_device(args.device)
    corruption = parse_corruption(args.degrade)
    if args.aggregation is not None:
        from ..model.aggregation import STRATEGIES

        try:
            STRATEGIES.check(args.aggregation)
        except ValueError as exc:
            raise ConfigError(f"--aggregation: {exc}") from None
    if args.as_given and corruption.name != "clean":
        raise ConfigError("--degrade scores crops re-cut as served; it cannot go with --as-given")
    if args.calibrate and corruption.name != "clean":
        raise ConfigError("--calibrate fits on the crops as they come; drop --degrade to calibrate")
    return corruption


def _check_writable(path: Path) -> None:
    """Make an output's folder (as the writers do) and check the file can be written there."""
    import os

    from .errors import TrainingError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise TrainingError(f"{path}: a file stands where its folder should be") from None
    except OSError as exc:
        raise TrainingError(f"{path}: cannot create its folder ({exc.strerror or exc})") from None
    if path.is_dir():
        raise TrainingError(f"{path}: is a folder; give a file name")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise TrainingError(f"{path}: cannot be written (no write permission, or a read-only file system)")


def _calibrated_stem(args, info) -> Path:
    base = Path(args.out).parent if args.out != "-" else Path.cwd()
    return Path(args.save_as) if args.save_as else base / f"{info.name}-calibrated"


def _write_calibrated(args, path, info, model, new_config, fitted: dict) -> Path:
    """The checkpoint's own JSON (``--in-place``) or a calibrated copy gets the new threshold, temperature or band,
    and ``fitted``'s keys in its metrics (``calibration``: the temperature or threshold; ``uncertain_band``).

    The copy is named after its file (``--save-as`` stem) and its ``parent`` is the source, so a service
    reports which model it serves.
    """
    from ..model.checkpoint import checkpoint_paths, save_checkpoint, update_metadata
    from .loop import file_sha256

    # calibration's "after": the figures as served with the new setting (the slow quality test pins them)
    if args.in_place:
        return update_metadata(path, new_config.to_dict(), **fitted)
    stem = _calibrated_stem(args, info)
    info.parent = f"{info.name}@{info.version} sha256:{file_sha256(checkpoint_paths(path)[0])[:16]}"
    info.name = checkpoint_paths(stem)[0].name.removesuffix(".safetensors")
    info.config = new_config
    info.metrics = {**info.metrics, **fitted}
    info.created = ""
    return save_checkpoint(stem, model, info)


def _write_scores(path: Path, recs, probs) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "video", "label", "manipulation", "prob_fake"])
        for r, p in zip(recs, probs):
            writer.writerow([r.path, r.video, r.label, r.manipulation, f"{p:.6f}"])


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m unmask.training.commands``; what torchrun launches)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="unmask")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_eval_parser(sub)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "unmask.training.commands", *argv])
    from .errors import TrainingError

    try:
        return args.func(args)
    except TrainingError as exc:
        print(f"unmask: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
