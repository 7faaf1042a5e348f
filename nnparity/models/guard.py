"""Running a user's model file in nnparity's own process: one guard for every call into the
user's code, and one time budget for all of it.

:func:`user_code` wraps each call (importing the file, calling its builder, the model's
forward, the loss, backward, the optimiser's factory and step): whatever escapes it, an
``Exception``, ``SystemExit``, ``KeyboardInterrupt`` or any other ``BaseException``, becomes a
:class:`~nnparity.errors.ModelError` (an input error) naming the file (exit 2, one line), never
a pass. nnparity's own errors (:class:`~nnparity.errors.NnparityError`), the time limit and a
stop by a signal (:class:`~nnparity.stopping.Stopped`: exit 130/143) pass through.

:func:`time_limit` gives the user's code a budget of seconds, spent only inside
:func:`user_code` blocks (nnparity's own work, the reference and the comparisons, is not
counted, so a slow machine does not fail a correct model). While a block runs, ``SIGALRM`` is
armed for what is left and raises :class:`TimeLimit` (a ``BaseException``, so the user's
``except Exception`` does not swallow it, and a run that caught it anyway still ends in the
error) in the main thread, which stops a pure-Python loop; a watchdog thread ends the process
with the same one-line error and exit 2 :data:`GRACE` seconds past the budget, when the user's
code is stuck in C or swallowed the signal. Where ``SIGALRM`` is not available (not the main
thread, no POSIX signals) the watchdog alone ends it.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from nnparity.errors import InputError, ModelError, NnparityError
from nnparity.stopping import Stopped
from nnparity.supervisor import finished

GRACE = 3.0  # seconds between the signal and the watchdog's exit
_running: list[str] = []  # the user's files being called into, innermost last


class TimeLimit(BaseException):
    """The user's code spent the budget of :func:`time_limit` (raised in the main thread)."""


@dataclass
class _Budget:
    """The active :func:`time_limit`: seconds left, and while user code runs, its deadline."""

    seconds: float
    left: float
    files: list[str]
    armed: bool
    deadline: float | None = None
    expired: str = ""


_budget: _Budget | None = None


def _message(files: list[str], seconds: float) -> str:
    """The one line: the file being run (else every file given) and the limit."""
    names = _running[-1:] or files
    return (f"{', '.join(names)}: still running after {seconds:g} s (--timeout {seconds:g}): "
            "an endless loop or a model too big to check? raise the limit with --timeout")


@contextmanager
def _clock(budget: _Budget | None) -> Iterator[None]:
    """Spend ``budget`` while the block runs (the outermost user-code block only)."""
    if budget is None or budget.deadline is not None:
        yield
        return
    started = time.monotonic()
    budget.deadline = started + budget.left
    if budget.armed:
        signal.setitimer(signal.ITIMER_REAL, max(budget.left, 1e-3))
    try:
        yield
    finally:
        if budget.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
        budget.left -= time.monotonic() - started
        budget.deadline = None
        if budget.left <= 0 and not budget.expired:
            budget.expired = _message(budget.files, budget.seconds)
    if budget.expired:  # the user's code caught the signal and went on: still out of time
        raise TimeLimit(budget.expired)


@contextmanager
def user_code(label: str, what: str, context: str = "") -> Iterator[None]:
    """Run the block as the user's code from ``label`` (``PATH.py:NAME``): anything it raises
    becomes ``InputError("<label>: <what> raised <Type><context>: <message>")``; the time it
    takes is spent from the active :func:`time_limit`."""
    _running.append(label)
    try:
        with _clock(_budget):
            try:
                yield
            except (NnparityError, TimeLimit, Stopped):  # a signal's stop is not the user's code's
                raise
            except BaseException as exc:  # the user's code: an exit is an error too
                detail = f": {exc}" if str(exc) else ""
                raise ModelError(f"{label}: {what} raised {type(exc).__name__}{context}"
                                 f"{detail}") from exc  # chained for --debug
    finally:
        _running.pop()


def _watchdog(done: threading.Event, budget: _Budget, prog: str) -> None:
    while not done.wait(0.1):
        deadline = budget.deadline
        if deadline is not None and time.monotonic() > deadline + GRACE:
            print(f"{prog}: error: {_message(budget.files, budget.seconds)}", file=sys.stderr,
                  flush=True)
            finished(2)  # the check ended with its verdict: not the user's code's exit
            os._exit(2)


@contextmanager
def time_limit(seconds: float, files: list[str], prog: str = "nnparity check") -> Iterator[None]:
    """Give the user's code inside the block ``seconds`` in all (``inf``: no limit):
    :class:`InputError` naming the file once they are spent, or the watchdog's exit 2 with the
    same line; ``prog`` prefixes the watchdog's line as the CLI prefixes errors."""
    global _budget
    if math.isinf(seconds):
        yield
        return
    armed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    budget = _Budget(seconds, seconds, list(files), armed)
    done = threading.Event()
    threading.Thread(target=_watchdog, args=(done, budget, prog), daemon=True,
                     name="nnparity-timeout").start()
    previous: Any = None
    if armed:
        def expire(signum: int, frame: Any) -> None:
            budget.expired = budget.expired or _message(budget.files, budget.seconds)
            raise TimeLimit(budget.expired)

        previous = signal.signal(signal.SIGALRM, expire)
    outer, _budget = _budget, budget
    try:
        yield
    except TimeLimit as exc:
        raise InputError(str(exc)) from None
    finally:
        _budget = outer
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)
        done.set()
