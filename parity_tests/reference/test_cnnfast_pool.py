"""maxpool2d_argmax's arg-max, counted as the offsets before the first maximum, is the first
maximum in row-major window order (``np.argmax`` over each flattened window), ties and NaN
windows included, and its maximum is every window's maximum."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.reference import pool
from nnparity.reference.conv import pad, padding_amounts, windows


def first_maximum(x: np.ndarray, k: int, stride: int, padding: str) -> np.ndarray:
    """``np.argmax`` over each flattened ``k x k`` window (padded cells ``-inf``); 0 where the
    window holds a NaN (its maximum is NaN, which no cell equals)."""
    xp = pad(x, padding_amounts(x.shape[1:3], (k, k), stride, padding), value=-np.inf)
    flat = windows(xp, (k, k), stride)
    flat = flat.reshape(*flat.shape[:4], k * k)
    return np.where(np.isnan(flat).any(axis=-1), 0, np.argmax(flat, axis=-1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "k", "stride", "padding"), [
    ((4, 28, 28, 3), 2, 2, "SAME"),   # the notes' CNN's pool: windows tile the map
    ((3, 7, 9, 2), 2, 2, "SAME"),     # odd sizes: SAME pads bottom/right with -inf
    ((3, 8, 8, 2), 3, 2, "SAME"),     # overlapping windows
    ((2, 9, 7, 2), 3, 3, "VALID"),    # a row/column left over
])
def test_arg_is_the_first_maximum_ties_and_nan_included(dtype, shape, k, stride, padding):
    rng = np.random.default_rng(26)
    x = rng.integers(0, 3, size=shape).astype(dtype)  # three values: ties everywhere
    x[0, 0, 0, 0], x[-1, 1, 2, -1] = np.nan, -np.inf
    y, arg = pool.maxpool2d_argmax(x, k, stride, padding)
    expected = first_maximum(x, k, stride, padding)
    assert (arg == expected).all()
    assert (arg[0, 0, 0, 0] == 0) and np.isnan(y[0, 0, 0, 0])
    xp = pad(x, padding_amounts(x.shape[1:3], (k, k), stride, padding), value=-np.inf)
    np.testing.assert_array_equal(y, windows(xp, (k, k), stride).max(axis=(-2, -1)))


def test_a_tie_routes_the_gradient_to_the_first_cell_only():
    x = np.array([[[[1.0], [2.0]], [[2.0], [2.0]]]])  # one 2x2 window, three cells tie
    _, arg = pool.maxpool2d_argmax(x, 2, 2, "VALID")
    dx = pool.maxpool2d_backward(np.ones((1, 1, 1, 1)), x, 2, 2, "VALID", arg=arg)
    assert arg.item() == 1
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])
