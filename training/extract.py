"""Face crops from videos and images onto disk, the way inference crops them.

Same detector, margin and input size as serving (read from a checkpoint's
config), N frames per video, several processes, resumable, and a manifest
written as it goes: ``OUT/manifest.csv`` gets one row per crop, and
``OUT/done.txt`` one line per finished source (by resolved path; a source
that failed is not finished, so a rerun tries it again), so a killed run
restarts where it stopped and never writes a source's rows twice.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import multiprocessing as mp
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2

from ..model.config import ModelConfig, ScoringConfig
from ..model.errors import MediaError
from ..model.faces import FaceDetector, crop_face
from ..model.media import read_image, read_video, sniff_file

log = logging.getLogger(__name__)
DEFAULTS = ScoringConfig()
MANIFEST_FIELDS = ["path", "source", "label", "frame", "time", "face", "x1", "y1", "x2", "y2", "detection"]


@dataclass
class ExtractOptions:
    out: Path
    config: ModelConfig
    frames: int = DEFAULTS.frames
    label: str = ""
    workers: int = 1
    max_faces: int = 4


def extract(sources: Iterable[Path], options: ExtractOptions) -> dict[str, int]:
    """Extract every source not yet done; return counts (sources, crops, skipped, failed)."""
    options.out.mkdir(parents=True, exist_ok=True)
    done_file = options.out / "done.txt"
    done = set(done_file.read_text().splitlines()) if done_file.exists() else set()
    done |= {str(Path(line).resolve()) for line in done if line}  # done.txt files from before resolved paths
    manifest = options.out / "manifest.csv"
    _drop_unfinished_rows(manifest, done)
    unique = list(dict.fromkeys(str(Path(s).resolve()) for s in sources))  # one file however spelt or found
    todo = [s for s in unique if s not in done]
    counts = {"sources": 0, "crops": 0, "skipped": len(unique) - len(todo), "failed": 0}
    new_manifest = not manifest.exists() or manifest.stat().st_size == 0
    started: list[str] = []
    results = _run(todo, options, started)
    try:
        with manifest.open("a", newline="") as mf, done_file.open("a") as df:
            writer = csv.DictWriter(mf, MANIFEST_FIELDS)
            if new_manifest:
                writer.writeheader()
            for source, rows, error in results:
                counts["sources"] += 1
                if error:  # not marked done: a rerun tries it again
                    counts["failed"] += 1
                    log.warning("%s: %s", source, error)
                    continue
                writer.writerows(rows)
                counts["crops"] += len(rows)
                mf.flush()
                df.write(source + "\n")  # after its rows: rows without this line are dropped on the next run
                df.flush()
                log.info("%d/%d %s: %d faces", counts["sources"], len(todo), Path(source).name, len(rows))
    except KeyboardInterrupt:
        results.close()  # stops the workers before their crops go
        finished = set(done_file.read_text().splitlines())
        _drop_unfinished_rows(manifest, finished)
        for source in started:  # crops no manifest row lists
            if source not in finished:
                shutil.rmtree(_crop_folder(options.out, source), ignore_errors=True)
        raise
    return counts


def _drop_unfinished_rows(manifest: Path, done: set[str]) -> None:
    """Rewrite the manifest without rows of sources missing from done.txt (a kill between the two writes)."""
    if not manifest.exists():
        return
    with manifest.open(newline="") as f:
        if all(row["source"] in done for row in csv.DictReader(f)):
            return
    kept = manifest.with_name(manifest.name + ".tmp")
    with manifest.open(newline="") as f, kept.open("w", newline="") as out:
        writer = csv.DictWriter(out, MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(row for row in csv.DictReader(f) if row["source"] in done)
    kept.replace(manifest)


def _run(todo: list[str], options: ExtractOptions, started: list[str]) -> Iterator[tuple[str, list[dict], str | None]]:
    """Results in ``todo`` order; ``started`` gets each source before any process may write its crops."""
    if options.workers <= 1:
        _init_worker(options)
        for source in todo:
            started.append(source)
            yield _extract_one(source)
        return
    started.extend(todo)  # any of them may be in a worker's hands
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    with _sigint_ignored():  # inherited: Ctrl-C goes to the whole process group, only this process handles it
        pool = ctx.Pool(options.workers, initializer=_init_worker, initargs=(options,))
    with pool:  # leaving it (also on Ctrl-C) terminates the workers
        yield from pool.imap(_extract_one, todo)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_worker: tuple[FaceDetector, ExtractOptions] | None = None


def _init_worker(options: ExtractOptions) -> None:
    global _worker
    import torch

    torch.set_num_threads(1 if options.workers > 1 else torch.get_num_threads())
    _worker = (FaceDetector(ScoringConfig(max_faces=options.max_faces)), options)


def _extract_one(source: str) -> tuple[str, list[dict], str | None]:
    assert _worker is not None
    detector, options = _worker
    path = Path(source)
    folder = _crop_folder(options.out, source)
    shutil.rmtree(folder, ignore_errors=True)  # an interrupted run's crops: written again from scratch
    try:
        kind, _ = sniff_file(path)
        frames = [read_image(path)] if kind == "image" else read_video(path, frames=options.frames)
        rows = []
        folder.mkdir(parents=True, exist_ok=True)
        for frame in frames:
            for i, face in enumerate(detector.detect(frame.image)):
                crop = crop_face(frame.image, face.box, options.config.crop, options.config.input_size)
                crop_path = folder / f"{frame.index:06d}_{i}.jpg"
                cv2.imwrite(str(crop_path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
                x1, y1, x2, y2 = (round(float(v), 1) for v in face.box)
                rows.append(
                    {"path": str(crop_path.relative_to(options.out)), "source": source, "label": options.label,
                     "frame": frame.index, "time": frame.time, "face": i,
                     "x1": x1, "y1": y1, "x2": x2, "y2": y2, "detection": round(face.probability, 4)}
                )
        return source, rows, None
    except (MediaError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)  # a video can fail after some crops; none are listed
        return source, [], str(exc)


def _crop_folder(out: Path, source: str) -> Path:
    """crops/PARENT__NAME-HASH for a resolved source path: readable, and the hash of the
    whole path keeps apart sources whose names clean up alike; a rerun gets the same folder."""
    path = Path(source)
    digest = hashlib.sha1(source.encode()).hexdigest()[:8]
    return out / "crops" / f"{path.parent.name}__{path.name}-{digest}".replace(" ", "_")
