"""Any way a model file's code ends the process is an error naming the file (exit 2, no
report), never a verdict: ``os._exit`` at import, in the builder or in forward; the check runs in
a supervised child (:mod:`nnparity.supervisor`) whose stop signals the parent forwards."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnparity.cli import main

MLP = """
import torch
from torch import nn

class Net(nn.Sequential):
    def forward(self, x):
        if EXIT_IN_FORWARD:
            os._exit(0)
        return super().forward(x)

def build():
    return {"model": Net(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)),
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1)}
"""


def _check(tmp_path: Path, source: str, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    path = tmp_path / "exits.py"
    path.write_text(source)
    report = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-m", "nnparity", "check", "--loss", "ce",
                           "--model-file", f"{path}:build", "--json", str(report), *extra],
                          capture_output=True, text=True, timeout=120)
    return done, report


def _assert_error_naming_the_file(done: subprocess.CompletedProcess, report: Path) -> None:
    assert done.returncode == 2, done.stderr
    assert "exits.py:build: the process ended with exit status 0 before the check finished " \
           "(os._exit in the model file?)" in done.stderr
    assert done.stderr.count("\n") == 1 and not report.exists()


def test_os_exit_at_import_is_an_error(tmp_path):
    _assert_error_naming_the_file(*_check(tmp_path, "import os\nos._exit(0)\n"))


def test_os_exit_in_the_builder_is_an_error(tmp_path):
    _assert_error_naming_the_file(*_check(tmp_path, "import os\ndef build():\n    os._exit(0)\n"))


@pytest.mark.torch
def test_os_exit_in_forward_is_an_error(tmp_path):
    pytest.importorskip("torch")
    _assert_error_naming_the_file(*_check(tmp_path, "import os\nEXIT_IN_FORWARD = True\n" + MLP))


@pytest.mark.torch
def test_a_normal_model_passes_with_the_same_output_as_in_process(tmp_path, capsys):
    pytest.importorskip("torch")
    done, report = _check(tmp_path, "import os\nEXIT_IN_FORWARD = False\n" + MLP)
    assert done.returncode == 0, done.stderr
    assert report.exists()
    report.unlink()
    assert main(["check", "--loss", "ce", "--model-file", f"{tmp_path / 'exits.py'}:build",
                 "--json", str(report)]) == 0
    def timeless(text: str) -> str:
        return re.sub(r"\d+\.\d+ ?s\b", "S", text)
    assert timeless(done.stdout) == timeless(capsys.readouterr().out)


def _started_waiting(tmp_path: Path) -> tuple[Path, subprocess.Popen]:
    """A supervised check whose builder writes its process id to the marker, then sleeps."""
    marker = tmp_path / "child.pid"
    path = tmp_path / "waits.py"
    path.write_text(f"import os, time\ndef build():\n    open({str(marker)!r}, 'w').write("
                    "str(os.getpid()))\n    time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-m", "nnparity", "check", "--loss", "ce",
                               "--timeout", "inf", "--model-file", f"{path}:build"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    return marker, parent


def _child_pid(marker: Path) -> int:
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(marker.read_text())


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_to_the_parent_ends_the_child(tmp_path, signum):
    marker, parent = _started_waiting(tmp_path)
    try:
        child = _child_pid(marker)
        os.killpg(parent.pid, signum)  # as a terminal's Ctrl-C: the parent's process group
        _, err = parent.communicate(timeout=20)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
    assert parent.returncode == 128 + signum, err
    assert err == f"nnparity check: stopped by {signal.Signals(signum).name}\n"
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_a_model_file_killed_by_a_signal_is_an_error(tmp_path):
    done, report = _check(tmp_path, "import os, signal\ndef build():\n"
                          "    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert done.returncode == 2, done.stderr
    assert "exits.py:build: the process was ended by SIGKILL before the check finished" \
        in done.stderr
    assert not report.exists()


def test_a_stray_child_variable_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("NNPARITY_CHECK_CHILD", "not-a-descriptor")
    _assert_error_naming_the_file(*_check(tmp_path, "import os\nos._exit(0)\n"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_parent_killed_outright_takes_the_child_along(tmp_path):
    marker, parent = _started_waiting(tmp_path)
    try:
        child = _child_pid(marker)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if _alive(child):
            os.kill(child, signal.SIGKILL)
