"""A short helper command (the ``--python`` probe, the bubblewrap probe) run so that nothing it
starts outlives it: in a session of its own, its whole process group killed on every way out
(its exit, a timeout, an exception or a signal turned into one)."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress

GRACE_SECONDS = 1.0  # for a command still running to end on SIGTERM before SIGKILL


def end_group(proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """End ``proc``'s process group (``proc`` leads it): SIGTERM and ``grace`` seconds for a
    leader still running, then SIGKILL to whatever is left in the group; ``proc`` reaped and
    its pipes closed. A group outlives its leader's exit, and its ID is not reused while it has
    members, so a group whose leader has exited is killed too."""
    if proc.poll() is None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def run_grouped(argv: list[str], *, timeout: float, text: bool = False
                ) -> subprocess.CompletedProcess:
    """Run ``argv`` without input, its output captured, for at most ``timeout`` seconds
    (``subprocess.TimeoutExpired`` past it); its process group ended on the way out."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=text, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        end_group(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
