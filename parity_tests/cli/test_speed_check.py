"""``nnparity check``'s speed: JAX's persistent compilation cache (on for the command line, off
for the user's own setting) and the time split that ``check --verbose`` prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nnparity import jax_cache
from nnparity.parity.check_timing import JAX_COMPILE_EVENTS, CheckTiming


def test_enable_sets_jax_options_under_the_cache_folder(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    environ: dict[str, str] = {}
    folder = jax_cache.enable(environ)
    if folder is None:
        pytest.skip("filelock is not installed: the cache stays off")
    assert folder == tmp_path / "nnparity" / "jax"
    assert environ == {"JAX_COMPILATION_CACHE_DIR": str(folder),
                       "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.0",
                       "JAX_COMPILATION_CACHE_MAX_SIZE": str(jax_cache.MAX_BYTES)}


@pytest.mark.parametrize("environ", [{"JAX_COMPILATION_CACHE_DIR": "/mine"},
                                     {"NNPARITY_JAX_CACHE": "off"},
                                     {"NNPARITY_JAX_CACHE": "OFF"}])
def test_the_users_setting_is_left_alone(environ: dict[str, str]) -> None:
    before = dict(environ)
    assert jax_cache.enable(environ) is None
    assert environ == before


def test_timing_line_splits_import_compile_compute() -> None:
    timing = CheckTiming(imports={"torch": 1.94, "jax": 1.0}, compile=2.0, cases=20.3)
    assert timing.line() == ("time: import 2.9 s (torch 1.9, jax 1.0), compile 2.0 s (JAX), "
                             "compute 18.3 s")


def test_compile_events_are_added_up_while_running() -> None:
    monitoring = pytest.importorskip("jax.monitoring")
    from jax._src import monitoring as recorder

    timing = CheckTiming()
    with timing.running():
        for event in JAX_COMPILE_EVENTS:
            recorder.record_event_duration_secs(event, 0.5)
        recorder.record_event_duration_secs("/jax/something/else", 9.0)
    recorder.record_event_duration_secs(next(iter(JAX_COMPILE_EVENTS)), 7.0)  # after: ignored
    assert timing.compile == pytest.approx(1.5)
    assert monitoring is not None


def test_second_check_run_loads_programs_from_the_cache(tmp_path: Path) -> None:
    """Two runs of one JAX case in a fresh cache folder: the first writes the compiled programs,
    the second adds none, and both print the same verdicts; ``--verbose`` prints the split."""
    pytest.importorskip("jax")
    pytest.importorskip("filelock")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.pop("NNPARITY_JAX_CACHE", None)
    env["XDG_CACHE_HOME"] = str(tmp_path)
    argv = [sys.executable, "-m", "nnparity", "check", "--backends", "jax", "-v",
            "-k", "^relu-ce-mean-wd0-adam-f64-b20-xor$"]
    outputs, counts = [], []
    for _ in range(2):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
        counts.append(len(list((tmp_path / "nnparity" / "jax").glob("*-cache*"))))
    assert counts[0] > 0 and counts[1] == counts[0]
    split = [re.search(r"^time: import [\d.]+ s \(jax [\d.]+\), compile ([\d.]+) s \(JAX\), "
                       r"compute [\d.]+ s$", out, re.M) for out in outputs]
    assert all(split), outputs

    def verdicts(out: str) -> list[str]:
        return [" ".join(line.split()[:4] + line.split()[-1:]) for line in out.splitlines()
                if line.endswith(("PASS", "FAIL"))]

    assert verdicts(outputs[0]) == verdicts(outputs[1]) and verdicts(outputs[0])
