"""The plain formulation of a convolution's input gradient, which the tests of the reference's
fast ``conv2d_backward`` compare with to the bit (imported beside the conftest)."""

from __future__ import annotations

import numpy as np

from nnparity.reference import conv


def dx_of_whole_chunks(dz: np.ndarray, x: np.ndarray, W: np.ndarray, stride: int,
                       padding: str | int) -> np.ndarray:
    """Per chunk of samples (``conv.DCOLS_CHUNK``), ``dcols [kh, kw, rows, Ho, Wo, C]`` from one
    ``np.matmul`` over every offset (the same GEMM per offset), added onto a padded ``dxp`` by
    :func:`conv.col2im_add`, the padding cropped off at the end."""
    kh, kw, c, _ = W.shape
    ho, wo = dz.shape[1:3]
    dxp, crop = conv.padded_zeros(x.shape, (kh, kw), stride, padding, dz.dtype)
    rows = conv.dcols_samples((ho, wo), W.shape)
    for s, dz_s in conv.dz_chunks(dz, W.shape):
        dcols = np.matmul(dz_s, conv.offset_kernels(W))  # every offset's GEMM at once
        conv.col2im_add(dcols.reshape(kh, kw, -1, ho, wo, c), dxp[s:s + rows], stride)
    return dxp[crop]
