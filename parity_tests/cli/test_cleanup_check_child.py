"""What a model file's code starts dies with the supervised ``check`` child
(:mod:`nnparity.supervisor`), however the child ended: a subprocess left running by the model
file is killed with the child's process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

SPAWN = """import os, subprocess, sys
subprocess.Popen(["sleep", "1000"], env={{"MARK": "{marker}"}}, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:
    os.execvp("sh", ["sh", "-c", "sleep 1000; : {marker}"])
os._exit(0)
"""


def _marked(marker: str) -> list[int]:
    """Live processes (not zombies) whose command line or environment holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if marker.encode() in (entry / "cmdline").read_bytes() + \
                    (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return found


def test_a_process_a_model_file_started_dies_with_the_check(tmp_path):
    marker = f"cleanup-{uuid.uuid4().hex}"
    path = tmp_path / "spawns.py"
    path.write_text(SPAWN.format(marker=marker))
    try:
        with open(tmp_path / "out", "w") as out:  # a pipe would be held by what is left
            done = subprocess.run([sys.executable, "-m", "nnparity", "check", "--loss", "ce",
                                   "--model-file", f"{path}:build"], stdout=out, stderr=out,
                                  stdin=subprocess.DEVNULL, timeout=120)
        assert done.returncode == 2, (tmp_path / "out").read_text()
        deadline = time.monotonic() + 3
        while _marked(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _marked(marker) == []
    finally:
        for pid in _marked(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
