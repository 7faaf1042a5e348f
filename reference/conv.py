"""2-D convolution (cross-correlation, as in every framework) in NHWC with HWIO kernels.

Shapes: ``x [N, H, W, C]``, ``W [kh, kw, C, F]``, ``b [F]``, ``z [N, Ho, Wo, F]``.

Forward, with ``xp`` the zero-padded input and stride ``s``::

    z[n, i, j, f] = b[f] + sum_{p, q, c} xp[n, s*i + p, s*j + q, c] * W[p, q, c, f]

computed as one matrix product: the im2col matrix ``cols [N*Ho*Wo, kh*kw*C]`` (every window
flattened in ``(p, q, c)`` order, the order of ``W.reshape(kh*kw*C, F)``) times that matrix.

Backward, given ``dz = dL/dz [N, Ho, Wo, F]``::

    db[f]          = sum_{n, i, j} dz[n, i, j, f]
    dW[p, q, c, f] = sum_{n, i, j} xp[n, s*i + p, s*j + q, c] * dz[n, i, j, f]   (cols^T @ dz)
    dxp[n, s*i + p, s*j + q, c] += sum_f dz[n, i, j, f] * W[p, q, c, f]          (col2im)

and ``dx`` is ``dxp`` with the padding cropped off. col2im loops over the ``kh*kw`` kernel
offsets only (never over pixels); the backward pass computes ``dcols`` a few samples at a time
(:data:`DCOLS_CHUNK`) and one kernel offset at a time, adding each offset's block back (in
``(p, q)`` row-major order, as col2im does) while it is still in cache.

Padding follows TensorFlow exactly, per spatial axis of size ``n`` with window ``k``:

- ``VALID``: no padding, ``out = ceil((n - k + 1) / s)``;
- ``SAME``: ``out = ceil(n / s)``, ``total = max((out - 1) * s + k - n, 0)``,
  ``before = total // 2``, ``after = total - before``: an odd total puts the extra row/column at
  the bottom/right. PyTorch's symmetric ``padding=`` cannot express this; a torch backend must pad
  explicitly with :func:`padding_amounts`;
- an integer ``p`` (a convolution's only: PyTorch's ``padding=p``): ``p`` zeros on every side,
  ``out = floor((n + 2p - k) / s) + 1``. It equals SAME where SAME is symmetric (stride 1, odd
  ``k = 2p + 1``) but not, for example, for a stride-2 3x3 convolution of an even map (SAME pads
  0 above and 1 below, ``padding=1`` one each: ResNet's downsampling convolution).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

PADDINGS = ("SAME", "VALID")
Padding = str | int
"""``SAME``, ``VALID`` or a number of zeros on every side (module docstring)."""


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding ``(before, after)`` along one axis of length ``size``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def padding_amounts(
    hw: tuple[int, int], window: tuple[int, int], stride: int, padding: str | int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` for an ``H x W`` map and a ``kh x kw`` window."""
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if padding == "VALID":
        return (0, 0), (0, 0)
    if padding != "SAME":
        raise ValueError(f"unknown padding {padding!r}; known: {', '.join(PADDINGS)}")
    return same_padding(hw[0], window[0], stride), same_padding(hw[1], window[1], stride)


def pad(
    x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0
) -> np.ndarray:
    """``x [N, H, W, C]`` padded with ``value``: ``[N, H + top + bottom, W + left + right, C]``."""
    if pads == ((0, 0), (0, 0)):
        return x
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def output_size(size: int, window: int, stride: int, padding: str | int) -> int:
    """Output length along one axis: ``ceil(size / s)`` for SAME, ``ceil((size - k + 1) / s)`` for
    VALID, ``floor((size + 2p - k) / s) + 1`` for ``p`` zeros (0 or less when the window does not
    fit)."""
    if isinstance(padding, int):
        return (size + 2 * padding - window) // stride + 1 if size + 2 * padding >= window else 0
    if padding == "SAME":
        return -(-size // stride)
    if padding != "VALID":
        raise ValueError(f"unknown padding {padding!r}; known: {', '.join(PADDINGS)}")
    return -(-(size - window + 1) // stride)


def output_hw(
    hw: tuple[int, int], window: tuple[int, int], stride: int, padding: str | int
) -> tuple[int, int]:
    """``(Ho, Wo)`` of an ``H x W`` map (see :func:`output_size`); raises when it would be empty."""
    ho = output_size(hw[0], window[0], stride, padding)
    wo = output_size(hw[1], window[1], stride, padding)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"a {window[0]}x{window[1]} window does not fit a {hw[0]}x{hw[1]} input "
                         f"with {padding} padding")
    return ho, wo


def windows(xp: np.ndarray, window: tuple[int, int], stride: int) -> np.ndarray:
    """Strided view of every window of a padded ``xp [N, Hp, Wp, C]``: ``[N, Ho, Wo, C, kh, kw]``.

    No copy (``sliding_window_view``); ``windows[n, i, j, c, p, q] = xp[n, s*i + p, s*j + q, c]``.
    """
    view = np.lib.stride_tricks.sliding_window_view(xp, window, axis=(1, 2))
    return view[:, ::stride, ::stride]


def im2col(x: np.ndarray, window: tuple[int, int], stride: int, padding: str | int) -> np.ndarray:
    """The im2col matrix of ``x [N, H, W, C]``: ``cols [N, Ho, Wo, kh*kw*C]``, ``(p, q, c)`` order.

    ``cols[n, i, j, (p*kw + q)*C + c] = xp[n, s*i + p, s*j + q, c]``.
    """
    output_hw(x.shape[1:3], window, stride, padding)  # raises when the window does not fit
    xp = pad(x, padding_amounts(x.shape[1:3], window, stride, padding))
    view = windows(xp, window, stride)                      # [N, Ho, Wo, C, kh, kw]
    n, ho, wo, c, kh, kw = view.shape
    if c == 1:  # offsets-major memory: kh*kw copies of whole maps, not runs of kw values
        cols = np.empty((kh, kw, c, n, ho, wo), dtype=xp.dtype)
        cols[...] = view.transpose(4, 5, 3, 0, 1, 2)
        return cols.transpose(3, 4, 5, 0, 1, 2).reshape(n, ho, wo, kh * kw * c)
    return view.transpose(0, 1, 2, 4, 5, 3).reshape(n, ho, wo, kh * kw * c)


def conv2d(
    x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: int = 1, padding: str | int = "SAME"
) -> np.ndarray:
    """Forward: ``z [N, Ho, Wo, F] = conv(x [N, H, W, C], W [kh, kw, C, F]) + b [F]``."""
    return conv2d_cols(im2col(x, W.shape[:2], stride, padding), W, b)


def conv2d_cols(cols: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Forward from a precomputed ``cols [N, Ho, Wo, kh*kw*C]``: ``cols @ W.reshape(-1, F) + b``."""
    kh, kw, c, f = W.shape
    n, ho, wo, _ = cols.shape
    z = cols.reshape(n * ho * wo, kh * kw * c) @ W.reshape(kh * kw * c, f)  # one 2-D GEMM
    if b is not None:
        add_bias(z, b)
    return z.reshape(n, ho, wo, f)


def add_bias(z: np.ndarray, b: np.ndarray) -> None:
    """``z [M, F] += b [F]`` in place (C-contiguous ``z``), the same one add per value, over
    ``[M / r, r * F]`` with ``b`` tiled ``r`` times (``r`` a divisor of ``M``, ``r * F`` at most
    64 Ki values): NumPy loops over rows of ``r * F`` values instead of ``M`` rows of ``F``
    (conv1's 39,200 rows of 32: 0.13 ms instead of 0.5)."""
    m, f = z.shape
    r = next((r for r in (math.gcd(m, n) for n in (720720, 5040, 120, 12)) if r * f <= 1 << 16),
             1)
    wide = z.reshape(m // r, r * f)
    np.add(wide, np.tile(b, r), out=wide)


DCOLS_CHUNK = 1 << 20
"""Values of the input gradient's ``dcols`` that set :func:`conv2d_backward`'s chunk of samples:
``DCOLS_CHUNK // (Ho*Wo*kh*kw*C)`` samples at a time (6 for the notes' CNN's conv2). Each
chunk's ``dcols`` is computed one kernel offset at a time, a ``[samples*Ho*Wo, C]`` block
(150 KB there) added back while in L2, so the full ``[kh*kw, N*Ho*Wo, C]`` matrix (31 MB at
batch 50) never exists. The chunk fixes the GEMMs' shapes, and OpenBLAS rounds a row of the
product differently in GEMMs of other shapes: changing it changes ``dx`` in the last bits."""


def dcols_samples(output_hw: tuple[int, int], kernel_shape: tuple[int, ...]) -> int:
    """Samples per chunk of :func:`conv2d_backward`'s input gradient for an ``[Ho, Wo]`` output
    and a ``[kh, kw, C, F]`` kernel: ``DCOLS_CHUNK // (Ho*Wo*kh*kw*C)``, at least 1."""
    kh, kw, c, _ = kernel_shape
    return max(1, DCOLS_CHUNK // (output_hw[0] * output_hw[1] * kh * kw * c))


def dz_chunks(dz: np.ndarray, kernel_shape: tuple[int, ...]) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`conv2d_backward`'s chunks of ``dz [N, Ho, Wo, F]`` for a ``[kh, kw, C, F]`` kernel:
    ``(first sample, rows [samples*Ho*Wo, F])``, :func:`dcols_samples` samples each (views)."""
    n, ho, wo, f = dz.shape
    rows = dcols_samples((ho, wo), kernel_shape)
    dz2 = dz.reshape(n * ho * wo, f)
    for s in range(0, n, rows):
        yield s, dz2[s * ho * wo:(s + rows) * ho * wo]


def offset_kernels(W: np.ndarray) -> np.ndarray:
    """``W[p, q].T`` of a ``[kh, kw, C, F]`` kernel for every offset, ``(p, q)`` row-major:
    ``[kh*kw, F, C]`` (a view), each the right operand of an offset's ``dcols = dz @ W[p, q].T``."""
    kh, kw, c, f = W.shape
    return W.reshape(kh * kw, c, f).transpose(0, 2, 1)


def conv2d_backward(
    dz: np.ndarray,
    x: np.ndarray,
    W: np.ndarray,
    stride: int = 1,
    padding: str | int = "SAME",
    *,
    cols: np.ndarray | None = None,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Backward: ``(dx [N, H, W, C], dW [kh, kw, C, F], db [F])`` from ``dz [N, Ho, Wo, F]``.

    ``cols`` (from :func:`im2col` of the same ``x``) saves recomputing the im2col matrix;
    ``need_dx=False`` skips ``dx`` (the first layer's input needs no gradient) and returns None.
    """
    kh, kw, c, f = W.shape
    n, ho, wo, _ = dz.shape
    if cols is None:
        cols = im2col(x, (kh, kw), stride, padding)
    dz2 = dz.reshape(n * ho * wo, f)
    db = dz2.sum(axis=0)
    dW = (cols.reshape(n * ho * wo, kh * kw * c).T @ dz2).reshape(kh, kw, c, f)
    if not need_dx:
        return None, dW, db
    dx = np.zeros(x.shape, dtype=dz.dtype)
    (top, _), (left, _) = padding_amounts(x.shape[1:3], (kh, kw), stride, padding)
    places = [offset_place(p - top, q - left, stride, (ho, wo), x.shape[1:3])
              for p in range(kh) for q in range(kw)]  # where each offset's dcols adds on
    W_t = offset_kernels(W)
    rows = dcols_samples(dz.shape[1:3], W.shape)
    block = np.empty((min(rows, n) * ho * wo, c), dtype=np.result_type(dz, W))
    for s, dz_s in dz_chunks(dz, W.shape):  # a few samples at a time (the GEMMs' shapes fix
        dcols = block[:len(dz_s)]            # their rounding)
        for offset, (at, part) in enumerate(places):  # (p, q) row-major
            np.matmul(dz_s, W_t[offset], out=dcols)  # dcols[p, q] = dz @ W[p, q].T
            dx[s:s + rows][at] += dcols.reshape(-1, ho, wo, c)[part]  # added while in cache
    return dx, dW, db


def col2im(
    dcols: np.ndarray, x_shape: tuple[int, ...], stride: int, padding: str | int
) -> np.ndarray:
    """Adjoint of :func:`im2col`: add ``dcols [kh, kw, N, Ho, Wo, C]`` back onto ``[N, H, W, C]``
    (:func:`col2im_add` onto zeros of the padded shape), then crop the padding off."""
    dxp, crop = padded_zeros(x_shape, dcols.shape[:2], stride, padding, dcols.dtype)
    col2im_add(dcols, dxp, stride)
    return dxp[crop]


def padded_zeros(
    x_shape: tuple[int, ...], window: tuple[int, int], stride: int, padding: str | int,
    dtype: np.dtype, *, empty: bool = False
) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Zeros shaped like ``x [N, H, W, C]`` padded for ``window`` (the ``dxp`` that gradients
    are added onto), and the index that crops the padding off again; ``empty``: uninitialised
    instead (the caller writes every cell)."""
    (top, bottom), (left, right) = padding_amounts(x_shape[1:3], window, stride, padding)
    n, h, w, c = x_shape
    dxp = (np.empty if empty else np.zeros)((n, h + top + bottom, w + left + right, c),
                                            dtype=dtype)
    return dxp, (slice(None), slice(top, top + h), slice(left, left + w), slice(None))


def col2im_add(dcols: np.ndarray, dxp: np.ndarray, stride: int) -> None:
    """``dxp[n, s*i + p, s*j + q, c] += dcols[p, q, n, i, j, c]`` in place on the padded
    ``dxp [N, Hp, Wp, C]``, looping over the ``(p, q)`` offsets only (offsets first in
    ``dcols``, so each added block is contiguous)."""
    kh, kw = dcols.shape[:2]
    for p in range(kh):
        for q in range(kw):
            add_offset(dxp, p, q, stride, dcols[p, q])


def add_offset(dx: np.ndarray, p: int, q: int, stride: int, block: np.ndarray) -> None:
    """``dx[n, s*i + p, s*j + q, c] += block[n, i, j, c]`` in place wherever that cell lies
    inside ``dx [N, H, W, C]``: one kernel offset's ``dcols [N, Ho, Wo, C]`` added back
    (:func:`offset_place`)."""
    at, part = offset_place(p, q, stride, block.shape[1:3], dx.shape[1:3])
    dx[at] += block[part]


Place = tuple[tuple[slice, ...], tuple[slice, ...]]


def offset_place(p: int, q: int, stride: int, block_hw: tuple[int, int],
                 hw: tuple[int, int]) -> Place:
    """``(at, part)``: the cells ``dx[at]`` of an ``H x W`` map that an offset's
    ``Ho x Wo`` block adds onto (``dx[n, s*i + p, s*j + q, c] += block[n, i, j, c]``) and the
    part ``block[part]`` that lands there. On the padded ``dxp`` every cell lands; on the
    unpadded ``dx`` (``p``, ``q`` less the padding before: negative or past the edge for the
    offsets that reach into it) the cells that land on padding are left out, as cropping
    ``dxp`` would drop them, and every other cell gets the same adds in the same order."""
    (i0, i1), (j0, j1) = (_inside(p, stride, block_hw[0], hw[0]),
                          _inside(q, stride, block_hw[1], hw[1]))
    i1, j1 = max(i0, i1), max(j0, j1)  # nothing lands: empty slices
    rows = slice(stride * i0 + p, stride * i0 + p + stride * (i1 - i0), stride)
    columns = slice(stride * j0 + q, stride * j0 + q + stride * (j1 - j0), stride)
    every = slice(None)
    return (every, rows, columns, every), (every, slice(i0, i1), slice(j0, j1), every)


def _inside(start: int, stride: int, count: int, size: int) -> tuple[int, int]:
    """``(lo, hi)``: the ``i`` in ``range(count)`` with ``0 <= start + stride*i < size``."""
    return max(0, -(start // stride)), min(count, -((start - size) // stride))
