"""A verify ended by SIGKILL leaves its scratch folder (a copy of the learner's folder) in the
temporary folder; the next verify removes it, and never a folder another live verify holds,
one still being set up, or anything that is not verify's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from learner_header import HEADER  # parity_tests/verify/, beside this file

from nnparity.verify import held

HOLDER = """import sys, time
from nnparity.verify.held import held_folder
with held_folder() as folder:
    (folder / "work").mkdir()
    (folder / "work" / "learner.py").write_text("copied")
    print(folder, flush=True)
    time.sleep(float(sys.argv[1]))
"""


def _holder(top: Path, seconds: float) -> tuple[subprocess.Popen[str], Path]:
    """A process holding a scratch folder in ``top`` for ``seconds``; the folder."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(seconds)], text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "TMPDIR": str(top)})
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_only_the_folders_of_dead_processes_are_swept(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    live, alive = _holder(tmp_path, 1000)
    killed, dead = _holder(tmp_path, 1000)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    unmarked = tmp_path / f"{held.PREFIX}unmarked"  # an older version's, or being set up
    unmarked.mkdir()
    other = tmp_path / "someone-elses"
    (other / "x").mkdir(parents=True)
    try:
        assert dead.is_dir() and (dead / "work" / "learner.py").is_file()
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        assert held.sweep.__wrapped__() == (dead.name,)
        assert not dead.exists()
        assert (alive / "work" / "learner.py").is_file()
        assert unmarked.is_dir() and other.is_dir()
    finally:
        live.kill()
        live.wait()


def test_a_finished_holder_leaves_nothing(tmp_path: Path) -> None:
    proc, folder = _holder(tmp_path, 0)
    assert proc.wait(timeout=60) == 0
    assert not folder.exists()
    assert sorted(tmp_path.iterdir()) == []


HANGING = """
    def forward(x, W1, b1, W2, b2):
        print("started", flush=True)
        time.sleep(1000)
    """


def _scratch_folders(top: Path) -> list[str]:
    return sorted(p.name for p in top.iterdir() if p.name.startswith(held.PREFIX))


def _set_up(top: Path) -> bool:
    """A scratch folder in ``top`` is marked held and filled (the child script copied last)."""
    return any((top / name / held.HELD).is_file() and (top / name / "child.py").is_file()
               for name in _scratch_folders(top))


def test_the_next_verify_removes_what_a_killed_one_left(tmp_path: Path) -> None:
    top, learner = tmp_path / "tmp", tmp_path / "class" / "learner.py"
    top.mkdir()
    learner.parent.mkdir()
    learner.write_text(HEADER + textwrap.dedent(HANGING))
    env = {**os.environ, "TMPDIR": str(top)}
    command = [sys.executable, "-m", "nnparity", "verify", str(learner), "--backends", "none",
               "--sandbox", "off", "--timeout", "30"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not _set_up(top) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _scratch_folders(top)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert left and _scratch_folders(top) == left  # nothing removes it on SIGKILL
    learner.write_text(HEADER)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert _scratch_folders(top) == []


def test_another_users_folder_is_never_swept(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """On a shared machine, a marked, unheld folder of another user's is left to them."""
    if os.getuid() != 0:
        pytest.skip("making a folder another user's needs root (chown)")
    theirs = tmp_path / f"{held.PREFIX}theirs"
    theirs.mkdir()
    (theirs / held.HELD).touch()
    os.chown(theirs, 65534, 65534)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert held.sweep.__wrapped__() == ()
    assert (theirs / held.HELD).is_file()
