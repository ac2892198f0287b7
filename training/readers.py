"""Readers for public forgery datasets, each from its own documented layout.

Every reader returns ``Sample`` rows (path, label, group, split, dataset,
manipulation) so extraction, training and eval treat all datasets alike.
``group`` is what must not straddle train and validation (the source identity
or video); ``split`` is the dataset's official split where it has one.

    read_dataset("ffpp", root, compression="c23")
    read_dataset("dfdc", root)
    read_dataset("celebdf", root)
    read_dataset("csv", "manifest.csv")
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..model.registry import Registry
from .errors import TrainingError

log = logging.getLogger(__name__)

Reader = Callable[..., list["Sample"]]
READERS: Registry[Reader] = Registry("dataset reader")
register_reader = READERS.register
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


class DatasetLayoutError(TrainingError, ValueError):
    """The folder does not look like the layout the reader expects."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 1 = fake
    group: str
    split: str = ""  # "train" | "val" | "test" | "" (none given)
    dataset: str = ""
    manipulation: str = ""
    video: str = ""  # the video a crop came from, for video-level metrics ("" = the file itself)


def list_readers() -> list[str]:
    return READERS.names()


def read_dataset(kind: str, root: str | Path, **kwargs) -> list[Sample]:
    samples = READERS.get(kind)(Path(root), **kwargs)
    if not samples:
        raise DatasetLayoutError(f"{root}: no {kind} samples found; see training/readers.py for the expected layout")
    log.info("%s: %d samples (%d fake) from %s", kind, len(samples), sum(s.label for s in samples), root)
    return samples


@register_reader("ffpp")
def read_ffpp(root: Path, compression: str = "c23", methods: tuple[str, ...] = FFPP_METHODS) -> list[Sample]:
    """FaceForensics++ as its download script lays it out.

    ``original_sequences/youtube/<c>/videos/000.mp4`` (real),
    ``manipulated_sequences/<Method>/<c>/videos/000_003.mp4`` (fake: target 000,
    source 003) and the official splits ``splits/{train,val,test}.json``
    (lists of [target, source] id pairs). Group = the target id, the person
    whose video it is.
    """
    split_of = _ffpp_splits(root / "splits")
    samples = []
    originals = root / "original_sequences" / "youtube" / compression / "videos"
    if not originals.is_dir():
        raise DatasetLayoutError(f"{originals}: missing (is {root} a FaceForensics++ root, compression {compression}?)")
    for video in sorted(originals.glob("*.mp4")):
        samples.append(Sample(video, 0, video.stem, split_of.get(video.stem, ""), "ffpp", ""))
    for method in methods:
        folder = root / "manipulated_sequences" / method / compression / "videos"
        for video in sorted(folder.glob("*.mp4")) if folder.is_dir() else []:
            target = video.stem.split("_")[0]
            samples.append(Sample(video, 1, target, split_of.get(target, ""), "ffpp", method))
    return samples


def _ffpp_splits(folder: Path) -> dict[str, str]:
    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        path = folder / f"{split}.json"
        if path.is_file():
            for pair in json.loads(path.read_text()):
                for video_id in pair:
                    split_of[str(video_id)] = split
    return split_of


@register_reader("dfdc")
def read_dfdc(root: Path) -> list[Sample]:
    """DFDC: every ``metadata.json`` under root (one per ``dfdc_train_part_N``).

    Each maps ``name.mp4`` to ``{"label": "FAKE"|"REAL", "split": ..., "original": ...}``.
    Group = the original video a fake was made from (a real video is its own).
    """
    samples = []
    for meta_path in sorted(root.rglob("metadata.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetLayoutError(f"{meta_path}: not valid JSON: {exc}") from exc
        for name, info in sorted(meta.items()):
            label = 1 if str(info.get("label", "")).upper() == "FAKE" else 0
            group = info.get("original") or name if label else name
            video = meta_path.parent / name
            samples.append(Sample(video, label, Path(group).stem, "", "dfdc", ""))
    return samples


@register_reader("celebdf")
def read_celebdf(root: Path) -> list[Sample]:
    """Celeb-DF v2: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and
    ``List_of_testing_videos.txt`` (lines ``1 Celeb-real/id0_0000.mp4``; 1 = real).

    Listed videos are the test split, the rest train. Group = the target
    identity (``id0`` of ``id0_id1_0000.mp4``; the file stem for YouTube-real).
    """
    listing = root / "List_of_testing_videos.txt"
    if not listing.is_file():
        raise DatasetLayoutError(f"{listing}: missing (is {root} a Celeb-DF v2 root?)")
    test = {line.split()[1] for line in listing.read_text().splitlines() if len(line.split()) == 2}
    samples = []
    for folder, label in (("Celeb-real", 0), ("YouTube-real", 0), ("Celeb-synthesis", 1)):
        for video in sorted((root / folder).glob("*.mp4")):
            rel = f"{folder}/{video.name}"
            group = video.stem.split("_")[0] if folder != "YouTube-real" else video.stem
            samples.append(Sample(video, label, group, "test" if rel in test else "train", "celebdf", "celeb-synthesis" if label else ""))
    return samples


@register_reader("csv")
def read_csv_manifest(path: Path) -> list[Sample]:
    """A CSV with columns ``path,label`` and optional ``group,split,manipulation``
    and ``source`` (or ``video``): the video a crop came from, as in the
    manifest.csv that ``unmask extract`` writes.

    Paths are relative to the CSV's folder (or absolute); labels are
    real/fake or 0/1. Without a group, the source video is the group, else
    each file is its own.
    """
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: no such manifest")
    try:
        return _csv_samples(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetLayoutError(f"{path}: not a UTF-8 CSV manifest ({exc})") from exc


def _csv_samples(path: Path) -> list[Sample]:
    samples = []
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: the BOM that spreadsheets write
        reader = csv.DictReader(fh)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetLayoutError(f"{path}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            if row["path"] is None or row["label"] is None:  # a short row: DictReader fills what it lacks with None
                fields = sum(value is not None for value in row.values())
                raise DatasetLayoutError(f"{path}:{line}: {fields} fields, the header has {len(reader.fieldnames)} "
                                         f"({','.join(reader.fieldnames)})")
            label = row["label"].strip().lower()
            if label not in ("real", "fake", "0", "1"):
                raise DatasetLayoutError(f"{path}:{line}: label {row['label']!r} is not real/fake/0/1 (extract with --label)")
            file = Path(row["path"])
            file = file if file.is_absolute() else path.parent / file
            video = row.get("source") or row.get("video") or ""
            samples.append(
                Sample(file, int(label in ("fake", "1")), row.get("group") or video or row["path"],
                       (row.get("split") or "").strip().lower(), "csv", row.get("manipulation") or "", video)
            )
    return samples
