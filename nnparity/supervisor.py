"""Running ``nnparity check`` on model files in a child process, so that no way the user's code
ends the process reads as a verdict.

``os._exit`` in a model file, a signal or a crash in its C code cannot be caught in-process
(:mod:`nnparity.models.guard` catches exceptions and ``sys.exit``). So the command line (the
process's own argv, not ``main(argv)`` called from Python) runs such a check as a child of
itself: the same argv, stdout and stderr inherited (the output is unchanged), the environment
variable :data:`CHILD` naming the write end of a pipe. The child writes its exit code to the
pipe at the very end of :func:`nnparity.cli.main` (:func:`finished`); a child that ends without
writing it is an error naming the model files, exit 2. The parent imports no framework,
forwards SIGINT and SIGTERM to the child (in a process group of its own, so that it gets each
once, and what the model file's code left in that group is killed when the child ends; at a
terminal, in the parent's, where the terminal's Ctrl-C and Ctrl-Z reach it directly) and exits
``128 + signal`` as :mod:`nnparity.stopping` does; on Linux the child is stopped when the
parent dies (``kill -9``). Reports (``--json``) are written only by a child that finished the
check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import suppress
from types import FrameType

from nnparity.stopping import SIGNALS

CHILD = "NNPARITY_CHECK_CHILD"
"""Set in the child: the file descriptor of the pipe to report its exit code on."""

PR_SET_PDEATHSIG = 1  # Linux's prctl option: the signal a process gets when its parent dies
_report_fd: int | None = None


def in_child() -> bool:
    """True in a supervised child; the pipe is taken out of the environment (and made
    non-inheritable) so that the child's own subprocesses cannot report for it."""
    global _report_fd
    value = os.environ.pop(CHILD, "")
    if value.isdigit():
        try:
            os.set_inheritable(int(value), False)
            _report_fd = int(value)
        except OSError:  # no such descriptor: not our child, run as the parent
            pass
        else:
            _end_with_parent()
    return _report_fd is not None


def _end_with_parent() -> None:
    """On Linux, SIGTERM (a stop: no report) reaches this child when its parent dies, even by
    ``kill -9``; elsewhere the child finishes on its own."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def finished(code: int) -> None:
    """Report ``code`` to the supervising parent (once; nothing outside a child)."""
    global _report_fd
    if _report_fd is None:
        return
    fd, _report_fd = _report_fd, None
    try:
        os.write(fd, f"{code}\n".encode())
        os.close(fd)
    except OSError:
        pass  # the parent is gone: nobody to report to


def _how_it_ended(status: int) -> str:
    if status < 0:
        name = signal.Signals(-status).name
        return f"the process was ended by {name} before the check finished (a crash or a signal " \
               "in the model file's code?)"
    return f"the process ended with exit status {status} before the check finished (os._exit " \
           "in the model file?)"


def _terminal_foreground() -> bool:
    """Whether this process's group is the foreground of its controlling terminal (interactive
    use): the terminal's Ctrl-C then reaches the child in the same group by itself."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _wait(child: subprocess.Popen) -> str:
    """Wait for ``child`` to end; how it ended, when that is an error. A child stopped for using
    the terminal from a background process group (``SIGTTIN``/``SIGTTOU``) would wait forever: it
    is killed."""
    used_terminal = False
    while True:
        _, status = os.waitpid(child.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            break
        if os.WSTOPSIG(status) in (signal.SIGTTIN, signal.SIGTTOU):
            used_terminal = True
            child.kill()
    child.returncode = os.waitstatus_to_exitcode(status)
    if used_terminal:
        return "the model file's code used the terminal (input(), breakpoint()?) from a check " \
               "in the background"
    return _how_it_ended(child.returncode)


def supervise(argv: list[str], files: list[str], prog: str) -> int:
    """Run ``python -m nnparity ARGV`` as a supervised child; its reported exit code, ``128 +
    signal`` when stopped, else 2 with one line naming ``files``."""
    read_fd, write_fd = os.pipe()
    stopped: list[int] = []
    child: subprocess.Popen | None = None
    interactive = _terminal_foreground()  # the child shares the terminal's Ctrl-C and Ctrl-Z

    def forward(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)
        if child is not None and not (interactive and signum == signal.SIGINT):
            child.send_signal(signum)

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for sig in SIGNALS:
        if previous[sig] is not signal.SIG_IGN:
            signal.signal(sig, forward)
    try:
        child = subprocess.Popen([sys.executable, "-m", "nnparity", *argv], pass_fds=(write_fd,),
                                 env={**os.environ, CHILD: str(write_fd)},
                                 process_group=None if interactive else 0)
        os.close(write_fd)
        for signum in stopped:  # arrived while it started
            child.send_signal(signum)
        ended = _wait(child)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        if child is not None and not interactive:  # what the model file's code left running
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
    os.set_blocking(read_fd, False)
    try:
        reported = os.read(read_fd, 64).decode().strip()
    except BlockingIOError:
        reported = ""
    finally:
        os.close(read_fd)
    if reported:
        return int(reported)
    if stopped:
        print(f"{prog}: stopped by {signal.Signals(stopped[0]).name}", file=sys.stderr)
        return 128 + stopped[0]
    print(f"{prog}: error: {', '.join(files)}: {ended}", file=sys.stderr)
    return 2
