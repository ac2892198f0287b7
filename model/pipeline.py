"""Score many files with decoding/detection overlapping classification.

A background thread prepares (decodes, detects, crops) the next files while
the caller's thread classifies the current one, through a bounded queue so
memory holds at most ``prefetch`` prepared files. One bad file becomes an
error record and never stops the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from .errors import MediaError
from .predictor import Predictor, Prepared
from .prefetch import in_background
from .results import MediaResult


def score_many(predictor: Predictor, paths: Iterable[str | Path], prefetch: int = 2) -> Iterator[MediaResult]:
    """Yield one MediaResult per path, in order."""

    def prepare(path: str | Path) -> Prepared | MediaResult:
        try:
            return predictor.prepare(path)
        except (MediaError, OSError) as exc:
            return predictor.error_record(path, exc)

    for item in in_background(map(prepare, paths), prefetch, name="unmask-prepare"):
        yield item if isinstance(item, MediaResult) else predictor.finish(item)
