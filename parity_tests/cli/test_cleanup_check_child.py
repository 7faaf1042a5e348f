"""What a model file's code starts dies with the supervised ``check`` child
(:mod:`nnparity.supervisor`), however the child ended: a subprocess left running by the model
file is killed with the child's process group."""

from __future__ import annotations

import subprocess
import sys
import uuid

from cleanup_processes import cleaned, left  # parity_tests/, beside the conftest

SPAWN = """import os, subprocess, sys
subprocess.Popen(["sleep", "1000"], env={{"MARK": "{marker}"}}, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:
    os.execvp("sh", ["sh", "-c", "sleep 1000; : {marker}"])
os._exit(0)
"""


def test_a_process_a_model_file_started_dies_with_the_check(tmp_path):
    marker = f"cleanup-{uuid.uuid4().hex}"
    path = tmp_path / "spawns.py"
    path.write_text(SPAWN.format(marker=marker))
    with cleaned(marker):
        with open(tmp_path / "out", "w") as out:  # a pipe would be held by what is left
            done = subprocess.run([sys.executable, "-m", "nnparity", "check", "--loss", "ce",
                                   "--model-file", f"{path}:build"], stdout=out, stderr=out,
                                  stdin=subprocess.DEVNULL, timeout=120)
        assert done.returncode == 2, (tmp_path / "out").read_text()
        assert left(marker) == []
