"""The ``unmask`` command line: serve, worker, score, extract, export, train, eval.

Examples:
    unmask serve                                  # http://127.0.0.1:8000, default model
    unmask serve --no-worker --database-url postgresql://...  # an API replica
    unmask worker --database-url postgresql://... # scores the jobs API replicas queue
    unmask score photo.jpg clip.mp4 folder/       # a table on a terminal, JSON lines when piped
    unmask score folder/ --out results.jsonl      # one JSON record per line; a rerun resumes
    unmask extract clips/ --out faces/ --frames 16 # face crops + manifest.csv
    unmask export --out lite0.onnx                # ONNX file, parity checked
    unmask train --help / unmask eval --help

Exit codes: 0 all files scored (ok or no_face), 1 some file failed,
2 bad usage (missing path, unknown model, bad option).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, get_args

from ..model.config import PER_REQUEST, ScoringConfig
from ..model.errors import MediaError
from ..model.media import media_files
from ..model.printable import TextFormatter, printable

log = logging.getLogger("unmask")
DEFAULTS = ScoringConfig()


class UsageError(Exception):
    """A mistake in the command line: printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C, also while torch and timm are still importing: exit 130, no traceback
        return 130


def _main(argv: list[str] | None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm must never reach for the hub
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    # A person at a terminal reads plain notices; a log file or collector gets time, level and source (names escaped).
    plain = sys.stderr.isatty() and args.func is not cmd_serve and args.func is not cmd_worker
    handler.setFormatter(TextFormatter("unmask: %(message)s" if plain else "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, handlers=[handler])
    from ..model.checkpoint import CheckpointError
    from ..training.errors import TrainingError

    try:
        return int(args.func(args) or 0)
    except (UsageError, CheckpointError, OSError, TrainingError) as exc:  # OSError: an --out that cannot be written ...
        print(f"unmask: error: {printable(str(exc))}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unmask", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the REST API")
    _model_args(serve)
    serve.add_argument("--host", default=None, help="default 127.0.0.1 (UNMASK_HOST)")
    serve.add_argument("--port", type=int, default=None, help="default 8000 (UNMASK_PORT)")
    _job_store_args(serve)
    serve.add_argument("--allowed-root", type=Path, default=None, help="server-side paths for jobs/batches (UNMASK_ALLOWED_ROOT)")
    serve.add_argument("--no-worker", dest="worker", action="store_false", default=None,
                       help="an API replica: queue jobs and answer, and leave scoring jobs to `unmask worker` (UNMASK_WORKER=false)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="score queued jobs without HTTP, beside API replicas (serve --no-worker)")
    _model_args(worker)
    _job_store_args(worker)
    worker.add_argument("--concurrency", type=_at_least_one, default=None, help="jobs scored at once, one model (UNMASK_JOB_WORKERS, default 1)")
    worker.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port (on UNMASK_HOST); default: none")
    worker.set_defaults(func=cmd_worker)

    keygen = sub.add_parser("keygen", help="make an API key and the digest to put in UNMASK_API_KEYS")
    keygen.set_defaults(func=cmd_keygen)

    score = sub.add_parser("score", help="score images and videos (files or folders)")
    score.add_argument("paths", nargs="+", type=Path, help="files, or folders searched recursively for media")
    _model_args(score)
    score.add_argument("--format", choices=["jsonl", "table", "csv"], default=None, help="default: from --out's suffix; else table on a terminal, jsonl otherwise")
    score.add_argument("--out", type=Path, help="write records here (.jsonl, or .csv for a flat table); a rerun resumes it")
    score.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar on stderr (default: when --out is set or stderr is a terminal)")
    _scoring_option_args(score)
    score.add_argument("--save", type=Path, default=None, metavar="DIR", help="write pictures per file here: annotated image, "
                       "for videos a contact sheet and the score timeline, heat maps with --explain (PNG)")
    score.add_argument("--save-video", action=argparse.BooleanOptionalAction, default=None,
                       help="with --save (on by default there): an annotated MP4 of each video too (boxes, scores, a timeline; "
                       "reads and encodes every frame, a few CPU-seconds per clip); --no-save-video skips it")
    score.add_argument("--engine", choices=["local", "ray"], default="local", help="ray: a Ray Data job (local instance, or --ray-address)")
    score.add_argument("--actors", type=_at_least_one, default=2, help="with --engine ray: model copies scoring at once (default 2)")
    score.add_argument("--ray-address", default=None, help="with --engine ray: an existing cluster (auto, ray://host:10001)")
    score.set_defaults(func=cmd_score)

    export = sub.add_parser("export", help="export a checkpoint to ONNX and check parity")
    # Only --model: export and its parity check always run on the CPU, so --device/--backend would be ignored.
    export.add_argument("--model", "--checkpoint", dest="model", default=None, help="bundled model name or checkpoint path (default: the bundled default)")
    export.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    export.set_defaults(func=cmd_export)

    extract = sub.add_parser("extract", help="extract face crops from videos/images, as inference crops them")
    extract.add_argument("paths", nargs="+", type=Path, help="files, or folders searched recursively for media")
    extract.add_argument("--out", type=Path, required=True, help="folder for crops/, manifest.csv and done.txt")
    extract.add_argument("--model", "--checkpoint", dest="model", default=None, help="take crop margin and size from this checkpoint")
    extract.add_argument("--frames", type=int, default=DEFAULTS.frames, help=f"frames sampled per video (default {DEFAULTS.frames})")
    extract.add_argument("--label", default="", help="label written on every row: real, fake, 0 or 1")
    extract.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    extract.set_defaults(func=cmd_extract)

    _training_commands(sub)
    return parser


def _scoring_option_args(p: argparse.ArgumentParser) -> None:
    """One flag per per-request option (``model.options.ScoringOptions``), its default ScoringConfig's."""
    from ..model.options import ScoringOptions

    for name, field in ScoringOptions.model_fields.items():
        flags = [f"--{name.replace('_', '-')}"] + (["--fps"] if name == "sample_fps" else [])
        default = getattr(DEFAULTS, name)
        if field.annotation is bool:
            p.add_argument(*flags, dest=name, action="store_true", help=field.description)
            continue
        kind = next(a for a in get_args(field.annotation) if a is not type(None))  # Optional[X] -> X
        if kind is bool:  # a setting on or off by default: --NAME and --no-NAME
            p.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=default,
                           help=f"{field.description} (default {'on' if default else 'off'})")
            continue
        kind = kind if kind in (int, float) else str  # a Literal's names are checked by ScoringConfig, in one line
        p.add_argument(*flags, dest=name, type=kind, default=default,
                       help=field.description + (f" (default {default})" if default is not None else ""))


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "--checkpoint", dest="model", default=None, help="bundled model name or checkpoint path (default: the bundled default)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: CUDA when present")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto", help="auto: ONNX Runtime on CPU, PyTorch on CUDA")


def _job_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None, help="jobs.db and kept uploads (UNMASK_DATA_DIR)")
    p.add_argument("--database-url", default=None, help="the job store, shared by API replicas and workers: sqlite:///PATH or "
                   "postgresql://USER:PASSWORD@HOST:PORT/DB (UNMASK_DATABASE_URL; default DATA_DIR/jobs.db)")
    p.add_argument("--media-dir", type=Path, default=None, help="uploaded job files, shared by API replicas and workers "
                   "(UNMASK_MEDIA_DIR; default DATA_DIR/uploads)")


def scoring_config(args, **fields) -> ScoringConfig:
    """The ScoringConfig of the command line's model options (and ``fields``); bad values are usage errors."""
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available here (use --device cpu or leave it out)")
    try:
        return ScoringConfig(device=args.device, backend=args.backend, **fields)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _training_commands(sub) -> None:
    try:
        from ..training.commands import add_eval_parser, add_train_parser
    except ImportError as exc:  # the training extra is not installed
        missing = exc.name
        for name in ("train", "eval"):
            p = sub.add_parser(name, help=f"{name} (needs: pip install 'unmask[train]')")
            p.set_defaults(func=lambda args, m=missing: _raise(UsageError(f"training needs the 'train' extra ({m} is missing)")))
        return
    add_train_parser(sub)
    add_eval_parser(sub)


def _raise(exc: Exception):
    raise exc


def cmd_serve(args) -> int:
    from ..model.checkpoint import read_info, resolve_checkpoint
    from ..service.core.middleware import configure_logging

    settings = _service_settings(args, host=args.host, port=args.port, allowed_root=args.allowed_root, worker=args.worker)
    configure_logging(settings.log_format, logging.WARNING if args.quiet else logging.INFO)
    _open_store(settings).close()  # a database that cannot be used stops here (the app opens its own) ...
    read_info(resolve_checkpoint(settings.model))  # ... and so does a wrong model name or path (the weights load in the background)
    _check_can_listen(settings.host, settings.port)
    import uvicorn  # the app (and torch with it) only once every check has passed: a bad setting stops in a second

    from ..service.main import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0


def cmd_worker(args) -> int:
    """Score queued jobs until SIGTERM or Ctrl-C, which hand the running jobs back to the queue (not counted as attempts)."""
    import signal
    import threading

    from ..model.checkpoint import read_info, resolve_checkpoint
    from ..service.core.middleware import configure_logging

    settings = _service_settings(args, job_workers=args.concurrency)
    configure_logging(settings.log_format, logging.WARNING if args.quiet else logging.INFO)
    store = _open_store(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        read_info(resolve_checkpoint(settings.model))
        # torch comes with these, once every check has passed: a bad setting stops in a second
        from ..service.core import prometheus
        from ..service.jobs.background import JobThreads
        from ..service.lifespan import load_predictor

        if args.metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(args.metrics_port, addr=settings.host, registry=prometheus.REGISTRY)
        predictor = load_predictor(settings)  # once, shared by the job threads
        prometheus.record_model(predictor.model_ref)
        jobs = JobThreads(settings, store, worker=True)
        jobs.start()
        if not stop.is_set():
            assert jobs.runner is not None
            jobs.runner.start(predictor)
            log.info("worker %s: %d job threads", store.worker_id, settings.job_workers)
        while not stop.wait(1.0):
            pass
        log.info("worker %s stopping: running jobs go back to the queue", store.worker_id)
        jobs.stop()
    finally:
        store.close()
    return 0


def _service_settings(args, **flags):
    """The service's Settings: environment, then the command line's flags; a bad one is a usage error (one line)."""
    from pydantic import ValidationError

    from ..service.core.config import Settings
    from ..service.core.problems import describe_errors

    flags |= {"model": args.model, "device": args.device, "data_dir": args.data_dir, "database_url": args.database_url,
              "media_dir": args.media_dir}
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.backend != "auto":
        overrides["backend"] = args.backend
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:  # one line: "port: Input should be ..."
        raise UsageError(f"bad setting: {describe_errors(exc.errors())}") from exc
    problem = settings.environment_problem()
    if problem:
        raise UsageError(f"bad setting: {problem}")
    return settings


def _open_store(settings):
    """The job store the settings name; an unreachable database or a wrong password is a usage error (one line)."""
    from ..service.jobs.store import StoreError
    from ..service.jobs.stores import open_store

    try:
        return open_store(settings.database, settings.job_lease_s)
    except StoreError as exc:
        raise UsageError(f"bad setting: database_url: {exc}") from None


def _check_can_listen(host: str, port: int) -> None:
    """Bind once before starting: uvicorn finds a taken port only after the model has begun loading in a
    thread, and exiting then aborts the process (exit 134) instead of saying why."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn binds
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def cmd_keygen(args) -> int:
    import hashlib
    import secrets

    if sys.stdout is None:  # started with stdout closed: the key would go nowhere
        raise UsageError("standard output is closed: nowhere to print the key")
    key = secrets.token_urlsafe(32)
    print(json.dumps({"key": key, "sha256": hashlib.sha256(key.encode()).hexdigest()}))
    return 0


def _at_least_one(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def iter_media(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given, and media files (by suffix) under folders, sorted."""
    for path in paths:
        if path.is_dir():
            yield from media_files(path)
        elif path.is_file():
            yield path
        elif path.exists():  # reading a pipe with no writer would wait forever
            raise UsageError(f"{path}: not a regular file (a pipe, device or socket)")
        else:
            raise UsageError(f"{path}: no such file or folder")


def cmd_score(args) -> int:
    from ..model.checkpoint import resolve_checkpoint
    from .records import RecordWriter, already_scored, progress_bar

    config = scoring_config(args, **{name: getattr(args, name) for name in PER_REQUEST})
    files = list(iter_media(args.paths))  # check every path before loading the model
    if not files:
        raise UsageError("no media files found in the given paths")
    resolve_checkpoint(args.model)  # an unknown model too, before torch is imported
    if args.save_video and args.save is None:
        raise UsageError("--save-video needs --save DIR (the folder to write the videos in)")
    if args.save is not None:  # pictures that cannot be written are a usage error, found before any scoring
        args.save.mkdir(parents=True, exist_ok=True)
        if not os.access(args.save, os.W_OK | os.X_OK):
            raise UsageError(f"--save {args.save}: not a folder this process can write to")
    fmt = args.format or _format_for(args.out)
    done = already_scored(args.out, fmt) if args.out else set()
    todo = [f for f in files if str(f) not in done]
    if done:
        log.info("resuming %s: %d of %d files already scored", args.out, len(files) - len(todo), len(files))
    if not todo:
        return 0
    if args.engine == "ray":
        from .ray_engine import score_with_ray

        results = score_with_ray(todo, args.model, config, args.actors, address=args.ray_address)
    else:  # torch and the model only now: a bad path or flag stops in a second
        from ..model.pipeline import score_many
        from ..model.predictor import Predictor

        results = score_many(Predictor(args.model, config), todo)
    failed, counts, started = 0, Counter(), time.monotonic()
    saved_stems: set[str] = set()
    videos = 0  # annotated MP4s written
    show = args.progress if args.progress is not None else bool(args.out) or sys.stderr.isatty()
    with RecordWriter(args.out, fmt, append=bool(done)) as writer, progress_bar(len(todo), show) as bar:
        for result in results:
            failed += result.status == "error"
            counts[result.verdict or result.status] += 1
            writer.write(result)
            if args.save:
                saved = _save_pictures(result, args.save, saved_stems, args.save_video is not False)
                failed += saved is None
                videos += sum(p.suffix == ".mp4" for p in saved or [])
            bar.update(1)
    if failed:
        log.warning("%d of %d files could not be scored", failed, len(todo))
    if not args.quiet:  # on stderr, so piped records stay clean: where the pictures went, what the run came to
        if args.save:
            movies = f" ({videos} annotated video{'s' * (videos != 1)}: *.annotated.mp4)" if videos else ""
            print(f"pictures saved to {args.save}{movies}", file=sys.stderr)
        parts = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("fake", "real", "uncertain", "no_face", "error") if counts[k]]
        print(f"{len(todo)} files: {', '.join(parts)} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 1 if failed else 0


def _save_pictures(result, folder: Path, used: set[str], video: bool) -> list[Path] | None:
    """``--save``: the record's pictures (cli/evidence.py) under a name not used yet in this run; the files, None if it failed."""
    from .evidence import save_evidence

    stem, n = Path(result.path).name, 1
    while stem in used:  # same file name from two folders
        n += 1
        stem = f"{Path(result.path).name}-{n}"
    used.add(stem)
    try:
        return save_evidence(result, Path(result.path), folder, stem, video)
    except (OSError, MediaError) as exc:
        log.error("%s: pictures not saved: %s", result.path, exc)
        return None


def _format_for(out: Path | None) -> str:
    if out is not None:
        return "csv" if out.suffix.lower() == ".csv" else "jsonl"
    return "table" if sys.stdout.isatty() else "jsonl"


def cmd_extract(args) -> int:
    from ..model.checkpoint import read_info, resolve_checkpoint
    from ..training.extract import ExtractOptions, extract

    label = args.label.strip().lower()
    if label not in ("", "real", "fake", "0", "1"):  # what training accepts in a manifest (training/readers.py)
        raise UsageError(f"label must be real, fake, 0 or 1, not {args.label!r}")
    for name in ("frames", "workers"):
        if getattr(args, name) < 1:
            raise UsageError(f"{name} must be at least 1, not {getattr(args, name)}")
    sources = list(iter_media(args.paths))
    if not sources:
        raise UsageError("no media files found in the given paths")
    config = read_info(resolve_checkpoint(args.model)).config
    options = ExtractOptions(args.out, config, frames=args.frames, label=label, workers=args.workers)
    try:
        counts = extract(sources, options)
    except KeyboardInterrupt:  # the unfinished sources' crops are removed: nothing half-done is left
        print("unmask: interrupted; rerun to resume", file=sys.stderr)
        return 130
    print(json.dumps({"out": str(args.out), **counts}))
    return 1 if counts["failed"] else 0


def cmd_export(args) -> int:
    import numpy as np

    from ..model.backends import OnnxBackend, TorchBackend, export_onnx
    from ..model.checkpoint import load_checkpoint, resolve_checkpoint

    model, info = load_checkpoint(resolve_checkpoint(args.model))
    size = info.config.input_size
    export_onnx(model, size, args.out)
    batch = np.random.default_rng(0).standard_normal((4, 3, size, size)).astype(np.float32)
    diff = float(np.abs(TorchBackend(model, "cpu")(batch) - OnnxBackend(args.out, "cpu")(batch)).max())
    print(json.dumps({"onnx": str(args.out), "model": info.name, "version": info.version, "max_logit_diff": diff}))
    if diff > 1e-3:
        print(f"unmask: error: ONNX output differs from PyTorch by {diff:.2e} (> 1e-3)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
