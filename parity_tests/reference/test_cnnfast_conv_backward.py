"""conv2d_backward's input gradient, one kernel offset's ``dcols`` at a time, is the same to the
bit as the whole chunk's ``dcols`` (all offsets in one batched GEMM) added back by col2im."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.reference import conv


def dx_of_whole_chunks(dz: np.ndarray, x: np.ndarray, W: np.ndarray, stride: int,
                       padding: str) -> np.ndarray:
    """The former formulation: per chunk of samples, ``dcols [kh, kw, rows, Ho, Wo, C]`` from
    one ``np.matmul`` over every offset, then :func:`conv.col2im_add`."""
    kh, kw, c, f = W.shape
    n, ho, wo, _ = dz.shape
    dz2 = dz.reshape(n * ho * wo, f)
    dxp, crop = conv.padded_zeros(x.shape, (kh, kw), stride, padding, dz.dtype)
    W_t = W.reshape(kh * kw, c, f).transpose(0, 2, 1)
    rows = max(1, conv.DCOLS_CHUNK // (ho * wo * kh * kw * c))
    for s in range(0, n, rows):
        dcols = np.matmul(dz2[s * ho * wo:(s + rows) * ho * wo], W_t)
        conv.col2im_add(dcols.reshape(kh, kw, -1, ho, wo, c), dxp[s:s + rows], stride)
    return dxp[crop]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x_shape", "kernel", "filters", "stride", "padding"), [
    ((50, 14, 14, 32), 5, 64, 1, "SAME"),   # the notes' CNN's conv2: chunks of 6, ragged last
    ((5, 9, 8, 3), 3, 4, 2, "SAME"),        # strided, SAME's extra row/column bottom/right
    ((3, 7, 7, 2), 4, 5, 1, "VALID"),
])
def test_dx_one_offset_at_a_time_is_bit_identical(dtype, x_shape, kernel, filters, stride,
                                                   padding, monkeypatch):
    rng = np.random.default_rng(26)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal((kernel, kernel, x_shape[3], filters)).astype(dtype)
    ho, wo = conv.output_hw(x_shape[1:3], (kernel, kernel), stride, padding)
    dz = rng.standard_normal((x_shape[0], ho, wo, filters)).astype(dtype)
    if x_shape[0] < 50:  # several chunks, the last one ragged, on the small shapes too
        monkeypatch.setattr(conv, "DCOLS_CHUNK", 2 * ho * wo * kernel * kernel * x_shape[3])
    dx, _, _ = conv.conv2d_backward(dz, x, W, stride, padding)
    expected = dx_of_whole_chunks(dz, x, W, stride, padding)
    assert dx.dtype == expected.dtype == dtype
    assert np.array_equal(dx.view(np.uint8), expected.view(np.uint8))
