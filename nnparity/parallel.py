"""The one rule for ``--jobs`` (``reproduce``: seeds trained in worker processes; ``verify``:
files graded at once): from 1 to :data:`JOBS_MAX`, and never more workers than tasks."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Iterator, MutableMapping

from nnparity.errors import InputError

BLAS_THREADS = "OPENBLAS_NUM_THREADS"
"""NumPy's BLAS (OpenBLAS in its wheels) reads its thread count from this variable when it loads."""
JOBS_MAX = 32
"""The most workers a command starts: each is a whole training run or learner process, and a
thousand of them exhaust memory and threads long before they finish sooner."""


def check_jobs(jobs: int) -> int:
    """``jobs`` when it is from 1 to :data:`JOBS_MAX`; an :class:`InputError` otherwise."""
    if not 1 <= jobs <= JOBS_MAX:
        raise InputError(f"--jobs must be a positive integer, got {jobs} (at most {JOBS_MAX})")
    return jobs


def worker_count(jobs: int, tasks: int) -> int:
    """Workers to start for ``tasks`` tasks with ``--jobs jobs`` (checked): never more than the
    tasks, at least one."""
    return max(1, min(check_jobs(jobs), tasks))


def die_with_parent() -> None:
    """In a worker process: be killed when the parent dies (Linux ``PR_SET_PDEATHSIG``), so a
    parent killed outright leaves no worker running on."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the pool's termination
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)


@contextlib.contextmanager
def blas_threads_per_worker(workers: int,
                            environ: MutableMapping[str, str] = os.environ) -> Iterator[None]:
    """While a pool of ``workers`` spawned processes starts: NumPy's BLAS in each of them at the
    cores shared out among the workers (at least one thread), unless the user set
    :data:`BLAS_THREADS`. OpenBLAS otherwise starts a thread per core in every worker, and two
    workers on two cores run four threads that spin-wait on each other (measured on ``nnparity
    check``: 84 CPU-seconds instead of 69). The parent's environment is restored on exit."""
    if BLAS_THREADS in environ:
        yield
        return
    environ[BLAS_THREADS] = str(max(1, (os.cpu_count() or 1) // workers))
    try:
        yield
    finally:
        del environ[BLAS_THREADS]
