"""conv2d_backward's input gradient, one kernel offset's ``dcols`` at a time, is the same to the
bit as the whole chunk's ``dcols`` (all offsets in one batched GEMM) added back by col2im."""

from __future__ import annotations

import numpy as np
import pytest
from conv_formulations import dx_of_whole_chunks  # parity_tests/, beside the conftest

from nnparity.reference import conv


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
