"""Users' model files never give a wrong verdict: NaN parameters fail with the non-finite
reason; an exit or exception in the file's code is an error naming the file (exit 2, no report);
an endless loop ends at ``--timeout`` with one line naming the file (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnparity.cli import main

pytestmark = pytest.mark.torch

MLP = """
import torch
from torch import nn

def build():
    return {"model": nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)),
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1)}
"""


def _file(tmp_path: Path, source: str, name: str = "user_model.py") -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


def test_nan_parameters_fail_with_the_non_finite_reason(tmp_path, capsys):
    path = _file(tmp_path, MLP + """
def nan():
    made = build()
    with torch.no_grad():
        for p in made["model"].parameters():
            p.fill_(float("nan"))
    return made
""")
    report = tmp_path / "r.json"
    assert main(["check", "--loss", "ce", "--model-file", f"{path}:nan",
                 "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "forward of z.layer1 differs (non-finite: NaN in z.layer1 on both sides)" in out
    assert "0 passed, 1 failed" in out
    data = json.loads(report.read_text())
    assert data["summary"]["passed"] == 0 and data["summary"]["failed"] == 1
    (case,) = data["cases"].values()
    assert not any(c["passed"] for c in case["backends"]["torch-model"]["comparisons"])


def test_nan_weights_file_fails(tmp_path, capsys):
    path = _file(tmp_path, MLP)
    weights = {"0.weight": np.full((3, 4), np.nan, np.float32), "0.bias": np.zeros(3, np.float32),
               "2.weight": np.ones((2, 3), np.float32), "2.bias": np.zeros(2, np.float32)}
    np.savez(tmp_path / "w.npz", **weights)
    assert main(["check", "--loss", "ce", "--model-file", f"{path}:build", "--weights",
                 str(tmp_path / "w.npz")]) == 1
    out = capsys.readouterr().out
    assert "non-finite: NaN in z.layer1 on both sides" in out and " PASS" not in out


FORWARD_EXIT = MLP.replace("def build():", """class Net(nn.Sequential):
    calls = 0

    def forward(self, x):
        Net.calls += 1
        if Net.calls > 1:  # the trace passes; the check's own run exits
            RAISE
        return super().forward(x)

def build():""").replace("nn.Sequential(nn.Linear", "Net(nn.Linear")

BACKWARD_RAISES = MLP.replace("def build():", """class Boom(BaseException):
    pass

class Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad):
        raise Boom("from backward")

class MyTanh(nn.Module):
    def forward(self, x):
        return Fn.apply(x)

NNPARITY_LAYERS = {"MyTanh": "tanh"}

def build():""").replace("nn.Tanh()", "MyTanh()")

STEP_EXITS = MLP.replace("torch.optim.SGD(params, lr=0.1)", "Opt(params, lr=0.1)").replace(
    "def build():", """class Opt(torch.optim.SGD):
    def step(self, closure=None):
        raise SystemExit(0)

def build():""")


@pytest.mark.parametrize(("source", "phrase"), [
    ("import sys\nsys.exit(0)\n", "user_model.py: loading it raised SystemExit: 0"),
    ("import sys\ndef build():\n    sys.exit(0)\n",
     "user_model.py:build: calling it raised SystemExit: 0"),
    ("def build():\n    raise KeyboardInterrupt\n",
     "user_model.py:build: calling it raised KeyboardInterrupt"),
    (FORWARD_EXIT.replace("RAISE", "raise SystemExit(0)"),
     "user_model.py:build: the model raised SystemExit on an input of shape (4, 4): 0"),
    (FORWARD_EXIT.replace("RAISE", "raise ValueError('no')"),
     "user_model.py:build: the model raised ValueError on an input of shape (4, 4): no"),
    (BACKWARD_RAISES, "user_model.py:build: backward raised Boom: from backward"),
    (STEP_EXITS, "user_model.py:build: the optimizer's step raised SystemExit: 0"),
], ids=["exit-at-import", "exit-in-builder", "interrupt-in-builder", "exit-in-forward",
        "error-in-forward", "base-exception-in-backward", "exit-in-optimizer-step"])
def test_an_exit_or_exception_in_user_code_is_an_error_naming_the_file(tmp_path, capsys,
                                                                         source, phrase):
    path = _file(tmp_path, source)
    report = tmp_path / "r.json"
    assert main(["check", "--loss", "ce", "--model-file", f"{path}:build",
                 "--json", str(report)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0] and path in lines[0], captured.err
    assert "Traceback" not in captured.err and "passed" not in captured.out
    assert not report.exists()


def _cli(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "nnparity", *argv], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    return done, time.monotonic() - started


@pytest.mark.parametrize("source", [
    "while True:\n    pass\n",
    # stuck where the signal cannot reach it: the watchdog ends the process
    "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
    "while True:\n    time.sleep(0.1)\n",
], ids=["python-loop", "signal-blocked"])
def test_an_endless_loop_at_import_ends_at_the_timeout(tmp_path, source):
    path = _file(tmp_path, source)
    done, seconds = _cli(tmp_path, "check", "--loss", "ce", "--model-file", f"{path}:build",
                         "--timeout", "2", "--json", str(tmp_path / "r.json"))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and path in lines[0], done.stderr
    assert "still running after 2 s (--timeout 2)" in lines[0]
    assert seconds < 20  # 2 s, the watchdog's grace, and the interpreter's start
    assert not (tmp_path / "r.json").exists()


def test_an_endless_loop_in_forward_ends_at_the_timeout(tmp_path, capsys):
    path = _file(tmp_path, FORWARD_EXIT.replace("RAISE", "while True:\n                pass"))
    started = time.monotonic()
    assert main(["check", "--loss", "ce", "--model-file", f"{path}:build", "--timeout", "2"]) == 2
    assert time.monotonic() - started < 15
    err = capsys.readouterr().err
    assert f"{path}:build: still running after 2 s (--timeout 2)" in err


def test_timeout_is_documented_and_validated(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--help"])
    assert exit_.value.code == 0
    assert "--timeout SECONDS" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--loss", "ce", "--model-file", "x.py:m", "--timeout", "0"])
    assert exit_.value.code == 2
    assert "expected a positive number of seconds or inf, got '0'" in capsys.readouterr().err


def test_an_endless_loop_in_a_port_ends_at_the_timeout(tmp_path, capsys):
    original = _file(tmp_path, MLP, "original.py")
    # the port's own check runs in training mode; the port comparison in evaluation mode
    port = _file(tmp_path, FORWARD_EXIT.replace("if Net.calls > 1:", "if not self.training:")
                 .replace("RAISE", "while True:\n                pass"), "port.py")
    assert main(["check", "--loss", "ce", "--port", f"{original}:build", f"{port}:build",
                 "--timeout", "3"]) == 2
    err = capsys.readouterr().err
    assert f"{port}:build: still running after 3 s (--timeout 3)" in err
