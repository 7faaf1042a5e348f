"""The learner's results frame is untrusted input: a frame its code crafted (JSON nested too
deeply, an array header claiming 10^10 elements, a member that is not ``.npy``) is refused as a
damaged frame, never a traceback or an allocation of what the header claims."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

from nnparity.verify.child import MAGIC, encode
from nnparity.verify.runner import read_results


def _frame(head: bytes, body: bytes) -> bytes:
    return MAGIC + struct.pack(">QQ", len(head), len(body)) + head + body


def _npz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_a_frame_verify_wrote_round_trips():
    arrays = {"z.layer1": np.arange(6.0).reshape(2, 3)}
    meta, read = read_results(encode({"warnings": []}, arrays))
    assert meta == {"warnings": []}
    np.testing.assert_array_equal(read["z.layer1"], arrays["z.layer1"])


@pytest.mark.parametrize("head, body, why", [
    (b"[" * 100_000, _npz({}), "nested too deeply"),
    (b"[1, 2]", _npz({}), "not an object"),
    (b"{}", _npz({"x.npy": _npy_header((100_000, 100_000))}), "damaged"),
    (b"{}", _npz({"x.pkl": b"\x80\x04N."}), "not a .npy array"),
])
def test_a_crafted_frame_is_refused_as_damaged(head, body, why):
    with pytest.raises(ValueError, match=why):
        read_results(_frame(head, body))


def test_a_frame_that_is_not_a_zip_is_refused():
    with pytest.raises((ValueError, zipfile.BadZipFile)):
        read_results(_frame(b"{}", b"not a zip"))
