"""Running a user's model file in nnparity's own process: one guard for every call into the
user's code, and one time limit for the whole run.

:func:`user_code` wraps each call (importing the file, calling its builder, the model's
forward, the loss, backward, the optimiser's factory and step): whatever escapes it, an
``Exception``, ``SystemExit``, ``KeyboardInterrupt`` or any other ``BaseException``, becomes an
:class:`~nnparity.errors.InputError` naming the file (exit 2, one line), never a pass. nnparity's
own errors (:class:`~nnparity.errors.NnparityError`) and the time limit pass through.

:func:`time_limit` bounds everything inside it: ``SIGALRM`` raises :class:`TimeLimit` (a
``BaseException``, so the user's ``except Exception`` does not swallow it, and a run that
caught it anyway still ends in the error) in the main thread, which stops a pure-Python loop; a
watchdog thread ends the process with the same one-line error
and exit 2 :data:`GRACE` seconds later, when the user's code is stuck in C or swallowed the
signal. Where ``SIGALRM`` is not available (not the main thread, no POSIX signals) the watchdog
alone ends it.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nnparity.errors import InputError, NnparityError

GRACE = 3.0  # seconds between the signal and the watchdog's exit
_running: list[str] = []  # the user's files being called into, innermost last


class TimeLimit(BaseException):
    """The time limit of :func:`time_limit` ran out (raised in the main thread)."""


@contextmanager
def user_code(label: str, what: str, context: str = "") -> Iterator[None]:
    """Run the block as the user's code from ``label`` (``PATH.py:NAME``): anything it raises
    becomes ``InputError("<label>: <what> raised <Type><context>: <message>")``."""
    _running.append(label)
    try:
        yield
    except (NnparityError, TimeLimit):
        raise
    except BaseException as exc:  # the user's code: an exit is an error too
        detail = f": {exc}" if str(exc) else ""
        raise InputError(f"{label}: {what} raised {type(exc).__name__}{context}{detail}") \
            from exc  # chained for --debug
    finally:
        _running.pop()


def _message(files: list[str], seconds: float) -> str:
    """The one line: the file being run (else every file given) and the limit."""
    names = _running[-1:] or files
    return (f"{', '.join(names)}: still running after {seconds:g} s (--timeout {seconds:g}): "
            "an endless loop or a model too big to check? raise the limit with --timeout")


def _watchdog(done: threading.Event, files: list[str], seconds: float, prog: str) -> None:
    if not done.wait(seconds + GRACE):
        print(f"{prog}: error: {_message(files, seconds)}", file=sys.stderr, flush=True)
        os._exit(2)


@contextmanager
def time_limit(seconds: float, files: list[str], prog: str = "nnparity check") -> Iterator[None]:
    """Bound the block to ``seconds`` (``inf``: no limit): :class:`InputError` naming the file
    then, or the watchdog's exit 2 with the same line; ``prog`` prefixes the watchdog's line as
    the CLI prefixes errors."""
    if math.isinf(seconds):
        yield
        return
    done, expired = threading.Event(), []
    threading.Thread(target=_watchdog, args=(done, files, seconds, prog), daemon=True,
                     name="nnparity-timeout").start()
    previous: Any = None
    armed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if armed:
        def expire(signum: int, frame: Any) -> None:
            expired.append(_message(files, seconds))
            raise TimeLimit(expired[0])

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except TimeLimit as exc:
        raise InputError(str(exc)) from None
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)
        done.set()
    if expired:  # the user's code caught the signal and went on: still out of time
        raise InputError(expired[0])
