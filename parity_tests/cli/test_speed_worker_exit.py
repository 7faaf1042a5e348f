"""``nnparity check``'s worker pool: once the results are in, the workers are stopped, not
waited for. A worker's own exit ended 4.4 s after the last result of a full check (1.8 s for a
TensorFlow worker of 3 cases), all of it added to the command's wall time."""

from __future__ import annotations

import argparse
import multiprocessing.util
import time

from nnparity.parity import cases
from nnparity.parity.workers import run_backends
from nnparity.progress import Progress

SLOW_EXIT_S = 60


def cases_with_a_slow_exit(args: argparse.Namespace) -> list[cases.Case]:
    """In the worker: one quick case, and an exit that takes a minute (a slow finaliser)."""
    multiprocessing.util.Finalize(None, time.sleep, args=(SLOW_EXIT_S,), exitpriority=10)
    return cases.select("quick", pattern="xor", dtype="float64")[:1]


def test_the_results_come_back_without_waiting_for_the_workers_exit() -> None:
    args = argparse.Namespace(seed=0, allow_tf32=False)
    started = time.monotonic()
    with Progress(1, "check") as progress:
        (run,) = run_backends(["numpy"], args, cases_with_a_slow_exit, 1, progress)
    assert time.monotonic() - started < SLOW_EXIT_S / 3
    assert run.unavailable is None and len(run.results) == 1
    assert run.results[0].comparisons and run.results[0].error is None
