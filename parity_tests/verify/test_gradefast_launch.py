"""The per-run start of a sandboxed learner made cheaper without loosening it: the launcher runs
without ``site`` (standard library only), and the orphan scan that backs the sandbox up still
finds exactly the processes carrying the run's token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress

import pytest

from nnparity.verify import fallback, sandbox


def test_launcher_starts_without_site_and_loads() -> None:
    command = fallback.launcher_command(7)
    assert command[:4] == [sys.executable, "-I", "-B", "-S"]
    # Its imports (confine.py included, loaded from its own folder) need nothing that site adds.
    where = str(fallback.LAUNCHER)
    probe = ("import importlib.util, sys; "
             f"spec = importlib.util.spec_from_file_location('launcher', {where!r}); "
             "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
             "print('site' in sys.modules, callable(module.main))")
    done = subprocess.run([*command[:4], "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child subreaper is Linux's")
def test_orphan_scan_finds_the_tokened_orphan_only() -> None:
    if not sandbox._become_subreaper():
        pytest.skip("this process cannot become a child subreaper")
    env = {**os.environ, sandbox.TOKEN_VARIABLE: "gradefast-token"}
    # The shell starts a sleeper and exits: the sleeper is re-parented to this process.
    subprocess.run(["sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 &"], env=env, check=True,
                   timeout=30)
    try:
        deadline = time.monotonic() + 10
        found: list[int] = []
        while not found and time.monotonic() < deadline:
            found = sandbox._orphans("gradefast-token", launcher=0)[0]
            time.sleep(0.05)
        assert len(found) == 1
        assert sandbox._orphans("another-token", launcher=0) == ([], [])
        assert sandbox._orphans("gradefast-token", launcher=found[0]) == ([], [])
        assert sandbox._kill_orphans("gradefast-token", launcher=0) == [f"pid {found[0]}"]
        assert sandbox._orphans("gradefast-token", launcher=0) == ([], [])
    finally:
        running, exiting = sandbox._orphans("gradefast-token", launcher=0)
        for pid in running + exiting:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
