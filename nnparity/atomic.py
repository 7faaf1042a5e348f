"""The one atomic writer: every file nnparity writes (weights, checkpoints, reports, metrics,
plots, vectors, cached data) goes through :func:`atomic_path`, so an interrupted write never
leaves a partial file under the final name.

A temporary file is created beside the destination (same folder, so the final ``os.replace`` is
atomic), written by the caller, given the usual mode (``0666 & ~umask``; ``mkstemp`` makes
``0600``) and renamed; on any error it is deleted, and an ``OSError`` that names no file (a full
disk: "[Errno 28] No space left on device") is raised again naming the destination. The folder
must exist: user-named outputs are checked up front (:mod:`nnparity.outputs`) and caches create
their own folders.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, else delete it."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {target}: {exc.strerror}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.filename is not None or str(target) in str(exc):
            raise
        raise OSError(exc.errno, f"writing {target}: {exc.strerror or exc}") from None
    finally:
        tmp_path.unlink(missing_ok=True)


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
