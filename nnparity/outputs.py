"""The one rule for files and folders a user names as outputs (``--json``, ``--save``,
``--metrics``, ``--plot``, ``--markdown``, ``vectors export DIR``, ...), checked before any work:
the parent folder must exist and be writable, a file must not be a folder, and a folder must not
be a file. Nothing here creates a parent folder; only caches create their folders
(:mod:`nnparity.datasets.cache`), and an output folder itself is created one level deep.
"""

from __future__ import annotations

import os
from pathlib import Path

from nnparity.errors import InputError


class OutputPathError(InputError, OSError):
    """A user-named output that cannot be written (exit 2; an ``OSError`` for older callers)."""


def _parent(target: Path) -> Path:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {target}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"cannot write {target}: folder {folder} is not writable")
    return folder


def output_file(path: str | os.PathLike[str], suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a writable output file, or :class:`OutputPathError`; with ``suffixes``, its
    suffix (lower case) must be one of them."""
    target = Path(path)
    if target.is_dir():
        raise OutputPathError(f"cannot write {target}: it is a directory")
    if suffixes and target.suffix.lower() not in suffixes:
        raise OutputPathError(f"cannot write {target}: the file name must end in "
                              f"{' or '.join(suffixes)}")
    _parent(target)
    return target


def output_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as an output folder (existing, or creatable in an existing parent)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"cannot write into {target}: it exists and is not a folder")
    if not target.exists():
        _parent(target)
    return target


def make_output_folder(path: str | os.PathLike[str]) -> Path:
    """Create the output folder ``path`` (its parent must exist) and return it."""
    target = output_folder(path)
    target.mkdir(exist_ok=True)
    return target
