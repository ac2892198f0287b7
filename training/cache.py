"""Face crops decoded once into one uint8 array on disk, read back through a memory map.

Training reads every crop many times. Decoding a JPEG and resizing it on
each read takes CPU from the model on a 2-core machine; the cache does it
once per file: ``NAME.npy`` holds N x S x S x 3 RGB uint8 (S = the model's
input size; 16,000 crops at 224 px are 2.4 GB), ``NAME.json`` lists the
files with their size and modification time. A cache whose list, files or
size no longer match is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .errors import TrainingError
from .transforms import resize

log = logging.getLogger(__name__)


class CropCache:
    """Crops by path: ``cache[path]`` (or ``cache(path)``) is the S x S x 3 uint8 RGB image."""

    def __init__(self, images: np.ndarray, paths: Sequence[str], misses: int = 0) -> None:
        if len(images) != len(paths):
            raise ValueError(f"{len(images)} images for {len(paths)} paths")
        self.images = images
        self.index = {p: i for i, p in enumerate(paths)}
        self.misses = misses  # crops an aligning loader found no face in (used as given)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, path: str) -> bool:
        return path in self.index

    def __getitem__(self, path: str) -> np.ndarray:
        return np.array(self.images[self.index[path]])  # a writable copy, not a view into the read-only map

    __call__ = __getitem__  # an ImageReader, like datasets.JpegReader


class ImageReadError(TrainingError, RuntimeError):
    """An image file cannot be read."""


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageReadError(f"{path}: cannot read image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_image(path: str, size: int) -> np.ndarray:
    """One file decoded and resized as the cache stores it (the uncached path reads the same pixels)."""
    return resize(read_rgb(path), size)


def fingerprint(paths: Sequence[str], size: int, variant: str = "") -> str:
    """Hash of the file list, each file's size and mtime, the image size and the loader's variant."""
    h = hashlib.sha256(f"{size}\n{variant}\n".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def build_cache(paths: Sequence[str], size: int, stem: str | Path, threads: int = 2,
                load: Callable[[str, int], np.ndarray] = load_image, variant: str = "") -> CropCache:
    """The cache of ``paths`` at ``size`` px in ``stem``.npy/.json: reused when it matches, else (re)built.

    ``load(path, size)`` makes each image (default: decode and resize); a
    loader that does more (``align.AlignedLoader``) names itself in
    ``variant`` and may count ``misses``.
    """
    paths = sorted(set(map(str, paths)))
    stem = Path(stem)
    array_path, index_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    key = fingerprint(paths, size, variant)
    if array_path.is_file() and index_path.is_file():
        index = json.loads(index_path.read_text())
        if index.get("fingerprint") == key:
            return CropCache(np.load(array_path, mmap_mode="r"), index["paths"], index.get("misses", 0))
        log.info("cache %s is stale: rebuilding", array_path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tmp = array_path.with_name(f"{array_path.stem}.{os.getpid()}.tmp.npy")  # per process: torchrun ranks may build it at once
    images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
    start = time.monotonic()

    def fill(i: int) -> None:
        images[i] = load(paths[i], size)

    with ThreadPoolExecutor(max(1, threads)) as pool:  # cv2 releases the GIL while decoding
        for n, _ in enumerate(pool.map(fill, range(len(paths))), 1):
            if n % 5000 == 0:
                log.info("cache: %d/%d decoded", n, len(paths))
    images.flush()
    os.replace(tmp, array_path)  # the open map stays valid: the rename keeps the inode
    misses = int(getattr(load, "misses", 0))
    index_path.write_text(json.dumps({"fingerprint": key, "size": size, "variant": variant, "misses": misses, "paths": paths}))
    log.info("cache: %d crops at %d px in %.0f s -> %s", len(paths), size, time.monotonic() - start, array_path)
    return CropCache(np.load(array_path, mmap_mode="r"), paths, misses)
