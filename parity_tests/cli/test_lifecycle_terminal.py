"""A supervised ``check`` at a terminal (:mod:`nnparity.supervisor`): in the foreground the
model's code reads the terminal as it would in-process; a check in the background that reads it
is an error naming the file, not a process stopped for ever."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(termios, "TIOCSCTTY"), reason="needs a POSIX pty")


def _at_a_terminal(argv: list[str], typed: bytes, cwd: Path) -> tuple[int | None, str]:
    """Run ``argv`` as the session leader of a new pseudo-terminal, ``typed`` sent to it; the
    exit code (None: still running after 60 s) and what the terminal showed."""
    master, slave = os.openpty()

    def own_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                               preexec_fn=own_terminal)
    os.close(slave)
    os.write(master, typed)
    shown = b""
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    shown += os.read(master, 4096)
                except OSError:
                    break
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        _kill_session(process.pid)
        process.wait()
        os.close(master)
    return process.returncode, shown.decode(errors="replace")


def _kill_session(sid: int) -> None:
    """SIGKILL every process left in session ``sid`` (job groups and stopped children too)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.parent.name), 9)


def _reads(tmp_path: Path) -> list[str]:
    (tmp_path / "reads.py").write_text("def build():\n    print('typed', input())\n")
    return [sys.executable, "-m", "nnparity", "check", "--loss", "ce", "--model-file",
            "reads.py:build"]


def test_a_model_in_the_foreground_reads_the_terminal(tmp_path):
    code, shown = _at_a_terminal(_reads(tmp_path), b"hello\n", tmp_path)
    assert code == 2, shown
    assert "typed hello" in shown and "reads.py:build gave a NoneType" in shown


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for a background job")
def test_a_model_reading_the_terminal_in_the_background_is_an_error(tmp_path):
    job = " ".join(_reads(tmp_path))
    code, shown = _at_a_terminal(["bash", "-mc", f"{job} & wait $!; echo rc=$?"], b"", tmp_path)
    assert code == 0, shown
    assert "reads.py:build: the model file's code used the terminal (input(), breakpoint()?) " \
           "from a check in the background" in shown and "rc=2" in shown
