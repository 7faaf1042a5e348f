"""IDX files (the MNIST format): read, write, and per-batch conversion.

Layout (all integers big-endian)::

    0x00 0x00 <type code> <ndim>        magic; type 0x08 = uint8, so labels are 0x00000801
    <dim 0> ... <dim ndim-1>            uint32 each           and images 0x00000803
    data                                prod(dims) items, row-major

Files may be raw or gzip-compressed (detected by the gzip magic bytes ``1f 8b``, not by the
name). Raw files are memory-mapped, gzip files decompressed once into a read-only buffer: the
uint8 images are never copied to float64 as a whole set; use :func:`to_float` per batch.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from nnparity.files.atomic import write_bytes

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian dtype
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODES: dict[str, int] = {
    "u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E,
}
LABELS_MAGIC = 0x0801
IMAGES_MAGIC = 0x0803


class DataError(ValueError):
    """A dataset problem the user can fix (bad file, missing data): the CLI exits 2."""


class IdxError(DataError):
    """A file is not a valid IDX file: wrong magic, truncated, or header/length mismatch."""


def is_gzip(path: str | os.PathLike) -> bool:
    """True if the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def parse_header(head: bytes, name: str = "<buffer>") -> tuple[int, np.dtype, tuple[int, ...], int]:
    """``(magic, dtype, dims, header_size)`` from the first bytes of an IDX file.

    Raises :class:`IdxError` for a wrong magic or a header shorter than it says.
    """
    if len(head) < 4:
        raise IdxError(f"{name}: truncated: {len(head)} bytes, shorter than the 4-byte IDX magic")
    magic = int.from_bytes(head[:4], "big")
    if head[0] != 0 or head[1] != 0 or head[2] not in DTYPES or not 1 <= head[3] <= 8:
        raise IdxError(
            f"{name}: wrong magic 0x{magic:08x}: not an IDX file "
            f"(expected 0x{LABELS_MAGIC:08x} labels or 0x{IMAGES_MAGIC:08x} images)"
        )
    ndim = head[3]
    size = 4 + 4 * ndim
    if len(head) < size:
        raise IdxError(
            f"{name}: truncated: header needs {size} bytes for {ndim} dims, file has {len(head)}"
        )
    dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return magic, DTYPES[head[2]], dims, size


def _check_length(name: str, dims: tuple[int, ...], dtype: np.dtype, have: int) -> None:
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    shape = "x".join(map(str, dims))
    if have < want:
        raise IdxError(
            f"{name}: truncated: header says {shape} = {want} bytes of data, file has {have}"
        )
    if have > want:
        raise IdxError(
            f"{name}: header/length mismatch: header says {shape} = {want} bytes of data, "
            f"file has {have} ({have - want} extra)"
        )


def read_idx(
    path: str | os.PathLike, *, expect_magic: int | None = None, mmap: bool = True
) -> np.ndarray:
    """The array stored in an IDX file (raw or gzip), shape = the header's dims.

    uint8 data stays uint8: raw files are memory-mapped read-only (``mmap=False`` reads them
    into memory), gzip files decompressed into one read-only buffer. ``expect_magic``
    (``LABELS_MAGIC`` or ``IMAGES_MAGIC``) rejects the other kind. Raises :class:`IdxError`.
    """
    path = Path(path)
    name = str(path)
    if is_gzip(path):
        try:
            with gzip.open(path, "rb") as f:
                data = f.read()
        except (OSError, EOFError) as exc:
            raise IdxError(f"{name}: truncated or corrupt gzip data: {exc}") from None
        magic, dtype, dims, size = parse_header(data[:36], name)
        _check_magic(name, magic, expect_magic)
        _check_length(name, dims, dtype, len(data) - size)
        arr = np.frombuffer(data, dtype=dtype, offset=size).reshape(dims)
    else:
        with open(path, "rb") as f:
            head = f.read(36)
        magic, dtype, dims, size = parse_header(head, name)
        _check_magic(name, magic, expect_magic)
        _check_length(name, dims, dtype, path.stat().st_size - size)
        if int(np.prod(dims)) == 0:
            return np.zeros(dims, dtype=dtype)
        if mmap:
            arr = np.memmap(path, dtype=dtype, mode="r", offset=size, shape=dims)
        else:
            arr = np.fromfile(path, dtype=dtype, offset=size).reshape(dims)
            arr.flags.writeable = False
    return arr


def _check_magic(name: str, magic: int, expect: int | None) -> None:
    if expect is not None and magic != expect:
        kind = {LABELS_MAGIC: "labels", IMAGES_MAGIC: "images"}.get(expect, "data")
        raise IdxError(
            f"{name}: wrong magic 0x{magic:08x}: expected 0x{expect:08x} ({kind}, uint8)"
        )


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding (header + big-endian data) of ``array`` (1 to 8 dims)."""
    arr = np.asarray(array)
    code = CODES.get(arr.dtype.str[1:])
    if code is None:
        raise IdxError(f"IDX cannot store dtype {arr.dtype}")
    if not 1 <= arr.ndim <= 8:
        raise IdxError(f"IDX stores 1 to 8 dims, got {arr.ndim}")
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX, atomically (temporary file in the same folder, then rename).

    gzip-compressed (deterministically, mtime 0) if ``compress`` or, when ``None``, if the
    name ends in ``.gz``. Returns the path.
    """
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    data = idx_bytes(array)
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    write_bytes(path, data)
    return path


def to_float(batch: np.ndarray, dtype: type | np.dtype = np.float32, *, flatten: bool = False
             ) -> np.ndarray:
    """uint8 pixels ``[N, H, W]`` -> ``dtype`` values in [0, 1] (divided by 255).

    With ``flatten`` the result is ``[N, H*W]`` (row-major, the canonical layout for an MLP).
    Meant for one batch at a time: the whole set stays uint8.
    """
    out = np.asarray(batch, dtype=dtype) / np.asarray(255, dtype=dtype)
    return flatten_images(out) if flatten else out


def flatten_images(batch: np.ndarray) -> np.ndarray:
    """``[N, H, W]`` (or ``[N, H, W, C]``) -> ``[N, H*W*C]``, row-major; a view when possible."""
    return batch.reshape(len(batch), -1)


def batches(images: np.ndarray, labels: np.ndarray, size: int, *, dtype: type = np.float32,
            flatten: bool = True, order: np.ndarray | None = None):
    """Yield ``(x [B, 784] or [B, 28, 28] float, y [B] uint8)`` batches of ``size`` rows,
    converted per batch; ``order`` (a permutation of row indices) picks the rows."""
    n = len(images)
    for start in range(0, n, size):
        idx = slice(start, start + size) if order is None else order[start:start + size]
        yield to_float(images[idx], dtype, flatten=flatten), np.asarray(labels[idx])
