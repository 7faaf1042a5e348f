"""The one rule for ``--jobs`` (``reproduce``: seeds trained in worker processes; ``verify``:
files graded at once): from 1 to :data:`JOBS_MAX`, and never more workers than tasks."""

from __future__ import annotations

from nnparity.errors import InputError

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
