"""The one atomic writer: every file nnparity writes (weights, checkpoints, reports, metrics,
plots, vectors, cached data) goes through :func:`atomic_path`, so an interrupted write never
leaves a partial file under the final name.

A temporary file is created beside the destination (same folder, so the final ``os.replace`` is
atomic), written by the caller, given the usual mode (``0666 & ~umask``; ``mkstemp`` makes
``0600``) and renamed; on any error it is deleted, and an ``OSError`` that names no file (a full
disk: "[Errno 28] No space left on device") is raised again naming the destination. The folder
must exist: user-named outputs are checked up front (:mod:`nnparity.files.outputs`) and caches
create
their own folders. An existing path that is not a regular file is never replaced: a character
device (``/dev/null``) or a FIFO gets the finished content written into it (the temporary file
then lives in the system's temporary folder), anything else is refused; a symlink is followed.

Temporary names carry the writing process, ``.<name>~<host>~<pid>~<random>.part`` (see
:func:`temp_prefix`), so that leftovers of a process killed outright (``kill -9``) can be told
from a live writer's files and removed later (:func:`remove_leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nnparity.files.outputs import destination, special_output


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path for ``path``'s content; on success move it into place, else delete
    it. A symlink is followed (its target is written, the link stays); a character device or a
    FIFO is written into, never replaced; other special files are refused
    (:func:`nnparity.files.outputs.special_output`)."""
    special = special_output(path)
    target = destination(path) if special is None else Path(path)
    folder = target.parent if special is None else None  # None: the system's temporary folder
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".part", dir=folder)
    except OSError as exc:
        if special is not None and special[1]:
            os.close(special[0])
        raise OSError(exc.errno, f"cannot write {target}: {exc.strerror}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if special is None:
            os.chmod(tmp_path, 0o666 & ~_umask())
            os.replace(tmp_path, target)
        else:
            _copy_into(tmp_path, special[0])
    except OSError as exc:
        if exc.filename is not None or str(target) in str(exc):
            raise
        raise OSError(exc.errno, f"writing {target}: {exc.strerror or exc}") from None
    finally:
        tmp_path.unlink(missing_ok=True)
        if special is not None and special[1]:
            os.close(special[0])


def _copy_into(source: Path, fd: int) -> None:
    """The bytes of ``source`` written to the open descriptor ``fd`` (a device or a FIFO)."""
    with open(source, "rb") as handle:
        while chunk := handle.read(1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


TEMP_NAME = re.compile(r"^\.(?P<name>.*)~(?P<host>[^~/]+)~(?P<pid>\d+)~[^~/]*$")
"""A temporary name made with :func:`temp_prefix` (``.part`` files and work folders)."""


def _host() -> str:
    return socket.gethostname().replace("~", "-") or "localhost"


def temp_prefix(name: str) -> str:
    """``.<name>~<host>~<pid>~``: the prefix of this process's temporary files and folders."""
    return f".{name}~{_host()}~{os.getpid()}~"


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temporary files and folders in ``folder`` whose writer, a process of this host,
    no longer exists; return what was deleted. Another host's or a live process's are kept."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    host = _host()
    for entry in entries:
        match = TEMP_NAME.match(entry.name)
        if not match or match["host"] != host or not _gone(int(match["pid"])):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed
