"""The background producer used for decoding ahead and for preparing the next files."""

import threading
import time

import pytest
from unmask.model.prefetch import in_background


def test_items_come_in_order():
    assert list(in_background(range(50), ahead=3)) == list(range(50))


def test_a_producer_error_is_raised_at_its_item():
    def items():
        yield 1
        yield 2
        raise ValueError("broken frame")

    got = []
    with pytest.raises(ValueError, match="broken frame"):
        for item in in_background(items(), ahead=2):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_and_closes_the_producer():
    produced, closed = [], threading.Event()

    def items():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()  # the video file would be released here

    stream = in_background(items(), ahead=2)
    assert next(stream) == 0
    stream.close()
    assert closed.wait(5)
    time.sleep(0.05)
    assert len(produced) <= 5  # it did not run on to the end
