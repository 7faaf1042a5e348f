"""The one rule for files and folders a user names as outputs (``-o``, ``--json``, ``--junit``,
``--save``, ``--checkpoint``, ``--metrics``, ``--plot``, ``--markdown``, ``vectors export DIR``,
``teach --out DIR``), checked before any work; user-facing in ``docs/outputs.md``.

- A file: its parent folder must exist and be writable; it must not be a folder. A new or
  regular file is written atomically (:mod:`nnparity.files.atomic`: a temporary file renamed over
  it).
- A path that exists and is not a regular file is never replaced: a **character device** (such
  as ``/dev/null``) is written into in place; a **FIFO** is written into only while a process
  reads it: it is opened up front with ``O_NONBLOCK`` (no reader: refused, exit 2, before any
  work) and held open until the command ends, so the reader sees one stream; a **socket**, a
  **block device** or anything else is refused.
- A **symbolic link** is followed, as the shell's ``>`` follows it: the rule applies to what it
  names, the link itself stays (a link to a regular file gets that file replaced atomically; a
  link to ``/dev/null`` writes into ``/dev/null``; a dangling link creates its target).
- A folder: an existing folder or a new one in an existing parent (created one level deep);
  an existing path that is not a folder is refused.
- An output that is one of the command's inputs (the same file, through links) is refused up
  front naming both (:func:`check_not_inputs`).

Nothing here creates a parent folder; only caches create their folders
(:mod:`nnparity.datasets.cache`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from nnparity.errors import InputError

PathLike = str | os.PathLike[str]


class OutputPathError(InputError, OSError):
    """A user-named output that cannot be written (exit 2; an ``OSError`` for older callers)."""


_HELD: dict[tuple[int, int], int] = {}
"""FIFOs opened for writing, by (device, inode): kept open until :func:`release` (the end of
the command)."""

REFUSED = {stat.S_IFSOCK: "a socket", stat.S_IFBLK: "a block device", stat.S_IFDIR: "a directory"}


def destination(path: PathLike) -> Path:
    """Where a regular or new file ``path`` is renamed into place: ``path``, or what it names if
    it is a symlink. (A device or a FIFO is opened through ``path`` itself, so that links the
    kernel resolves, such as ``/dev/stdout`` to a pipe, work.)"""
    target = Path(path)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def _parent(target: Path, shown: Path) -> None:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {shown}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"cannot write {shown}: folder {folder} is not writable")


def _mode(path: Path) -> int | None:
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return None


def _refuse_kind(mode: int, shown: Path) -> None:
    kind = REFUSED.get(stat.S_IFMT(mode), "not a regular file")
    raise OutputPathError(f"cannot write {shown}: it is {kind}; nnparity writes regular files, "
                          "character devices (/dev/null) and FIFOs that a process reads")


def _open_fifo(path: Path) -> int:
    """``path`` opened for writing, held until :func:`release`; refused when nothing reads it."""
    info = os.stat(path)
    key = (info.st_dev, info.st_ino)
    if key not in _HELD:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise OutputPathError(f"cannot write {path}: it is a FIFO and no process is "
                                      "reading it (start the reader first)") from None
            raise OutputPathError(f"cannot write {path}: {exc.strerror}") from None
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        _HELD[key] = fd
    return _HELD[key]


def output_file(path: PathLike, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a writable output file, or :class:`OutputPathError`; with ``suffixes``, its
    suffix (lower case) must be one of them. A FIFO is opened (and held) here."""
    shown = Path(path)
    if suffixes and shown.suffix.lower() not in suffixes:
        raise OutputPathError(f"cannot write {shown}: the file name must end in "
                              f"{' or '.join(suffixes)}")
    mode = _mode(shown)
    if mode is None or stat.S_ISREG(mode):
        _parent(destination(shown), shown)
    elif stat.S_ISCHR(mode):
        if not os.access(shown, os.W_OK):
            raise OutputPathError(f"cannot write {shown}: the device is not writable")
    elif stat.S_ISFIFO(mode):
        _open_fifo(shown)
    else:
        _refuse_kind(mode, shown)
    return shown


def special_output(path: PathLike) -> tuple[int, bool] | None:
    """How to write ``path`` without replacing it: ``(fd, close_after)`` for a character device
    or a FIFO, ``None`` for a regular or new file (written atomically); anything else refused.
    Called by the atomic writer for every file it writes."""
    mode = _mode(Path(path))
    if mode is None or stat.S_ISREG(mode):
        return None
    if stat.S_ISCHR(mode):
        return os.open(path, os.O_WRONLY), True
    if stat.S_ISFIFO(mode):
        return _open_fifo(Path(path)), False
    _refuse_kind(mode, Path(path))
    return None


def release() -> None:
    """Close the FIFOs held open for writing (their readers see the end of the stream)."""
    while _HELD:
        os.close(_HELD.popitem()[1])


def output_folder(path: PathLike) -> Path:
    """``path`` as an output folder (existing, or creatable in an existing parent)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"cannot write into {target}: it exists and is not a folder")
    if not target.exists():
        _parent(target, target)
    return target


def make_output_folder(path: PathLike) -> Path:
    """Create the output folder ``path`` (its parent must exist) and return it."""
    target = output_folder(path)
    target.mkdir(exist_ok=True)
    return target


Paths = PathLike | Iterable[PathLike] | None


def _each(value: Paths) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [Path(value)]
    return [Path(v) for v in value]


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one does not exist (yet), or is no path (inline JSON)
        return False


def files_in(folder: PathLike | None) -> list[Path]:
    """The files under an input folder (``--data-dir``, ``--vectors``), as inputs."""
    return [p for p in Path(folder).rglob("*") if p.is_file()] if folder else []


def check_distinct(outputs: Mapping[str, Paths]) -> None:
    """Refuse, before any work, two outputs that name the same file (one would overwrite the
    other); a device or a FIFO may take several."""
    seen: dict[str, tuple[str, Path]] = {}
    for name, value in outputs.items():
        for output in _each(value):
            mode = _mode(output)
            if mode is not None and not stat.S_ISREG(mode):
                continue
            key = os.path.realpath(output)
            if key in seen:
                other, first = seen[key]
                raise OutputPathError(f"{other} {first} and {name} {output} are the same file: "
                                      "give each output its own name")
            seen[key] = (name, output)


def check_not_inputs(outputs: Mapping[str, Paths], inputs: Mapping[str, Paths]) -> None:
    """Refuse, before any work, an output that is one of the command's inputs: the same existing
    file, through symlinks and hard links. Both map an option name (``-o``, ``--resume``,
    ``FILE``) to a path, several paths, or None."""
    for out_name, out_value in outputs.items():
        for output in _each(out_value):
            for in_name, in_value in inputs.items():
                for given in _each(in_value):
                    if _same(output, given):
                        raise OutputPathError(
                            f"{out_name} {output} is the input {in_name} {given}: writing it "
                            "would replace what is being read; choose another output")
