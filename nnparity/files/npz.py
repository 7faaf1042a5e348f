"""The one reader of ``.npz`` archives (weights, checkpoints, vectors, results files, users'
``state_dict`` files): every member's ``.npy`` header is read and checked before its data.

:func:`open_npz` lists the members with their headers; a caller that knows what to expect
(a spec's shapes and dtype) checks them there, then reads only what passed. A member is refused,
with a :class:`NpzError` naming the file and the member, when it is not a ``.npy`` array, holds
Python objects (nothing is ever unpickled) or a structured dtype, or when its header's shape and
dtype do not account for exactly the member's size (a damaged header claiming 10^10 elements is
caught from the zip directory, before anything is decompressed). :func:`read_npz` reads every
member once their total fits in the memory available (:mod:`nnparity.memory`).
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy

from nnparity.errors import InputError
from nnparity.memory import available_bytes, human

HEADER_READERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}


class NpzError(InputError, ValueError):
    """An ``.npz`` file or member that cannot be read (exit 2; a ``ValueError`` for callers)."""


@dataclass(frozen=True)
class Member:
    """One array of an archive, as its header describes it (``name`` without ``.npy``)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    info: zipfile.ZipInfo

    @property
    def nbytes(self) -> int:
        """Bytes of the array's data."""
        return math.prod(self.shape) * self.dtype.itemsize


class Archive:
    """An open ``.npz`` file: its checked :attr:`members` by name, and :meth:`read`."""

    def __init__(self, path: Path, archive: zipfile.ZipFile) -> None:
        self.path, self._zip = path, archive
        self.members: dict[str, Member] = {}
        for info in archive.infolist():
            member = self._header(info)
            self.members[member.name] = member

    def _refuse(self, name: str, why: str) -> NpzError:
        return NpzError(f"{self.path}: entry '{name}' {why}")

    def _header(self, info: zipfile.ZipInfo) -> Member:
        name = info.filename.removesuffix(".npy")
        if not info.filename.endswith(".npy"):
            raise self._refuse(info.filename, "is not a .npy array")
        with self._zip.open(info) as stream:
            try:
                version = npy.read_magic(stream)
                reader = HEADER_READERS.get(version)
                if reader is None:
                    raise self._refuse(name, f"has an unsupported .npy version {version}")
                shape, fortran_order, dtype = reader(stream)
            except (ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise self._refuse(name, f"is damaged ({exc})") from None
            header_bytes = stream.tell()
        if dtype.hasobject:
            raise self._refuse(name, "holds Python objects; refusing to unpickle")
        if dtype.names is not None or dtype.kind == "V":
            raise self._refuse(name, f"has a structured dtype {dtype}; expected numbers or text")
        member = Member(name, tuple(shape), dtype, fortran_order, info)
        if header_bytes + member.nbytes != info.file_size:
            raise self._refuse(name, f"is damaged (its header declares {dtype}"
                               f"{list(member.shape)}, {member.nbytes} bytes, the member holds "
                               f"{info.file_size - header_bytes})")
        return member

    def read(self, name: str) -> np.ndarray:
        """The array ``name``, read after its header was checked."""
        member = self.members[name]
        array = np.empty(math.prod(member.shape), member.dtype)
        target = array.view(np.uint8)
        try:
            with self._zip.open(member.info) as stream:
                stream.seek(member.info.file_size - member.nbytes)
                filled = _read_into(stream, target)
                stream.read(1)  # at the end: checks the CRC
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise self._refuse(name, f"is damaged ({exc})") from None
        if filled != member.nbytes:
            raise self._refuse(name, f"is damaged ({filled} of {member.nbytes} bytes)")
        if member.fortran_order:
            return array.reshape(member.shape[::-1]).transpose()
        return array.reshape(member.shape)


def _read_into(stream: IO[bytes], target: np.ndarray) -> int:
    view, filled = memoryview(target), 0
    while filled < len(view):
        count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    return filled


@contextmanager
def open_npz(path: str | os.PathLike[str]) -> Iterator[Archive]:
    """The archive at ``path`` with its members' headers checked (module docstring)."""
    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise NpzError(f"{path}: not an .npz file (no zip header)")
    try:
        with zipfile.ZipFile(path) as archive:
            yield Archive(path, archive)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise NpzError(f"{path}: not a readable .npz file ({exc})") from None


def read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of ``path`` by name, read once their headers passed and their total size
    fits in the memory available."""
    with open_npz(path) as archive:
        needed = sum(m.nbytes for m in archive.members.values())
        available = available_bytes()
        if available is not None and needed > available:
            raise NpzError(f"{path}: its arrays need ~{human(needed)}, {human(available)} "
                           "available")
        return {name: archive.read(name) for name in archive.members}
