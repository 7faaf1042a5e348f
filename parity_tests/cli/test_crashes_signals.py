"""Stopping cleanly (issue 20): SIGTERM to ``train`` and SIGINT to ``teach`` stop the real CLI
with exit 143/130 and one line, keep what is complete (the metrics of finished epochs) and leave
no temporary file; a stop swallowed by a library's hook still stops; ``teach`` removes what a
killed build left and the empty folders of a failed one."""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nnparity.bench.peakmem import nnparity_argv
from nnparity.cli import main
from nnparity.files.atomic import temp_prefix
from nnparity.stopping import check_stop


def parts(folder: Path) -> list[Path]:
    """Temporary files of the atomic writer under ``folder``."""
    return list(folder.rglob("*.part"))


def start(*args: object) -> subprocess.Popen:
    """``nnparity ARGS`` as a child with SIGINT handled as from a terminal."""
    return subprocess.Popen(nnparity_argv(*map(str, args)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def dead_pid() -> int:
    """The PID of a process of this host that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def leftover(folder: Path, name: str) -> Path:
    """A temporary file as a writer killed outright (``kill -9``) leaves it."""
    path = folder / (temp_prefix(name).replace(f"~{os.getpid()}~", f"~{dead_pid()}~")
                     + "x.part")
    path.write_text("half")
    return path


def test_sigterm_stops_train_and_keeps_the_finished_epochs(tmp_path):
    metrics, checkpoint = tmp_path / "m.csv", tmp_path / "ck.npz"
    proc = start("train", "--preset", "seed000-iris", "--epochs", "100000", "--metrics",
                 metrics, "--checkpoint", checkpoint)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until two epochs finished
        if line.startswith("epoch") and int(line.split()[1].split("/")[0]) >= 2:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert err.startswith("nnparity train: stopped by SIGTERM; kept ")
    with open(metrics, newline="") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert len(epochs) >= 2 and epochs == list(range(1, len(epochs) + 1))
    assert checkpoint.is_file() and parts(tmp_path) == []


def test_sigint_stops_teach_after_it_removed_a_killed_builds_leftovers(tmp_path):
    site = tmp_path / "site"
    (site / "models").mkdir(parents=True)
    left = [leftover(site, "index.html"), leftover(site / "models", "seed000-iris_torch.py")]
    proc = start("teach", "--out", site)
    deadline = time.monotonic() + 120
    while any(p.exists() for p in left) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(p.exists() for p in left), "teach did not remove the leftovers"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-1] == "nnparity teach: stopped by SIGINT"
    # one line, unless the interpreter reported the stop swallowed by a framework's hook
    assert len(lines) == 1 or err.startswith("Exception ignored in"), err
    assert parts(tmp_path) == []


def test_a_stop_swallowed_by_a_library_hook_still_stops(tmp_path, monkeypatch, capsys):
    def build(out: Path, metrics: object) -> Path:
        with contextlib.suppress(KeyboardInterrupt):  # as JAX's garbage-collection hook does
            signal.raise_signal(signal.SIGINT)
        return out / "index.html"

    monkeypatch.setattr("nnparity.teach.site.build", build)
    assert main(["teach", "--out", str(tmp_path / "site")]) == 130
    assert capsys.readouterr().err == "nnparity teach: stopped by SIGINT\n"
    check_stop()  # the request ends with the command: later work in this process goes on


def test_a_failed_teach_leaves_no_empty_folders(tmp_path, monkeypatch, capsys):
    def full_disk(framework: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("nnparity.teach.site.load", full_disk)
    assert main(["teach", "--out", str(tmp_path / "site")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
