"""Training data: DFDC face crops (split by group), UTKFace reals, and pseudo-fakes made on the fly.

Labels: 0 = real, 1 = fake. Each item is ``(tensor, label, source)`` where
source is one of ``dfdc_real``, ``utk_real``, ``dfdc_fake`` or the name of
the pseudo-fake generator that made it (``sbi``, ``reenact``: fakes.py).
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .cache import load_image
from .errors import TrainingError
from .fakes import FakeMaker, build
from .readers import DatasetLayoutError, read_dataset
from .transforms import AugmentConfig, degrade, to_chw

log = logging.getLogger(__name__)

VAL_PERMILLE = 100  # groups whose hash falls below this (out of 1000) are validation
SHARED_DATA_ENV = "UNMASK_SHARED_DATA"


def shared_data_dir() -> Path:
    """The shared data folder: ``$UNMASK_SHARED_DATA``, else ``shared/data`` beside the checkout or the working directory.

    Raises DataError naming the flag and variable to set when none is found.
    """
    import os

    if os.environ.get(SHARED_DATA_ENV):
        return Path(os.environ[SHARED_DATA_ENV])
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        candidate = base / "shared" / "data"
        if (candidate / "dfdc_faces").is_dir():
            return candidate
    raise DataError(f"shared data folder not found: pass --data DIR or set {SHARED_DATA_ENV}")


class DataError(TrainingError, RuntimeError):
    """The data folder is missing something or is malformed."""


@dataclass(frozen=True)
class FaceRecord:
    path: str
    label: int  # 0 real, 1 fake
    group: str
    source: str
    video: str = ""  # the video a crop came from (video-level eval); "" = the file itself
    manipulation: str = ""
    split: str = ""  # the dataset's official split, if any


def is_val_group(group: str, val_permille: int = VAL_PERMILLE) -> bool:
    """Deterministic split rule: sha1(group) mod 1000 < val_permille -> validation."""
    return int(hashlib.sha1(group.encode("utf-8")).hexdigest()[:8], 16) % 1000 < val_permille


def dfdc_records(data_dir: str | Path, split: str, val_permille: int = VAL_PERMILLE) -> list[FaceRecord]:
    """DFDC crops of one split (``train``, ``val`` or ``all``), split by group, never by file."""
    if split not in {"train", "val", "all"}:
        raise ValueError(f"split must be train, val or all, not {split!r}")
    root = Path(data_dir) / "dfdc_faces"
    labels = root / "labels.csv"
    if not labels.is_file():
        raise DataError(f"{labels}: not found (is --data the shared data folder?)")
    out = []
    with labels.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["label"] not in {"real", "fake"}:
                raise DataError(f"{labels}: bad label {row['label']!r}")
            val = is_val_group(row["group"], val_permille)
            if split == "all" or (split == "val") == val:
                label = int(row["label"] == "fake")
                out.append(FaceRecord(str(root / row["path"]), label, row["group"], "dfdc_fake" if label else "dfdc_real",
                                      row.get("video", "")))
    return out


def manifest_records(manifest: str | Path) -> list[FaceRecord]:
    """Crops listed in a CSV: ``unmask extract``'s manifest.csv or a readers.py CSV manifest.

    Parsed by ``readers.read_csv_manifest`` (columns, labels, groups); here
    only turned into FaceRecords and checked for missing files.
    """
    try:
        samples = read_dataset("csv", Path(manifest))
    except DatasetLayoutError as exc:
        raise DataError(str(exc)) from exc
    out = [
        FaceRecord(str(s.path), s.label, s.group, "fake" if s.label else "real", s.video or str(s.path), s.manipulation, s.split)
        for s in samples
    ]
    path = Path(manifest)
    missing = [r.path for r in out if not Path(r.path).is_file()]
    if missing:
        raise DataError(f"{path}: {len(missing)} of {len(out)} files not found, e.g. {missing[0]} (paths are relative to the CSV)")
    return out


SPLITS = ("train", "val", "test")  # the values a manifest's split column may hold


def split_records(records: list[FaceRecord], split: str, val_permille: int = VAL_PERMILLE) -> list[FaceRecord]:
    """``train``, ``val`` or ``all``: the official split when every record has one, else by group hash.

    With official splits, ``val`` is the ``val`` rows, or the ``test`` rows when there is no ``val``.
    """
    if split == "all":
        return list(records)
    if split not in {"train", "val"}:
        raise ValueError(f"split must be train, val or all, not {split!r}")
    if records and all(r.split for r in records):
        odd = [r for r in records if r.split not in SPLITS]
        if odd:
            raise DataError(f"split {odd[0].split!r} of {odd[0].path} ({len(odd)} rows in all) is not train, val or test")
        held = "val" if any(r.split == "val" for r in records) else "test"
        return [r for r in records if r.split == (held if split == "val" else "train")]
    return [r for r in records if is_val_group(r.group, val_permille) == (split == "val")]


def utk_records(data_dir: str | Path) -> list[FaceRecord]:
    """All UTKFace crops (real)."""
    root = Path(data_dir) / "utkface"
    if not root.is_dir():
        raise DataError(f"{root}: not found")
    return [FaceRecord(str(p), 0, p.name, "utk_real") for p in sorted(root.glob("*.jpg"))]


@dataclass
class Mix:
    """Share of each kind of item in an epoch (normalised), and of UTKFace among reals and pseudo-fake sources.

    Each pseudo-fake generator of ``fakes.GENERATORS`` has its share here, under its name.
    """

    real: float = 0.5
    dfdc_fake: float = 0.25
    sbi: float = 0.25
    utk_share: float = 0.33
    sbi_regional: float = 0.0  # share of SBI fakes blended in one region of the face (sbi.REGIONS) only
    reenact: float = 0.0  # reenactment-like fakes (reenact.py)


ImageReader = Callable[[str], np.ndarray]  # path -> S x S x 3 RGB uint8 (a CropCache, or JpegReader)


class JpegReader:
    """Reads and resizes each crop on every call: the uncached path (same pixels as the cache with the same ``load``)."""

    def __init__(self, size: int, load: Callable[[str, int], np.ndarray] = load_image) -> None:
        self.size = size
        self.load = load

    def __call__(self, path: str) -> np.ndarray:
        return self.load(path, self.size)


class TrainDataset(Dataset):
    """``length`` items per epoch drawn per ``mix``; pseudo-fakes are made on the fly from reals and their landmarks.

    Items are ``(uint8 3xSxS tensor, label, source)``; the batch-level
    augmentation and normalisation happen in the training loop. Call
    ``set_epoch`` before each epoch (before the DataLoader iterator is made);
    item ``i`` of epoch ``e`` is deterministic given the seed. ``makers``: the
    pseudo-fake makers by name (default: ``fakes.build(mix)``, default settings).
    """

    def __init__(
        self,
        dfdc_reals: list[FaceRecord],
        utk_reals: list[FaceRecord],
        dfdc_fakes: list[FaceRecord],
        landmarks: dict[str, np.ndarray],
        length: int,
        read: ImageReader,
        augment: AugmentConfig,
        mix: Mix | None = None,
        seed: int = 0,
        makers: dict[str, FakeMaker] | None = None,
    ) -> None:
        if not dfdc_fakes or not (dfdc_reals or utk_reals):
            raise DataError("training needs fakes and some real faces")
        self.dfdc_reals, self.utk_reals, self.dfdc_fakes = dfdc_reals, utk_reals, dfdc_fakes
        self.landmarks, self.length, self.read, self.augment = landmarks, length, read, augment
        self.mix, self.seed = mix or Mix(), seed
        self.makers = build(self.mix) if makers is None else makers
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        rng = np.random.default_rng((self.seed, epoch, 1))
        # Kinds: 0 real, 1 stored fake, 2... the makers in order. A generator with no share has no slot (a zero
        # share draws the same kinds as none), so runs from before a generator existed draw the same items.
        p = np.array([self.mix.real, self.mix.dfdc_fake, *(getattr(self.mix, name) for name in self.makers)], dtype=np.float64)
        self.kinds = rng.choice(len(p), size=self.length, p=p / p.sum())

    def __len__(self) -> int:
        return self.length

    def _pick_real(self, rng: np.random.Generator) -> FaceRecord:
        use_utk = not self.dfdc_reals or (self.utk_reals and rng.random() < self.mix.utk_share)
        pool = self.utk_reals if use_utk else self.dfdc_reals
        return pool[rng.integers(len(pool))]

    def __getitem__(self, i: int):
        rng = np.random.default_rng((self.seed, self.epoch, 2, i))
        kind = self.kinds[i]
        if kind == 1:
            rec = self.dfdc_fakes[rng.integers(len(self.dfdc_fakes))]
            img, label, source = self.read(rec.path), 1, rec.source
        else:
            rec = self._pick_real(rng)
            img = self.read(rec.path)
            if kind >= 2:
                source = list(self.makers)[kind - 2]
                img, _ = self.makers[source](np.asarray(img), self.landmarks[rec.path], rng)
                label = 1
            else:
                label, source = 0, rec.source
        if self.augment.per_item:
            img = degrade(np.asarray(img), self.augment, rng)
        return to_chw(img), torch.tensor(float(label)), source


class EvalDataset(Dataset):
    """Fixed records, resized only (uint8 items); with ``make_fake`` each (real) record becomes a fixed fake of it."""

    def __init__(self, records: list[FaceRecord], read: ImageReader, landmarks=None, make_fake: FakeMaker | None = None,
                 seed=1234):
        if make_fake is not None and landmarks is None:
            raise ValueError("pseudo-fake evaluation needs landmarks")
        self.records, self.read = records, read
        self.landmarks, self.make_fake, self.seed = landmarks, make_fake, seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        rec = self.records[i]
        img = self.read(rec.path)
        label = rec.label
        if self.make_fake is not None:
            img, _ = self.make_fake(np.asarray(img), self.landmarks[rec.path], np.random.default_rng((self.seed, i)))
            label = 1
        return to_chw(img), torch.tensor(float(label)), rec.source
