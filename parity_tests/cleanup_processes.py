"""Finding the processes a test's run left behind (a test helper): a process belongs to the run
when its command line or its environment holds the test's unique marker; zombies, which have
ended, are not counted."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path


def marked(marker: str) -> list[int]:
    """Live processes (not zombies, not this one) whose command line or environment holds
    ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError, IndexError):
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if marker.encode() in (entry / "cmdline").read_bytes() + \
                    (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return found


def left(marker: str, seconds: float = 3.0) -> list[int]:
    """The marked processes still alive after ``seconds`` (a killed process needs a moment to be
    reaped by whoever inherited it)."""
    deadline = time.monotonic() + seconds
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return marked(marker)


@contextlib.contextmanager
def cleaned(marker: str) -> Iterator[None]:
    """Whatever the test asserts, nothing marked is left on the machine afterwards."""
    try:
        yield
    finally:
        for pid in marked(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
