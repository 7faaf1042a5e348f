"""Max-pool (NHWC) against a naive loop, finite differences and the documented tie rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnparity.backends.compare import GRADCHECK_TOLERANCE
from nnparity.reference import pool
from nnparity.reference.gradcheck import gradcheck


def naive_maxpool(x, k, stride, padding):
    """The definition, one window at a time; padded cells are -inf (TensorFlow's SAME rule)."""
    n, h, w, c = x.shape
    if padding == "SAME":
        ho, wo = math.ceil(h / stride), math.ceil(w / stride)
        ph = max((ho - 1) * stride + k - h, 0)
        pw = max((wo - 1) * stride + k - w, 0)
        xp = np.full((n, h + ph, w + pw, c), -np.inf)
        xp[:, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w] = x
    else:
        ho, wo = math.ceil((h - k + 1) / stride), math.ceil((w - k + 1) / stride)
        xp = x
    y = np.empty((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, i * stride:i * stride + k, j * stride:j * stride + k]
            y[:, i, j] = window.max(axis=(1, 2))
    return y


CASES = [
    pytest.param(hw, k, s, pad, id=f"{pad}-k{k}-s{s}-{hw[0]}x{hw[1]}")
    for pad in ("SAME", "VALID")
    for k, s in ((2, 2), (3, 2), (3, 1), (2, 1))
    for hw in ((7, 9), (8, 6))
]


@pytest.mark.parametrize(("hw", "k", "stride", "padding"), CASES)
def test_forward_matches_naive_loop(hw, k, stride, padding):
    x = np.random.default_rng(k + stride).standard_normal((2, *hw, 3))
    got = pool.maxpool2d(x, k, stride, padding)
    want = naive_maxpool(x, k, stride, padding)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_padding_never_wins():
    """All-negative input with SAME padding at the bottom/right: no output is the pad value."""
    x = -np.arange(1, 10, dtype=float).reshape(1, 3, 3, 1)
    y = pool.maxpool2d(x, 2, 2, "SAME")[0, :, :, 0]
    np.testing.assert_array_equal(y, [[-1, -3], [-7, -9]])


@pytest.mark.parametrize(("hw", "k", "stride", "padding"), [
    pytest.param((7, 9), 2, 2, "SAME", id="SAME-k2-s2"),
    pytest.param((8, 7), 3, 2, "SAME", id="SAME-k3-s2-overlap"),
    pytest.param((7, 6), 3, 1, "VALID", id="VALID-k3-s1-overlap"),
    pytest.param((8, 9), 2, 3, "VALID", id="VALID-k2-s3-gaps"),
    pytest.param((7, 8), 2, 3, "SAME", id="SAME-k2-s3-gaps"),
])
def test_backward_matches_finite_differences(hw, k, stride, padding):
    """Random float64 input has no ties, so ``L = sum(y * R)`` is locally linear in x."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, *hw, 2))
    R = rng.standard_normal(pool.maxpool2d(x, k, stride, padding).shape)
    dx = pool.maxpool2d_backward(R, x, k, stride, padding)
    assert dx.shape == x.shape

    def loss(t):
        return float(np.sum(pool.maxpool2d(t["x"], k, stride, padding) * R))

    (result,) = gradcheck(loss, {"x": x}, {"x": dx}, max_entries=10_000, step=1e-6)
    assert result.checked == result.total
    assert result.max_rel <= GRADCHECK_TOLERANCE, result


def tie_input():
    """4x4 map, 2x2 windows, ties in every window but the first kind:
    window (0,0): all four equal; (0,1): along a diagonal, the later cell first in column order;
    (1,0): along a row; (1,1): along the anti-diagonal."""
    x = np.zeros((1, 4, 4, 1))
    x[0, 0:2, 0:2, 0] = 1.0
    x[0, 0, 3, 0] = x[0, 1, 2, 0] = 2.0
    x[0, 3, 0, 0] = x[0, 3, 1, 0] = 3.0
    x[0, 2, 3, 0] = x[0, 3, 2, 0] = 4.0
    return x


def test_tie_rule_first_maximum_in_row_major_order():
    """Measured with PyTorch 2.13 (``F.max_pool2d``) and TensorFlow 2.21 (``tf.nn.max_pool2d``,
    oneDNN on and off), float32 and float64: both give exactly this gradient."""
    x = tie_input()
    dx = pool.maxpool2d_backward(np.ones((1, 2, 2, 1)), x, 2, 2, "SAME")[0, :, :, 0]
    expected = [[1, 0, 0, 1],
                [0, 0, 0, 0],
                [0, 0, 0, 1],
                [1, 0, 0, 0]]
    np.testing.assert_array_equal(dx, expected)
    _, arg = pool.maxpool2d_argmax(x, 2, 2, "SAME")
    np.testing.assert_array_equal(arg[0, :, :, 0], [[0, 1], [2, 1]])


def test_tie_rule_with_overlapping_windows():
    """All-equal 4x4, 3x3 windows, stride 1: each window's top-left cell takes its gradient
    (again what PyTorch and TensorFlow do)."""
    dx = pool.maxpool2d_backward(np.ones((1, 2, 2, 1)), np.ones((1, 4, 4, 1)), 3, 1, "VALID")
    expected = np.zeros((4, 4))
    expected[:2, :2] = 1
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_overlapping_windows_add_up():
    """One cell that is the maximum of all four overlapping windows receives all four grads."""
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 5.0
    dy = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    dx = pool.maxpool2d_backward(dy, x, 2, 1, "VALID")
    assert dx[0, 1, 1, 0] == 10.0 and dx.sum() == 10.0


def test_dtype_is_kept():
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2)).astype(np.float32)
    y = pool.maxpool2d(x)
    assert y.dtype == np.float32
    assert pool.maxpool2d_backward(y, x).dtype == np.float32
