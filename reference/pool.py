"""Max-pooling in NHWC, with the gradient routed to one arg-max per window.

Shapes: ``x [N, H, W, C]`` -> ``y [N, Ho, Wo, C]`` for a ``k x k`` window and stride ``s``
(the notes' CNN: ``k = s = 2``, SAME). Padding follows TensorFlow's rule (:mod:`conv`):
``VALID`` or ``SAME`` with the extra row/column at the bottom/right; padded cells hold ``-inf``,
so they never win and every SAME window contains at least one real cell.

Forward::

    y[n, i, j, c] = max_{p, q} xp[n, s*i + p, s*j + q, c]

Backward: each window passes its upstream gradient to exactly one input cell, its arg-max
``(p*, q*)``; windows that overlap (``s < k``) add up::

    dxp[n, s*i + p*, s*j + q*, c] += dy[n, i, j, c]

Tie rule: when several cells of a window hold the maximum, the arg-max is the **first** one in
row-major window order (rows top to bottom, each row left to right: the smallest ``p*k + q``;
``np.argmax`` over the flattened window picks the same cell). Every backend follows this rule:
``parity_tests`` check it against each framework's own max-pool gradient on windows that tie
along a row, a diagonal and an anti-diagonal, and on overlapping all-equal windows.
"""

from __future__ import annotations

import numpy as np

from .activations import relu, relu_grad
from .conv import output_hw, pad, padded_zeros, padding_amounts


def maxpool2d_argmax(
    x: np.ndarray, k: int, stride: int, padding: str
) -> tuple[np.ndarray, np.ndarray]:
    """Forward with arg-max: ``(y [N, Ho, Wo, C], arg [N, Ho, Wo, C])``, where ``arg = p*k + q``
    is the window offset of the first maximum in row-major order (int8, int32 for k > 11).

    ``y`` is the running ``maximum`` over the ``k*k`` window offsets; then ``arg`` counts the
    offsets, in row-major order, before the first whose cell equals ``y``: the first maximum's
    offset. A window whose ``y`` is NaN (no cell equals it) gets ``arg = 0``.
    """
    ho, wo = output_hw(x.shape[1:3], (k, k), stride, padding)
    xp = pad(x, padding_amounts(x.shape[1:3], (k, k), stride, padding), value=-np.inf)

    def cell(p: int, q: int) -> np.ndarray:
        """``xp[n, s*i + p, s*j + q, c]`` for every window ``(i, j)``: a strided view."""
        return xp[:, p:p + stride * ho:stride, q:q + stride * wo:stride, :]

    offsets = [(p, q) for p in range(k) for q in range(k)]
    y = cell(0, 0).copy()
    for p, q in offsets[1:]:
        np.maximum(y, cell(p, q), out=y)
    missed = cell(0, 0) != y                 # no offset so far holds the maximum
    arg = missed.astype(np.int8 if k * k <= 127 else np.int32)
    unequal = np.empty_like(missed)
    for p, q in offsets[1:]:
        missed &= np.not_equal(cell(p, q), y, out=unequal)
        arg += missed                        # one more offset before the first maximum
    arg[missed] = 0                          # y is NaN: no offset holds it
    return y, arg


def near_ties(x: np.ndarray, scale: np.ndarray, k: int, stride: int, padding: str,
              tol: float) -> np.ndarray:
    """Cells of ``x [N, H, W, C]`` tied for their window's maximum within rounding: within
    ``tol * scale`` (the largest ``scale`` of the window) of it, in a window with two or more
    such cells and a non-zero maximum (relu's zeros pass no gradient either way). Boolean,
    shaped like ``x``; a cell of overlapping windows is marked when any of them ties."""
    pads = padding_amounts(x.shape[1:3], (k, k), stride, padding)
    ho, wo = output_hw(x.shape[1:3], (k, k), stride, padding)
    xp, sp = pad(x, pads, value=-np.inf), pad(np.abs(scale), pads)
    offsets = [(p, q) for p in range(k) for q in range(k)]

    def cell(a: np.ndarray, p: int, q: int) -> np.ndarray:
        return a[:, p:p + stride * ho:stride, q:q + stride * wo:stride, :]

    top = np.max([cell(xp, p, q) for p, q in offsets], axis=0)
    bound = tol * np.max([cell(sp, p, q) for p, q in offsets], axis=0)
    near = [np.abs(cell(xp, p, q) - top) <= bound for p, q in offsets]
    tied = (np.sum(near, axis=0) >= 2) & (top != 0)
    marked = np.zeros(xp.shape, dtype=bool)
    for (p, q), close in zip(offsets, near, strict=True):
        cell(marked, p, q)[...] |= close & tied
    (t, _), (left, _) = pads
    return marked[:, t:t + x.shape[1], left:left + x.shape[2], :]


def maxpool2d(x: np.ndarray, k: int = 2, stride: int = 2, padding: str = "SAME") -> np.ndarray:
    """Forward: ``y [N, Ho, Wo, C]``, the maximum of each ``k x k`` window of ``x [N, H, W, C]``."""
    return maxpool2d_argmax(x, k, stride, padding)[0]


def maxpool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    k: int = 2,
    stride: int = 2,
    padding: str = "SAME",
    *,
    arg: np.ndarray | None = None,
) -> np.ndarray:
    """Backward: ``dx [N, H, W, C]`` from ``dy [N, Ho, Wo, C]``, one arg-max per window (first
    maximum in row-major window order). ``arg`` from :func:`maxpool2d_argmax` of the same ``x``
    saves recomputing it. Loops over the ``k*k`` window offsets only, writing each offset's
    routed gradient straight into place when the windows do not overlap (``s >= k``), onto an
    uninitialised map when they tile it (every cell written)."""
    if arg is None:
        _, arg = maxpool2d_argmax(x, k, stride, padding)
    _, ho, wo, _ = dy.shape
    (top, bottom), (left, right) = padding_amounts(x.shape[1:3], (k, k), stride, padding)
    padded = (x.shape[1] + top + bottom, x.shape[2] + left + right)
    tiled = stride == k and padded == (k * ho, k * wo)  # every cell in exactly one window
    dxp, crop = padded_zeros(x.shape, (k, k), stride, padding, dy.dtype, empty=tiled)
    for p in range(k):
        for q in range(k):
            cell = dxp[:, p:p + stride * ho:stride, q:q + stride * wo:stride, :]
            if stride >= k:  # windows do not overlap: no cell receives from two of them
                np.multiply(dy, arg == p * k + q, out=cell)
            else:
                cell += dy * (arg == p * k + q)
    return dxp[crop]


def relu_maxpool2d(z: np.ndarray, k: int, stride: int,
                   padding: str) -> tuple[np.ndarray, np.ndarray]:
    """``maxpool2d(relu(z))`` pooled first: ``(relu(y), arg)`` with ``y, arg`` the pool of
    ``z [N, H, W, C]`` (:func:`maxpool2d_argmax`), relu on a map ``k*k`` times smaller.

    The same bits as relu then pool: relu never decreases, so a window's maximum of ``relu(z)``
    is ``relu`` of its maximum of ``z``; NumPy's ``maximum`` hands back its second operand on a
    tie, so ``relu`` gives ``+0.0`` for ``-0.0`` and every all-nonpositive window pools to
    ``+0.0`` either way, and a NaN propagates either way. ``arg`` is the pool of ``z``'s: it
    differs from the pool of ``relu(z)``'s only in windows whose maximum is not positive, where
    relu passes no gradient to any cell (:func:`relu_maxpool2d_backward`)."""
    y, arg = maxpool2d_argmax(z, k, stride, padding)
    return relu(y), arg


def relu_maxpool2d_backward(dy: np.ndarray, z: np.ndarray, h: np.ndarray, arg: np.ndarray,
                            k: int, stride: int, padding: str) -> np.ndarray:
    """``dL/dz [N, H, W, C]`` of relu then max-pool from ``dy [N, Ho, Wo, C]``, for windows that
    do not overlap (``stride >= k``), from :func:`relu_maxpool2d`'s ``(h, arg)`` of ``z``:
    relu's derivative taken on the pooled map, then routed by the pool.

    Each cell gets ``dy * [arg is this cell] * [z > 0]`` (products of 0 and 1: the factors'
    order leaves the bits alone, ``dy * 0`` keeping ``dy``'s sign and NaN), as relu then pool's
    backward gives it: at a window's arg-max ``z`` is its maximum (``[h > 0]``), except in a
    window whose maximum is NaN, which routes to its first cell (arg 0) whatever ``z`` holds
    there. Overlapping windows would add several windows' terms before relu's factor: not
    fused."""
    if stride < k:
        raise ValueError(f"relu and a max-pool fuse only when windows do not overlap (stride "
                         f"{stride} < size {k})")
    grad = relu_grad(h, h)                   # [h > 0] = [z > 0] at the arg-max, NaN aside
    nan = np.isnan(h)
    if nan.any():                            # NaN windows route to their first cell
        ho, wo = h.shape[1:3]
        xp = pad(z, padding_amounts(z.shape[1:3], (k, k), stride, padding), value=-np.inf)
        grad[nan] = relu_grad(xp[:, :stride * ho:stride, :stride * wo:stride, :][nan], None)
    return maxpool2d_backward(dy * grad, z, k, stride, padding, arg=arg)
