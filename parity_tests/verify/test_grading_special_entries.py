"""A class folder's ``*.py`` entry that is no file (a FIFO, a broken or looping link, a link
to a device) is a submission with an error verdict, counted in the class's summary: it was
left out without a word ("graded 1 files"), and reading a FIFO would block the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "verify" / "correct_class_gradient.py"


def test_entries_that_are_no_files_get_an_error_verdict_each(tmp_path: Path) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "good.py").write_text(EXAMPLE.read_text())
    os.mkfifo(folder / "fifo.py")
    (folder / "loop.py").symlink_to("loop.py")
    (folder / "gone.ipynb").symlink_to("nowhere.ipynb")
    (folder / "zero.py").symlink_to(os.devnull)
    (folder / "package.py").mkdir()  # a folder so named is no submission
    run = subprocess.run([sys.executable, "-m", "nnparity", "verify", str(folder),
                          "--backends", "none", "--sandbox", "off"],
                         capture_output=True, text=True, timeout=300)
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stdout + run.stderr
    assert lines[-1].startswith("graded 5 files: 1 passed, 0 failed, 4 error(s)"), run.stdout
    assert "PASS   good.py: 5 tensors match" in run.stdout
    for name, what in [("fifo.py", "a FIFO"), ("loop.py", "a broken or looping symbolic link"),
                       ("gone.ipynb", "a broken or looping symbolic link"),
                       ("zero.py", "a device")]:
        assert f"ERROR  {name}: {folder / name}: {what}, not a file to verify" in lines, run.stdout
    assert "package.py" not in run.stdout
