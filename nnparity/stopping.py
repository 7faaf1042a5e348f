"""Stopping on a signal, the same way in every command.

While a command runs (:func:`nnparity.cli.main`), SIGINT (Ctrl-C) and SIGTERM raise
:class:`Stopped`, a ``KeyboardInterrupt``: every command unwinds as it does for Ctrl-C (atomic
writes delete their temporary files, worker and learner processes are killed, ``train`` writes
the metrics of its finished epochs), then the CLI prints one line and exits ``128 + signal``
(130 for SIGINT, 143 for SIGTERM). A SIGINT ignored by the parent (a background job of a
script) stays ignored, as Python leaves it.

An exception raised by a signal handler can land where it cannot propagate: in a library's
callback or finaliser (JAX's garbage-collection hook prints "Exception ignored in ..." and goes
on). The request is remembered, and :func:`check_stop` raises it again at the next safe point:
each epoch, each progress step, each section of the teaching page, and when the command returns.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A stop asked for by the signal ``signum``; ``kept`` lists what the command saved."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.kept: list[str] = []

    @property
    def exit_code(self) -> int:
        """``128 + signum``, as a shell reports a process ended by the signal."""
        return 128 + self.signum


_requested: int | None = None


def _stop(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = signum
    raise Stopped(signum)


def check_stop() -> None:
    """Raise :class:`Stopped` again when a signal asked to stop (its first exception may have
    been swallowed)."""
    if _requested is not None:
        raise Stopped(_requested)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Stopped` (from the main thread only,
    where Python runs signal handlers; elsewhere the block runs unchanged). A request is
    forgotten when the block ends."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for sig in SIGNALS:
        if previous[sig] is not signal.SIG_IGN:
            signal.signal(sig, _stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        _requested = None
