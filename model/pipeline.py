"""Score many files with decoding/detection overlapping classification.

A background thread prepares (decodes, detects, crops) the next files while
the caller's thread classifies the current one, through a bounded queue so
memory holds at most ``prefetch`` prepared files. One bad file becomes an
error record and never stops the run.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Iterable, Iterator

from .errors import MediaError
from .predictor import Predictor
from .results import MediaResult

_DONE = object()


def score_many(predictor: Predictor, paths: Iterable[str | Path], prefetch: int = 2) -> Iterator[MediaResult]:
    """Yield one MediaResult per path, in order."""
    handoff: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def produce() -> None:
        try:
            for path in paths:
                if stop.is_set():
                    return
                try:
                    item = predictor.prepare(path)
                except (MediaError, OSError) as exc:
                    item = predictor.error_record(path, exc)
                handoff.put(item)
        except BaseException as exc:  # surface unexpected failures in the caller's thread
            handoff.put(exc)
        finally:
            handoff.put(_DONE)

    worker = threading.Thread(target=produce, name="unmask-prepare", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item if isinstance(item, MediaResult) else predictor.finish(item)
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                pass
