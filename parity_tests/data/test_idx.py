"""IDX reader/writer: round trips (raw, gzip), and each malformed-file error."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from nnparity.backends.compare import FLOAT32_ROUNDING
from nnparity.datasets import idx
from nnparity.datasets.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    IdxError,
    batches,
    flatten_images,
    idx_bytes,
    read_idx,
    to_float,
    write_idx,
)


def _images(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_round_trip_images(tmp_path, name):
    a = _images()
    path = write_idx(tmp_path / name, a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    b = read_idx(path, expect_magic=IMAGES_MAGIC)
    assert b.dtype == np.uint8 and b.shape == (5, 28, 28)
    np.testing.assert_array_equal(a, b)
    assert not b.flags.writeable


def test_header_is_the_mnist_one(tmp_path):
    raw = idx_bytes(np.arange(3, dtype=np.uint8))
    assert raw[:8] == bytes.fromhex("00000801 00000003".replace(" ", ""))
    assert idx_bytes(_images(2))[:16] == bytes.fromhex("00000803000000020000001c0000001c")


def test_raw_is_memory_mapped_and_gzip_detected_by_content(tmp_path):
    a = _images()
    raw = write_idx(tmp_path / "raw", a)
    assert isinstance(read_idx(raw), np.memmap)
    gz = tmp_path / "compressed-without-suffix"
    gz.write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(gz), a)


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8", "<f8", "<i4"])
def test_round_trip_dtypes(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "u1":
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    b = read_idx(write_idx(tmp_path / "a.gz", a))
    np.testing.assert_array_equal(a, b)
    assert b.dtype.kind == np.dtype(dtype).kind and b.dtype.itemsize == np.dtype(dtype).itemsize


def test_labels_round_trip(tmp_path):
    y = np.array([5, 0, 4, 1, 9], np.uint8)
    path = write_idx(tmp_path / "l", y)
    np.testing.assert_array_equal(read_idx(path, expect_magic=LABELS_MAGIC), y)


@pytest.mark.parametrize("gz", [False, True])
def test_wrong_magic(tmp_path, gz):
    data = b"\x50\x4b\x03\x04" + bytes(100)  # a zip file, say
    path = tmp_path / "bad"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IdxError, match=r"bad: wrong magic 0x504b0304"):
        read_idx(path)


def test_wrong_kind_is_wrong_magic(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(IdxError, match=r"wrong magic 0x00000801: expected 0x00000803 \(images"):
        read_idx(path, expect_magic=IMAGES_MAGIC)


@pytest.mark.parametrize("cut", [2, 10])
def test_truncated_header(tmp_path, cut):
    path = tmp_path / "short"
    path.write_bytes(idx_bytes(_images(1))[:cut])
    with pytest.raises(IdxError, match="short: truncated"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, gz):
    data = idx_bytes(_images(3))[:-100]
    path = tmp_path / "cut"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IdxError, match=r"truncated: header says 3x28x28 = 2352 bytes of data, "
                                       r"file has 2252"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(_images(3)))[:-20])
    with pytest.raises(IdxError, match="truncated or corrupt gzip"):
        read_idx(path)


def test_header_length_mismatch(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00\x01")
    with pytest.raises(IdxError, match=r"header/length mismatch: header says 4 = 4 bytes .* "
                                       r"file has 6 \(2 extra\)"):
        read_idx(path)


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out-idx3-ubyte"
    write_idx(target, _images(1))
    before = target.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(idx.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_idx(target, _images(4))
    assert target.read_bytes() == before  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["out-idx3-ubyte"]  # no temporary left


def test_per_batch_conversion():
    a = _images(7)
    x = to_float(a[:3], flatten=True)
    assert x.dtype == np.float32 and x.shape == (3, 784)
    np.testing.assert_allclose(x, a[:3].reshape(3, -1) / 255.0, rtol=FLOAT32_ROUNDING)
    assert to_float(a[:2], np.float64).dtype == np.float64
    assert to_float(a[:2], np.float64).shape == (2, 28, 28)
    assert flatten_images(a).shape == (7, 784)
    y = np.arange(7, dtype=np.uint8)
    got = list(batches(a, y, 3))
    assert [len(b[0]) for b in got] == [3, 3, 1] and got[0][0].shape == (3, 784)
    order = np.array([6, 5, 4, 3, 2, 1, 0])
    first = next(batches(a, y, 2, order=order, flatten=False, dtype=np.float64))
    np.testing.assert_array_equal(first[1], [6, 5])
    assert first[0].shape == (2, 28, 28) and first[0].dtype == np.float64
