"""A real SIGINT stops a long ``bench`` within a second or two (exit 130, one line); a SIGINT
that the starting shell ignores (a script's background job) stays ignored, as
:mod:`nnparity.stopping` documents, and SIGTERM still stops it (exit 143)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

BENCH = [sys.executable, "-m", "nnparity", "bench", "--backends", "numpy", "--rows", "60000",
         "--repeats", "50"]


def _started(ignore_sigint: bool) -> subprocess.Popen:
    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(BENCH, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=ignore if ignore_sigint else None)


def _stop(process: subprocess.Popen, signum: int, within: float) -> tuple[int | None, str]:
    """Send ``signum`` once the command runs; its exit code (None: still running) and stderr."""
    time.sleep(3)
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=within)
        return process.returncode, err
    except subprocess.TimeoutExpired:
        return None, ""


def _cleanup(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_sigint_stops_a_long_bench_at_once():
    bench = _started(ignore_sigint=False)
    try:
        code, err = _stop(bench, signal.SIGINT, within=3)
    finally:
        _cleanup(bench)
    assert code == 130
    assert err.endswith("nnparity bench: stopped by SIGINT\n") and err.count("stopped") == 1


def test_an_ignored_sigint_stays_ignored_and_sigterm_still_stops():
    bench = _started(ignore_sigint=True)
    try:
        assert _stop(bench, signal.SIGINT, within=2)[0] is None
        code, err = _stop(bench, signal.SIGTERM, within=3)
    finally:
        _cleanup(bench)
    assert code == 143
    assert err.endswith("nnparity bench: stopped by SIGTERM\n")
