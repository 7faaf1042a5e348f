"""Interleaved timing on the process CPU clock charges no row for the threads a previous row
left running (XLA's keep spinning for a few ms after a jax step)."""

import threading
import time

from nnparity.bench.speed import best_interleaved

BUSY = 0.01  # seconds of CPU each row's own work takes


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _leaves_a_thread_spinning() -> None:
    threading.Thread(target=_busy, args=(0.03,), daemon=True).start()


def test_a_row_is_not_charged_for_the_previous_rows_threads():
    best = best_interleaved({"spiller": _leaves_a_thread_spinning,
                             "measured": lambda: _busy(BUSY)}, repeats=3, clock="cpu")
    assert best["measured"] < 1.5 * BUSY, best
