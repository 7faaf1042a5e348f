"""Run a learner's file confined (see :mod:`nnparity.verify.sandbox` and
:mod:`nnparity.verify.child`) and turn what came back into results or one clear message.

The job goes in on the child's stdin and the results come back on a pipe as one frame (never a
file the learner could write, never pickled). The outcome is the raw results, possibly partial
(the tensors read before the learner's code failed) with the failure in ``error``, and the
declared tensors the learner's result lacks (a missing or misnamed key, a value that is not an
array: ``missing``, a failure of the submission at that tensor); or one message: a problem with
the declaration's steps (a call that names nothing in the file: :class:`AdapterError`, exit 2)
or a failure of the user's code (an exception, ``exit()``, a
crash, a timeout, a tampered results channel: ``RunOutcome.error``, a failed check, exit 1).
"""

from __future__ import annotations

import io
import signal
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.errors import InputError
from nnparity.files.json_input import parse_json
from nnparity.files.npz import Archive

from .adapters import Adapter
from .child import encode, split_frame
from .interpreter import Interpreter, current
from .notebook import Script, convert, is_notebook, script_name
from .sandbox import Finished, Sandbox, run_confined
from .scratch import SharedCopies

STDERR_LINES = 5
CHANNEL_SLACK = 1 << 20  # bytes of metadata and archive headers on top of the tensors


class DescribeError(Exception):
    """``--init`` could not import the learner's file (its code failed)."""


class AdapterError(InputError):
    """The adapter names something the user's module does not have, or reads a non-array."""


@dataclass
class RunOutcome:
    """What the subprocess produced: raw results (maybe partial) and/or the reason it stopped."""

    raw: dict[str, np.ndarray] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # declared tensors not read: why
    lr: float | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_user_file(path: Path, adapter: Adapter, inputs: dict[str, np.ndarray], n: int, *,
                  timeout: float, sandbox: Sandbox, memory: int, root: Path | None = None,
                  python: Interpreter | None = None,
                  copies: SharedCopies | None = None) -> RunOutcome:
    """Run ``path`` on ``inputs`` (user layout) as the adapter declares; ``n`` is the batch size,
    ``memory`` the problem's estimated bytes; ``root`` the tree copied whole (``--root``),
    ``python`` the interpreter (``--python``; default verify's own, its import path handed
    over); ``copies``: a grading run's shared copies of the folders."""
    path = path.resolve()
    python = python or current()
    script = convert(path) if is_notebook(path) else None  # run as the script of its cells
    name = script_name(path) if script else path.name
    job = encode({"file": name, "adapter": {**adapter.to_json(), "n": n},
                  "path": list(python.path)}, inputs)
    limit = 4 * adapter.steps * memory + CHANNEL_SLACK
    done = run_confined(path, job, sandbox=sandbox, timeout=timeout, channel_limit=limit,
                        memory=memory, root=root.resolve() if root else None, python=python,
                        generated={name: script.source} if script else None, copies=copies)
    outcome = _outcome(path, done, timeout)
    outcome.seconds = done.seconds
    outcome.warnings = [*done.notes, *(script.notes if script else ()), *outcome.warnings]
    return _cited(outcome, script) if script else outcome


def _cited(outcome: RunOutcome, script: Script) -> RunOutcome:
    """The outcome's messages citing the notebook's cells instead of the script's lines."""
    outcome.error = script.cite(outcome.error) if outcome.error is not None else None
    outcome.warnings = [script.cite(w) for w in outcome.warnings]
    outcome.missing = {k: script.cite(v) for k, v in outcome.missing.items()}
    return outcome


def describe_file(path: Path, *, timeout: float, sandbox: Sandbox, root: Path | None = None,
                  python: Interpreter | None = None) -> dict[str, Any]:
    """``--init``: the learner's file imported once in the sandbox, its arrays, functions and
    classes described (:func:`nnparity.verify.child.describe`); a failure is exit 1's message
    in :class:`DescribeError`."""
    path = path.resolve()
    python = python or current()
    script = convert(path) if is_notebook(path) else None
    name = script_name(path) if script else path.name
    job = encode({"file": name, "describe": True, "path": list(python.path)}, {})
    done = run_confined(path, job, sandbox=sandbox, timeout=timeout, channel_limit=CHANNEL_SLACK,
                        memory=0, root=root.resolve() if root else None, python=python,
                        generated={name: script.source} if script else None)
    outcome = _outcome(path, done, timeout)
    if outcome.error is not None:
        raise DescribeError(script.cite(outcome.error) if script else outcome.error)
    meta, _ = read_results(done.channel)
    described = meta.get("describe")
    if not isinstance(described, dict):
        raise DescribeError(f"{path.name}: no description came back")
    return described


def read_results(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The metadata and arrays of the learner's results frame, read as untrusted input: the JSON
    through the one JSON reader, each array's header checked before its data
    (:mod:`nnparity.files.npz`); ``ValueError`` (or ``zipfile.BadZipFile``) for anything else."""
    head, body = split_frame(data)
    meta = parse_json(head, "the results frame's metadata")
    if not isinstance(meta, dict):
        raise ValueError("metadata is not an object")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        arrays = Archive(Path("the results frame"), archive)
        return meta, {name: arrays.read(name) for name in arrays.members}


def _outcome(path: Path, done: Finished, timeout: float) -> RunOutcome:
    name = path.name
    left = ("; it left process(es) running, killed by verify: " + ", ".join(done.left_behind)
            if done.left_behind else "")
    if done.setup_error is not None:
        return RunOutcome(error=f"{name}: verify could not set up the sandbox for your code "
                          f"({done.setup_error}): not your code's fault")
    if done.returncode is None:
        return RunOutcome(error=f"{name} did not finish within {timeout:g} s: an endless loop, "
                          "or training code that runs on import? (put it under `if __name__ == "
                          "\"__main__\":`; raise the limit with --timeout)" + left)
    if done.overflow:
        return RunOutcome(error=f"{name}: more data than the declared tensors came back on the "
                          "results channel; the run was stopped" + left)
    if not done.channel:
        return RunOutcome(error=f"{name}: the process running your code ended with "
                          f"{_status(done.returncode)} before returning results"
                          + _tail(done.stderr) + left)
    try:
        meta, raw = read_results(done.channel)
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        return RunOutcome(error=f"{name}: the results channel does not hold verify's one "
                          f"results frame ({exc}): was it written to by your code?" + left)
    warnings = [str(w) for w in meta.get("warnings", [])]
    gone = [*done.left_behind, *meta.get("left_behind", [])]
    if gone:
        warnings.append("your code left process(es) running after it returned, killed by "
                        f"verify: {', '.join(map(str, gone))}")
    error = meta.get("error")
    if error is not None and error.get("kind") == "adapter":
        raise AdapterError(f"{name}: {error['message']}")
    missing = meta.get("missing") or {}
    missing = {str(k): str(v) for k, v in missing.items()} if isinstance(missing, dict) else {}
    return RunOutcome(raw, missing, meta.get("lr"), error["message"] if error else None,
                      warnings)


def _status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"


def _tail(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()[-STDERR_LINES:]
    return f" ({' | '.join(lines)})" if lines else ""
