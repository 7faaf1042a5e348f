"""``nnparity check``'s backends side by side: each backend's cases in a worker process of its own.

The cases of one backend are judged one after another exactly as in a single process
(:func:`nnparity.parity.runner.run_case`); what a worker adds is that the frameworks are imported
and run at the same time on different cores, and that the process that prints the report imports
none of them. A worker is a fresh interpreter (``spawn``): it seeds and pins determinism
(:func:`apply_determinism`) before its framework's import, pins torch's float32 precision, finds
the cases again from the command's own options (the selection is deterministic) and returns its
results, its backend's import time and JAX's compile time. Backends are handed out slowest
first (:data:`SLOWEST_FIRST`), so that two workers finish close together.

A worker dies with its parent (Linux ``PR_SET_PDEATHSIG``) and ignores SIGINT: Ctrl-C reaches the
command, which terminates the pool (:func:`run_backends`) and stops as it does in one process.
The pool is terminated once the results are in as well: a worker's own exit is not waited for.
"""

from __future__ import annotations

import argparse
import queue
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from nnparity.backends import registry
from nnparity.backends.determinism import apply_determinism
from nnparity.backends.precision import pin_torch_precision
from nnparity.parallel import blas_threads_per_worker, die_with_parent
from nnparity.parity.cases import Case
from nnparity.parity.check_timing import CheckTiming
from nnparity.parity.report import CaseResult
from nnparity.parity.runner import run_case
from nnparity.progress import Progress

SLOWEST_FIRST = ("tensorflow", "jax", "torch")
"""Backends by the time their share of the default matrix takes (import included), longest
first: measured alone on a 2-core machine (process start and import included), TensorFlow about
29 s, JAX 13 s, torch 9 s, the reference's finite differences 6 s. Others follow in registry
order."""

Select = Callable[[argparse.Namespace], list[Case]]
"""The command's case selection from its options (a module-level function: workers import it)."""

_progress: Any = None  # in a worker: the queue it reports each finished case on


@dataclass
class BackendRun:
    """One backend's part of the check: its results, or why it did not run."""

    name: str
    results: list[CaseResult] = field(default_factory=list)
    unavailable: str | None = None
    timing: CheckTiming = field(default_factory=CheckTiming)


def schedule(names: list[str]) -> list[str]:
    """``names`` slowest first (:data:`SLOWEST_FIRST`), the rest in their given order."""
    return sorted(names, key=lambda n: SLOWEST_FIRST.index(n) if n in SLOWEST_FIRST
                  else len(SLOWEST_FIRST))


def _start_worker(progress: Any) -> None:
    """In a worker: die with the parent, leave Ctrl-C to it, report progress on ``progress``."""
    global _progress
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _progress = progress


def run_backend(name: str, args: argparse.Namespace, select: Select) -> BackendRun:
    """Every selected case on backend ``name`` (CPU), in this process; the backend's import
    timed, JAX's compile events added up."""
    apply_determinism(seed=args.seed)  # before the framework's import (TensorFlow's oneDNN)
    run = BackendRun(name)
    with run.timing.importing(name):
        run.unavailable = registry.reason(name)
    if run.unavailable is not None:
        return run
    backend = registry.get(name)
    pin_torch_precision(args.allow_tf32)
    with run.timing.running():
        for case in select(args):
            run.results.append(run_case(case, backend, seed=args.seed, name=name))
            if _progress is not None:
                _progress.put(f"{name} {case.name}")
    return run


def run_backends(names: list[str], args: argparse.Namespace, select: Select, workers: int,
                 progress: Progress) -> list[BackendRun]:
    """Each backend of ``names`` in one of ``workers`` worker processes, slowest first; each
    finished case advances ``progress``. The runs come back in the order of ``names``."""
    context = get_context("spawn")
    done: Any = context.Queue()
    with blas_threads_per_worker(workers):
        pool = context.Pool(workers, initializer=_start_worker, initargs=(done,))
    try:
        pending = {name: pool.apply_async(run_backend, (name, args, select))
                   for name in schedule(names)}
        received = 0
        while not all(result.ready() for result in pending.values()):
            try:
                progress.update(postfix=done.get(timeout=0.2))
                received += 1
            except queue.Empty:
                progress.update(0)  # a stop asked for by a signal is raised here
        runs = {name: result.get() for name, result in pending.items()}
        for _ in range(sum(len(run.results) for run in runs.values()) - received):
            progress.update(postfix=done.get())  # cases whose report was still on its way
    finally:
        # Done, or stopping (Ctrl-C, SIGTERM turned into an exception, an error): the workers
        # are stopped, not waited for. A worker's own exit, with nothing left to save, ended
        # 4.4 s after the last result of a full check (1.8 s for a TensorFlow worker of 3 cases).
        pool.terminate()
        pool.join()
    return [runs[name] for name in names]
