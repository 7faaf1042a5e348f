"""Run a learner's file in a separate process with a timeout (see :mod:`nnparity.verify.child`).

Data goes in and results come back as ``.npz`` files in a temporary folder (never pickled). The
outcome is either the raw results, or one clear message: a problem with the adapter (a missing
name, a value that is not an array: :class:`AdapterError`, exit 2) or a failure of the user's
code (an exception, ``exit()``, a crash or a timeout: ``RunOutcome.error``, reported as a failed
check, exit 1).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnparity.errors import InputError

from .adapters import Adapter

STDERR_TAIL = 5


class AdapterError(InputError):
    """The adapter names something the user's module does not have, or reads a non-array."""


@dataclass
class RunOutcome:
    """What the subprocess produced: raw results, or the reason it produced none."""

    raw: dict[str, np.ndarray] = field(default_factory=dict)
    lr: float | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_user_file(
    path: Path, adapter: Adapter, inputs: dict[str, np.ndarray], n: int, timeout: float
) -> RunOutcome:
    """Run ``path`` on ``inputs`` (user layout) as the adapter declares; ``n`` is the batch size."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nnparity-verify-") as tmp:
        folder = Path(tmp)
        job = {"file": str(path.resolve()), "adapter": {**adapter.to_json(), "n": n}}
        (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
        np.savez(folder / "inputs.npz", allow_pickle=False, **inputs)
        returncode, stderr = _spawn(folder, path, timeout)
        seconds = time.perf_counter() - start
        if returncode is None:
            return RunOutcome(error=f"{path.name} did not finish within {timeout:g} s: an "
                              "endless loop, or training code that runs on import? (put it under "
                              "`if __name__ == \"__main__\":`; raise the limit with --timeout)",
                              seconds=seconds)
        if (folder / "error.json").is_file():
            error = json.loads((folder / "error.json").read_text(encoding="utf-8"))
            if error["kind"] == "adapter":
                raise AdapterError(f"{path.name}: {error['message']}")
            return RunOutcome(error=error["message"], seconds=seconds)
        if returncode != 0 or not (folder / "results.npz").is_file():
            tail = " | ".join(stderr.strip().splitlines()[-STDERR_TAIL:])
            return RunOutcome(error=f"{path.name}: the process running your code ended with "
                              f"status {returncode} before returning results"
                              + (f" ({tail})" if tail else ""), seconds=seconds)
        with np.load(folder / "results.npz", allow_pickle=False) as archive:
            raw = {k: archive[k] for k in archive.files}
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return RunOutcome(raw, meta["lr"], None, meta["warnings"], seconds)


def _spawn(folder: Path, path: Path, timeout: float) -> tuple[int | None, str]:
    """Run the child in its own process group; ``None`` as return code when it timed out."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnparity.verify.child", str(folder)], cwd=path.parent,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, ""
    return proc.returncode, stderr
