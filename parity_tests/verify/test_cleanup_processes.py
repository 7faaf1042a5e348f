"""Everything a verify run starts dies with it: the learner's forks, its subprocesses (in a
session of their own or not), a process a background thread starts after ``forward`` returned,
on a normal finish, a timeout and verify's own SIGTERM; and the ``--python`` probe's children.

verify runs in a child process here, without bubblewrap (``--sandbox off``, or ``auto`` with
bubblewrap set aside: the fallback's layers this machine has), so that the test process is no
reaper of what the learner leaves. A process belongs to the run when its command line or its
environment (the learner's working folder is named after the marker) holds the marker.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from cleanup_processes import cleaned, left, marked  # parity_tests/, beside the conftest
from learner_header import HEADER  # parity_tests/verify/, beside this file

from nnparity.errors import InputError
from nnparity.verify import interpreter, sandbox

# verify with bubblewrap set aside (``auto`` then takes the fallback's layers): python -c DRIVER
DRIVER = """import sys
from nnparity.verify import sandbox
sandbox.bwrap_works = lambda: "bubblewrap set aside by the test"
from nnparity.cli import main
sys.exit(main(sys.argv[1:]))
"""
SANDBOXES = {"off": ["--sandbox", "off"], "fallback": ["--sandbox", "auto"]}

SPAWNER = """
    import threading

    def _later():
        time.sleep(0.3)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", "{marker}"],
                         start_new_session=True)

    def forward(x, W1, b1, W2, b2):
        if os.fork() == 0:  # a copy of the learner, in a session of its own
            os.setsid()
            time.sleep(1000)
            os._exit(0)
        if os.fork() == 0:
            os.execv("/bin/sh", ["sh", "-c", "{sleep} 1000; : {marker}"])
        subprocess.Popen("{sleep} 1000; : {marker}", shell=True)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", "{marker}"],
                         start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        threading.Thread(target=_later).start()  # not a daemon: runs on after forward returns
        while {hang}:
            time.sleep(0.05)
        z1 = x @ W1 + b1
        return [z1, np.tanh(z1) @ W2 + b2]
    """
STARTED = 6  # marked processes the spawner starts (the thread's only after a moment)
# Programs by their real paths: the fallback's Landlock rules open the system's folders, not
# a PATH entry elsewhere (CI's newcomer run puts links to the programs in a folder of its own).
SLEEP = os.path.realpath(shutil.which("sleep") or "/bin/sleep")


def _learner(tmp_path: Path, marker: str, hang: bool) -> Path:
    folder = tmp_path / marker
    folder.mkdir()
    path = folder / "learner.py"
    path.write_text(HEADER + textwrap.dedent(SPAWNER.format(marker=marker, hang=hang,
                                                            sleep=SLEEP)))
    return path


def _verify(path: Path, sandbox_mode: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", DRIVER, "verify", str(path), "--backends",
                             "none", *SANDBOXES[sandbox_mode], *extra], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def marker() -> str:
    return f"cleanup-{uuid.uuid4().hex}"


@pytest.mark.parametrize("mode", sorted(SANDBOXES))
def test_a_finished_run_leaves_no_process(tmp_path, marker, mode):
    with cleaned(marker):
        proc = _verify(_learner(tmp_path, marker, hang=False), mode)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
        assert "left process(es) running" in out  # the learner's were named
        assert left(marker) == []


@pytest.mark.parametrize("mode", sorted(SANDBOXES))
def test_a_timeout_leaves_no_process_and_names_no_launcher(tmp_path, marker, mode):
    with cleaned(marker):
        proc = _verify(_learner(tmp_path, marker, hang=True), mode, "--timeout", "4")
        out, err = proc.communicate(timeout=120)
        assert "did not finish within 4 s" in out, out[-2000:] + err[-2000:]
        assert "killed by verify: pid" not in out  # verify's own launcher is no learner's
        assert left(marker) == []


@pytest.mark.parametrize("mode", sorted(SANDBOXES))
def test_sigterm_to_verify_leaves_no_process(tmp_path, marker, mode):
    with cleaned(marker):
        proc = _verify(_learner(tmp_path, marker, hang=True), mode, "--timeout", "inf")
        deadline = time.monotonic() + 60
        while len(marked(marker)) < STARTED and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(marked(marker)) >= STARTED, "the learner's processes never started"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, out[-2000:] + err[-2000:]
        assert left(marker) == []


@pytest.mark.parametrize("mode", sorted(SANDBOXES))
def test_ctrl_c_of_a_grading_run_leaves_no_process(tmp_path, marker, mode):
    """SIGINT (a terminal's Ctrl-C, sent here to nnparity alone) while two learners of a folder
    run at once: both are cancelled, their processes killed, exit 130."""
    learner = _learner(tmp_path, marker, hang=True)  # in a folder named after the marker
    folder = learner.parent
    (folder / "second.py").write_text(learner.read_text())
    with cleaned(marker):
        proc = _verify(folder, mode, "--timeout", "inf", "--jobs", "2")
        deadline = time.monotonic() + 90
        while len(marked(marker)) < 2 * STARTED and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(marked(marker)) >= 2 * STARTED, "the learners' processes never started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGINT, out[-2000:] + err[-2000:]
        assert "Traceback" not in err
        assert left(marker) == []


def _wrapper(tmp_path: Path, marker: str, then: str) -> Path:
    """A ``--python`` that starts a process of its own (holding no pipe), then ``then``."""
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\nMARK={marker} sleep 1000 >/dev/null 2>&1 </dev/null &\n{then}\n")
    path.chmod(0o755)
    return path


def test_the_python_probe_leaves_no_process(tmp_path, marker):
    with cleaned(marker):
        found = interpreter.probe(str(_wrapper(tmp_path, marker,
                                               f'exec {sys.executable} "$@"')))
        assert found.executable == str(tmp_path / "python")
        assert left(marker) == []


def test_a_hanging_python_probe_leaves_no_process(tmp_path, marker, monkeypatch):
    monkeypatch.setattr(interpreter, "PROBE_SECONDS", 2)
    with cleaned(marker):
        with pytest.raises(InputError, match="does not run"):
            interpreter.probe(str(_wrapper(tmp_path, marker, f"MARK={marker} sleep 1000")))
        assert left(marker) == []


def test_a_slow_reader_is_not_told_of_processes_left_behind(monkeypatch):
    """Under load verify's reading thread may wait more than the half second the old check
    allowed between two reads of the same exited process's pipes: output still pending then
    read as pipes held by a process left running."""
    proc = subprocess.Popen([sys.executable, "-c", "import os; os.write(1, b'x' * 60000)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.wait()  # exited, its output still in the pipe
    results_r, results_w = os.pipe()
    os.close(results_w)
    ticks = iter(range(10**6))
    monkeypatch.setattr(sandbox.time, "monotonic", lambda: 0.7 * next(ticks))  # a slow reader
    try:
        done = sandbox._communicate(proc, b"", results_r, 600.0, 1024)
    finally:
        os.close(results_r)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()
    assert done.left_behind == [] and done.stdout == b"x" * 60000 and done.returncode == 0


def test_a_process_that_ended_is_not_named_as_left_running(tmp_path, marker):
    """A subprocess the learner started that has ended (a zombie not yet waited for) is no
    process left running, in the fallback's PID namespace too."""
    folder = tmp_path / marker
    folder.mkdir()
    path = folder / "learner.py"
    path.write_text(HEADER + textwrap.dedent("""
        ENDED = []

        def forward(x, W1, b1, W2, b2):
            ENDED.append(subprocess.Popen([sys.executable, "-c", "pass"]))  # never waited for
            time.sleep(1)
            z1 = x @ W1 + b1
            return [z1, np.tanh(z1) @ W2 + b2]
        """))
    for mode in SANDBOXES:
        proc = _verify(path, mode)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
        assert "left process(es) running" not in out, (mode, out)
