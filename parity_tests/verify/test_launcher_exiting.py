"""The launcher names no process that is already exiting as one the learner left running: such a
process (the kernel's ``PF_EXITING``, e.g. killed by the end of its PID namespace) has lost its
command line, and naming it told a student "your code left process(es) running: pid N" about
nothing it did. Its children are still found."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnparity.verify import launcher

ROOT = 100


def _stat(pid: int, state: str, ppid: int, flags: int) -> str:
    # /proc/PID/stat: pid (comm) state ppid pgrp session tty_nr tpgid flags ...
    return f"{pid} (python) {state} {ppid} {pid} {pid} 0 -1 {flags} 0 0 0 0\n"


PROCS = {
    101: _stat(101, "S", ROOT, 0x400000),               # live child
    102: _stat(102, "R", ROOT, 0x400000 | 0x4),         # exiting child
    103: _stat(103, "S", 102, 0x400000),                # live grandchild of the exiting one
    104: _stat(104, "Z", ROOT, 0x4),                    # zombie
    105: _stat(105, "S", 1, 0),                         # not below ROOT
}


@pytest.fixture
def fake_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher.os, "listdir",
                        lambda path: [str(p) for p in PROCS] + ["self", "meminfo"])

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        return PROCS[int(self.parts[2])]

    monkeypatch.setattr(launcher.Path, "read_text", read_text)


def test_an_exiting_process_is_not_listed_but_its_children_are(fake_proc: None) -> None:
    assert sorted(launcher.descendants(ROOT)) == [101, 103]


def test_the_real_proc_lists_a_live_child() -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in launcher.descendants(launcher.os.getpid())
    finally:
        child.kill()
        child.wait()


def test_verify_names_no_exiting_orphan(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify's own scan of its re-parented children: one carrying the run's token and exiting
    is reaped, not named as left running."""
    import io

    from nnparity.verify import sandbox

    me = launcher.os.getpid()
    token = f"{sandbox.TOKEN_VARIABLE}=t".encode()
    files = {"/proc/201/stat": _stat(201, "S", me, 0).encode(), "/proc/201/environ": token,
             "/proc/202/stat": _stat(202, "R", me, 0x4).encode(), "/proc/202/environ": token,
             "/proc/203/stat": _stat(203, "S", me, 0).encode(), "/proc/203/environ": b"X=1"}
    monkeypatch.setattr(sandbox.os, "listdir", lambda path: ["201", "202", "203", "self"])
    monkeypatch.setattr(sandbox, "open", lambda path, mode="r": io.BytesIO(files[path]),
                        raising=False)
    assert sandbox._orphans("t", launcher=0) == ([201], [202])


def test_bubblewraps_own_second_process_is_not_the_learners() -> None:
    """Under bubblewrap the launcher runs ``bwrap ...``; bubblewrap's init (a fork with the same
    command line) may still be ending when the outer process has returned: it is killed, not
    named as a process the learner left running (2 files in 100 were told so)."""
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--size",
               "1000", "--tmpfs", "/tmp", "--unshare-all", "--", "python", "-I", "child.py"]
    own = " ".join(command)[:80]
    assert launcher.learners_left([own, "sleep 1000"], command) == ["sleep 1000"]
    assert launcher.learners_left(["pid 7", own], None) == ["pid 7", own]
