"""``nnparity check --jobs N``: each backend in a worker process of its own gives the report that
one process gives; a backend unavailable in its worker is skipped with its reason (or refused
when named); a stop ends every worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cleanup_processes import cleaned, left, marked  # parity_tests/, beside the conftest

from nnparity.cli import main
from nnparity.parity.check_timing import CheckTiming
from nnparity.parity.workers import schedule

QUICK_XOR = ["--quick", "-k", "xor", "--dtype", "float64"]


def _verdicts(path: Path) -> dict[tuple[str, str], list[tuple]]:
    """(case, backend) -> every comparison's stage, name, errors and verdict."""
    cases = json.loads(path.read_text())["cases"]
    return {(case, backend): [(c["stage"], c["name"], c["max_abs"], c["max_rel"], c["passed"])
                              for c in run["comparisons"]]
            for case, entry in cases.items() for backend, run in entry["backends"].items()}


def test_workers_give_the_report_of_one_process(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    reports = {}
    for jobs in ("1", "2"):
        reports[jobs] = tmp_path / f"jobs{jobs}.json"
        assert main(["check", *QUICK_XOR, "--backends", "numpy,torch", "--jobs", jobs,
                     "--json", str(reports[jobs])]) == 0
    out = capsys.readouterr().out
    one, two = _verdicts(reports["1"]), _verdicts(reports["2"])
    assert one == two and len(one) == 2 * len({case for case, _ in one}) > 0
    assert out.count("passed, 0 failed") == 2


def test_the_time_line_says_the_workers() -> None:
    timing = CheckTiming(imports={"tensorflow": 6.0, "torch": 4.0}, compile=1.0, cases=9.0,
                         workers=2)
    assert timing.line() == ("time (2 workers side by side): import 10.0 s (tensorflow 6.0, "
                             "torch 4.0), compile 1.0 s (JAX), compute 8.0 s")


def test_backends_go_slowest_first() -> None:
    assert schedule(["numpy", "torch", "mine", "jax", "tensorflow"]) == [
        "tensorflow", "jax", "torch", "numpy", "mine"]


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0"], "--jobs must be a positive integer, got 0"),
    (["--jobs", "2", "--backends", "nosuch,numpy"], "unknown backend 'nosuch'"),
])
def test_bad_jobs_or_backends_exit_2(args: list[str], message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", *QUICK_XOR, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def _without_torch(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``import torch`` fails as a missing install does."""
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_a_named_backend_missing_in_its_worker_is_refused(tmp_path: Path) -> None:
    env = _without_torch(tmp_path)
    base = [sys.executable, "-m", "nnparity", "check", *QUICK_XOR, "--jobs", "2"]
    named = subprocess.run([*base, "--backends", "numpy,torch"], env=env, capture_output=True,
                              text=True, timeout=300)
    assert named.returncode == 2
    assert named.stderr.strip() == ("nnparity check: error: backend 'torch' is unavailable: "
                                       "not installed: pip install nnparity[torch]")
    assert named.stdout == ""


def test_an_unavailable_backend_of_the_default_set_is_skipped_with_its_reason(
        tmp_path: Path) -> None:
    env = _without_torch(tmp_path)
    done = subprocess.run([sys.executable, "-m", "nnparity", "check", *QUICK_XOR, "-k",
                           "relu-ce-mean-wd0-adam-f64-b4-xor", "--jobs", "2"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert "torch skipped: not installed: pip install nnparity[torch]" in summary
    assert "numpy" in summary


def test_sigterm_ends_the_workers(tmp_path: Path) -> None:
    marker = f"nnparity-workers-{uuid.uuid4().hex}"
    env = {**os.environ, "NNPARITY_TEST_MARKER": marker}
    argv = [sys.executable, "-m", "nnparity", "check", "--backends", "numpy,torch,jax",
            "--jobs", "2"]
    with cleaned(marker):
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(marked(marker)) < 3 and time.monotonic() < deadline:  # parent + 2 workers
            time.sleep(0.2)
        assert len(marked(marker)) >= 3, "the workers did not start"
        time.sleep(2)  # the workers are importing or checking
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        assert left(marker) == []
