"""A child process's own peak resident memory (for ``nnparity bench`` and tests).

On Linux, a child started from a large Python process reports the *parent's* peak through
``getrusage(RUSAGE_CHILDREN)`` and ``wait4``: ``subprocess`` starts it with ``vfork`` (or
``fork``), and at ``exec`` the kernel folds the high-water mark of the memory the child shared
with its parent into the child's ``ru_maxrss``. So the command is started through a tiny
launcher (``python -I -S``, about 10 MB) that spawns it and reads its ``ru_maxrss`` from
``wait4``: the figure is the child's own peak, never below the launcher's few MB.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from nnparity.verify.grouped import end_group

LAUNCHER = """
import os, sys
fd = int(sys.argv[1])
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], dict(os.environ),
                     file_actions=[(os.POSIX_SPAWN_CLOSE, fd)])
_, status, usage = os.wait4(pid, 0)
os.write(fd, str(usage.ru_maxrss).encode())
code = os.waitstatus_to_exitcode(status)
sys.exit(128 - code if code < 0 else code)
"""
"""Spawn ``argv[2:]`` with the launcher's environment, wait for it, write its ``ru_maxrss`` to
file descriptor ``argv[1]``, exit with its code (``128 + signal`` when it was killed)."""

MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024
"""Bytes per unit of ``ru_maxrss``: kilobytes on Linux, bytes on macOS."""


@dataclass(frozen=True)
class Measured:
    """A finished child: its exit code, output (bytes, when captured) and own peak RSS."""

    returncode: int
    stdout: bytes
    stderr: bytes
    peak_bytes: int

    @property
    def peak_mib(self) -> float:
        """The peak in MiB."""
        return self.peak_bytes / 2**20


def run_measured(argv: list[str], *, timeout: float | None = None, capture: bool = True,
                 env: dict[str, str] | None = None, cwd: str | None = None) -> Measured:
    """Run ``argv`` (``argv[0]`` an executable path) and measure its own peak RSS.

    The child gets ``env`` (default: this process's environment) and ``cwd``; its output is
    captured when ``capture``. On ``timeout`` the launcher and the child are killed (they share a
    new session) and ``subprocess.TimeoutExpired`` is raised; on any other way out (Ctrl-C
    included, or their exit) whatever is left in their session is killed too.
    """
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, str(write_fd), *argv],
            pass_fds=(write_fd,), env=env, cwd=cwd, start_new_session=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None)
        os.close(write_fd)
        write_fd = -1
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:  # a timeout, Ctrl-C (its own session does not see it), its exit: what is left
            end_group(proc)
        with os.fdopen(read_fd, "rb") as pipe:
            read_fd = -1
            report = pipe.read()
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    peak = int(report) * MAXRSS_UNIT if report.strip() else 0
    return Measured(proc.returncode, out or b"", err or b"", peak)


def nnparity_argv(*args: str) -> list[str]:
    """``argv`` that runs ``nnparity ARGS`` with this interpreter."""
    return [sys.executable, "-m", "nnparity", *args]
