"""Run a producer ahead of its consumer in a background thread, through a bounded queue.

Used twice: a video's next frames are decoded while the current one is
searched for faces (model.predictor), and the next files are prepared while
the current one is classified (model.pipeline). FFmpeg, MTCNN and ONNX
Runtime release the GIL, so the two threads share the cores.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_DONE = object()


def close_iterator(iterator: object) -> None:
    """Close a generator (anything with ``close``), e.g. one holding a video file open."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


class _Raised:
    """An exception of the producer, carried to the consumer's thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def in_background(items: Iterable[T], ahead: int, name: str = "unmask-prefetch") -> Iterator[T]:
    """Yield ``items`` in order while a thread computes up to ``ahead`` of them in advance.

    An exception of the producer is raised in the consumer at the item where
    it happened. When the consumer stops early (break, exception, close), the
    producer stops at its next item and the iterable is closed in its thread.

    Args:
        items: any iterable; a generator is closed when the producer ends.
        ahead: how many produced items may wait (at least 1).
        name: the thread's name (seen in stack dumps).
    """
    handoff: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                handoff.put(item)
                if stop.is_set():  # checked before computing the next item
                    return
        except BaseException as exc:  # surfaced in the consumer's thread
            handoff.put(_Raised(exc))
        finally:
            close_iterator(iterator)
            handoff.put(_DONE)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                pass
