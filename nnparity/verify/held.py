"""verify's scratch folders in the system's temporary folder, each held by its process while in
use: a verify ended by SIGKILL (or by the OOM killer) cannot remove its own, so the first scratch
folder a process makes removes those that no live process holds.

A folder is held by an exclusive ``flock`` on the folder itself, which the kernel releases when
its process dies; the :data:`HELD` mark is written only once the lock is taken, so a folder the
sweep finds marked and unlocked is one whose process is gone, never one still being set up."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "nnparity-verify-"
HELD = ".held"  # written once the folder is locked


def _lock(folder: str, wait: bool) -> int | None:
    """An open descriptor of ``folder`` holding its exclusive lock, or ``None``: not a folder
    (any more), or held by another process (``wait``: block until it is free)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        return None
    return fd


@functools.cache
def sweep() -> tuple[str, ...]:
    """Remove this user's marked scratch folders in the temporary folder that no live process
    holds (once per process); the names removed."""
    top = tempfile.gettempdir()
    try:
        names = sorted(n for n in os.listdir(top) if n.startswith(PREFIX))
    except OSError:
        return ()
    removed = []
    for name in names:
        folder = os.path.join(top, name)
        if not os.path.isfile(os.path.join(folder, HELD)):
            continue  # not ours, or still being set up
        fd = _lock(folder, wait=False)
        if fd is None:
            continue
        try:
            if os.fstat(fd).st_uid == os.getuid():  # another user's is not ours to remove
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(name)
        finally:
            os.close(fd)
    return tuple(removed)


@contextmanager
def held_folder() -> Iterator[Path]:
    """A new scratch folder ``nnparity-verify-*``, held while the block runs and removed
    afterwards, still held (after :func:`sweep`)."""
    sweep()
    made = tempfile.TemporaryDirectory(prefix=PREFIX, ignore_cleanup_errors=True)
    fd = _lock(made.name, wait=True)
    try:
        if fd is not None:  # a file system without flock: unmarked, never swept
            with open(os.path.join(made.name, HELD), "x"):
                pass
        yield Path(made.name)
    finally:
        made.cleanup()
        if fd is not None:
            os.close(fd)
