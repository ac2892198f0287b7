"""The ``train`` and ``eval`` subcommands, registered on the unmask CLI's argparse subparsers."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_DATA = "../shared/data"  # relative to the working directory


def _data_dir(value: str) -> str:
    path = (Path.cwd() / value).resolve()
    if not (path / "dfdc_faces" / "labels.csv").is_file():
        raise argparse.ArgumentTypeError(f"{path}: no dfdc_faces/labels.csv (point --data at the shared data folder)")
    return str(path)


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train``: fit a detector on DFDC crops + SBI fakes."""
    from .loop import TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser("train", help="train a detector on DFDC face crops and self-blended fakes")
    p.add_argument("--architecture", default=d.architecture)
    p.add_argument("--input-size", type=int, default=d.input_size, help="0: the architecture's default")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--samples-per-epoch", type=int, default=d.samples_per_epoch)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default=d.amp, help="autocast dtype (CUDA)")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (0: default)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--val-limit", type=int, default=d.val_limit, help="cap val crops per class (0: all)")
    p.add_argument("--name", default=d.name, help="checkpoint name in the metadata")
    p.add_argument("--out", default=d.out_dir, help="run folder (checkpoints, metrics.csv)")
    p.add_argument("--data", type=_data_dir, default=DEFAULT_DATA, help="shared data folder")
    p.add_argument("--init", default=d.init, help="imagenet, none, or a checkpoint path to fine-tune")
    p.set_defaults(func=run_train)
    return p


def run_train(args: argparse.Namespace) -> int:
    from .loop import TrainConfig, train

    cfg = TrainConfig(
        data=args.data,
        out_dir=args.out,
        name=args.name,
        architecture=args.architecture,
        input_size=args.input_size,
        init=args.init,
        epochs=args.epochs,
        samples_per_epoch=args.samples_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        label_smoothing=args.label_smoothing,
        amp=args.amp,
        workers=args.workers,
        threads=args.threads,
        seed=args.seed,
        val_limit=args.val_limit,
        command=getattr(args, "command_line", None) or shlex.join(["unmask", *sys.argv[1:]]),
    )
    path = train(cfg)
    log.info("last checkpoint: %s", path)
    return 0


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``eval``: score a checkpoint on the DFDC validation split."""
    p = subparsers.add_parser("eval", help="evaluate a checkpoint on the DFDC validation split (JSON report)")
    p.add_argument("checkpoint", nargs="?", default="default", help="checkpoint path or bundled model name")
    p.add_argument("--data", type=_data_dir, default=DEFAULT_DATA, help="shared data folder")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=0, help="at most this many crops per class (0: all)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default="-", help="JSON report path ('-': stdout)")
    p.set_defaults(func=run_eval)
    return p


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from unmask.model.checkpoint import load_checkpoint, resolve_checkpoint

    from . import metrics
    from .datasets import EvalDataset, dfdc_records
    from .loop import cap_per_label, predict

    path = resolve_checkpoint(args.checkpoint)
    model, info = load_checkpoint(path)
    model = model.to(memory_format=torch.channels_last)
    recs = cap_per_label(dfdc_records(args.data, "val"), args.limit, 0)
    c = info.config
    labels, probs = predict(
        model, EvalDataset(recs, c.input_size, c.mean, c.std), args.batch_size, torch.device("cpu"), args.workers
    )
    report = {
        "checkpoint": str(path),
        "name": info.name,
        "version": info.version,
        "split": "dfdc_faces validation (by group)",
        "threshold": c.threshold,
        **metrics.summary(labels, probs, c.threshold),
    }
    text = json.dumps(report, indent=2)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m unmask.training.commands``) until the unmask CLI wires these in."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="unmask")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_eval_parser(sub)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "unmask.training.commands", *argv])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
