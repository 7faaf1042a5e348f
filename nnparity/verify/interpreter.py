"""The Python that runs a learner's file: verify's own (the default) or a course's interpreter or
virtual environment (``--python PATH``), with the folders the sandbox must leave readable and
the import path the learner's code sees.

verify's own interpreter runs the child with ``-I`` (no user site, no ``PYTHONPATH``), so its
import path is handed over: every folder of verify's ``sys.path`` outside nnparity's hidden
folders (site-packages, a user site, ``PYTHONPATH`` entries) is importable by the learner's code,
nnparity itself never (:mod:`nnparity.verify.child` blocks it too). Another interpreter is asked
once, outside the sandbox (nothing it starts outlives the question), for its prefixes, NumPy and
import path; it must have NumPy.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nnparity.errors import InputError

from .fallback import hidden_folders, interpreter_folders, needed_folders
from .grouped import run_grouped

PROBE_SECONDS = 60
QUESTION = ("import json, sys, numpy; print(json.dumps({'own': [sys.prefix, sys.base_prefix, "
            "sys.exec_prefix, sys.executable, numpy.__file__], 'path': sys.path}))")


@dataclass(frozen=True)
class Interpreter:
    """``executable`` runs the child; ``folders`` must stay readable in the sandbox; ``path``:
    folders appended to the child's import path."""

    executable: str
    folders: tuple[Path, ...]
    path: tuple[str, ...] = ()


@functools.cache
def current() -> Interpreter:
    """verify's own interpreter, its import path handed over (nnparity's folders left out)."""
    hidden = hidden_folders()
    path = [Path(entry).resolve() for entry in sys.path if entry and Path(entry).is_absolute()]
    shown = (str(p) for p in path if p.is_dir() and p != Path("/")
             and not any(h == p or h in p.parents for h in hidden))
    return Interpreter(sys.executable, interpreter_folders(), tuple(dict.fromkeys(shown)))


def probe(executable: str) -> Interpreter:
    """``--python PATH``: the interpreter at ``PATH``, asked for its folders; exit 2 when it does
    not run or has no NumPy."""
    exe = Path(executable)
    if not exe.is_file():
        raise InputError(f"--python {executable}: no such file")
    try:
        answer = run_grouped([str(exe), "-I", "-c", QUESTION], timeout=PROBE_SECONDS,
                             text=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"--python {executable}: does not run ({exc})") from None
    if answer.returncode != 0:
        tail = (answer.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(f"--python {executable}: cannot run verify's child, which needs NumPy "
                         f"({tail})")
    try:
        data = json.loads(answer.stdout.strip().splitlines()[-1])
        own, path = [str(x) for x in data["own"]], [str(x) for x in data["path"]]
    except (ValueError, KeyError, IndexError, TypeError):
        raise InputError(f"--python {executable}: an unexpected answer to verify's "
                         "question") from None
    own[-1] = str(Path(own[-1]).resolve().parent.parent)  # NumPy's parent folder, where NumPy
    # really is (a symlinked NumPy's target, as verify's own interpreter's)
    return Interpreter(str(exe.absolute()), needed_folders(own, path))
