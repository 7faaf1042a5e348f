"""verify's side of the fallback sandbox (no usable bubblewrap): the folders hidden from the
learner, what it may read, and the launcher's configuration for one run.

Layers (:mod:`nnparity.verify.launcher` applies them, :mod:`nnparity.verify.confine` holds the
kernel calls), each used where this machine allows it:

- ``namespaces``: user, mount, PID, network, IPC and UTS namespaces with a read-only view of the
  filesystem that hides :func:`hidden_folders`, the original folder (its copy is bound there)
  and every process outside (a fresh ``/proc``); the learner dies with its namespace's init;
- ``landlock``: reading only :func:`readable_trees` minus the hidden folders and the original
  folder, writing only the copy and a private temporary folder, no TCP (ABI 4), no signals out
  (ABI 6);
- ``reaper`` (without ``namespaces``): the launcher is the child subreaper and kills every
  process descended from the learner when it exits.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LAYERS = ("namespaces", "landlock", "reaper")
CONFINING = ("namespaces", "landlock")
LAUNCHER = Path(__file__).with_name("launcher.py")
SYSTEM_TREES = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
                "/sys/devices/system/cpu", *(f"/etc/{name}" for name in (
                    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
                    "passwd", "group", "nsswitch.conf", "os-release", "mime.types")))
SCRIPT_AT = "/dev/.nnparity/child.py"  # the child script inside the namespaces (not in /tmp,
# which a learner's folder may be)


@functools.cache
def hidden_folders() -> tuple[Path, ...]:
    """nnparity's package folders and, for a source checkout, the checkout itself: the learner
    must not read the reference (or the project's tests and examples)."""
    import nnparity
    import nnparity.backends
    import nnparity.datasets
    import nnparity.reference

    folders = {Path(m.__file__).resolve().parent for m in
               (nnparity, nnparity.reference, nnparity.backends, nnparity.datasets)
               if m.__file__}
    checkout = Path(nnparity.__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "reference").is_dir():
        folders.add(checkout)
    return tuple(sorted(folders))


def interpreter_folders() -> tuple[Path, ...]:
    """The folders the child's Python and NumPy need, for the interpreter running verify:
    prefixes, the executable's folder, NumPy's, and the import path's other folders outside
    the hidden ones (chained site-packages); none inside another."""
    import numpy

    own = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.executable,
           Path(numpy.__file__).resolve().parent.parent)
    return needed_folders(own, sys.path)


def needed_folders(own: Iterable[str | Path], path: Iterable[str]) -> tuple[Path, ...]:
    """``own`` (prefixes, an executable: its folder and its target's, NumPy's parent) and the
    absolute folders of the import ``path`` outside the hidden ones; none inside another."""
    found: set[Path] = set()
    for entry in map(Path, own):
        found |= {entry.parent, entry.resolve().parent} if entry.is_file() else {entry.resolve()}
    hidden = hidden_folders()
    for entry in path:
        folder = Path(entry).resolve() if entry and Path(entry).is_absolute() else None
        if folder and folder.is_dir() and not any(h == folder or h in folder.parents
                                                  for h in hidden):
            found.add(folder)
    found.discard(Path("/"))
    return tuple(sorted(p for p in found if not any(q in p.parents for q in found)))


def readable_trees(folders: Iterable[Path] | None = None) -> list[str]:
    """What a Landlocked learner may read (the hidden folders are cut out of it): the system's
    trees and the interpreter's ``folders`` (default: verify's own)."""
    folders = interpreter_folders() if folders is None else folders
    return [*SYSTEM_TREES, *map(str, folders)]


def launcher_config(layers: tuple[str, ...], *, folder: Path, copy: Path, tmp: Path,
                    script: Path, parent: int, report_fd: int, limits: tuple[int, int, int],
                    command: list[str] | None = None, python: str | None = None,
                    folders: tuple[Path, ...] | None = None, workdir: str = ".") -> dict[str, Any]:
    """The JSON the launcher reads: ``folder`` the learner's original folder (its tree's root
    with ``--root``), ``copy`` its writable copy, ``workdir`` the file's folder inside it,
    ``tmp`` a private temporary folder (without namespaces), ``script`` the child script;
    ``command`` replaces ``python script`` (bubblewrap's command line); ``python`` and
    ``folders``: the learner's interpreter and the folders it needs (default: verify's)."""
    address_space, cpu_seconds, file_size = limits
    hidden = [str(p) for p in hidden_folders()]
    folders = interpreter_folders() if folders is None else folders
    return {
        "layers": list(layers), "parent": parent, "report_fd": report_fd,
        "address_space": address_space, "cpu_seconds": cpu_seconds, "file_size": file_size,
        "folder": str(folder), "copy": str(copy), "workdir": workdir, "tmp": str(tmp),
        "tmp_bytes": file_size, "script": str(script), "script_at": SCRIPT_AT,
        "python": [python or sys.executable, "-I", "-B"], "command": command,
        "hide": hidden, "holes": [*hidden, str(folder)],
        "keep": [str(p) for p in folders], "read": readable_trees(folders),
    }


def launcher_command(config_fd: int) -> list[str]:
    """The launcher, reading its configuration from the pipe ``config_fd``; ``-S``: it needs the
    standard library only, and skipping ``site`` (the environment's ``.pth`` files, an editable
    install's import hook) saves a part of every run's start."""
    return [sys.executable, "-I", "-B", "-S", str(LAUNCHER), str(config_fd)]
