"""Face crops from videos and images onto disk, the way inference crops them.

Same detector, margin and input size as serving (read from a checkpoint's
config), N frames per video, several processes, resumable, and a manifest
written as it goes: ``OUT/manifest.csv`` gets one row per crop, and
``OUT/done.txt`` one line per finished source, so a killed run restarts where
it stopped and never writes a source's rows twice.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing as mp
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
    todo = [str(s) for s in sources if str(s) not in done]
    counts = {"sources": 0, "crops": 0, "skipped": len(done), "failed": 0}
    manifest = options.out / "manifest.csv"
    new_manifest = not manifest.exists()
    with manifest.open("a", newline="") as mf, done_file.open("a") as df:
        writer = csv.DictWriter(mf, MANIFEST_FIELDS)
        if new_manifest:
            writer.writeheader()
        for source, rows, error in _run(todo, options):
            if error:
                counts["failed"] += 1
                log.warning("%s: %s", source, error)
            else:
                writer.writerows(rows)
                counts["crops"] += len(rows)
            counts["sources"] += 1
            mf.flush()
            df.write(source + "\n")  # after its rows: a crash never half-records a source
            df.flush()
            log.info("%d/%d %s: %d faces", counts["sources"], len(todo), Path(source).name, len(rows))
    return counts


def _run(todo: list[str], options: ExtractOptions) -> Iterator[tuple[str, list[dict], str | None]]:
    if options.workers <= 1:
        _init_worker(options)
        yield from map(_extract_one, todo)
        return
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    with ctx.Pool(options.workers, initializer=_init_worker, initargs=(options,)) as pool:
        yield from pool.imap(_extract_one, todo)


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
    try:
        kind, _ = sniff_file(path)
        frames = [read_image(path)] if kind == "image" else read_video(path, frames=options.frames)
        rows = []
        folder = options.out / "crops" / _safe_name(path)
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
        return source, [], str(exc)


def _safe_name(path: Path) -> str:
    """A folder name per source; the parent's name keeps same-named files apart."""
    return f"{path.parent.name}__{path.stem}".replace(" ", "_")
