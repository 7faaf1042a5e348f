"""conv2d (NHWC, HWIO) against a naive loop, TensorFlow's SAME rule, and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnparity.backends.compare import GRADCHECK_TOLERANCE, REORDERED_FLOAT64, tolerance
from nnparity.reference import conv
from nnparity.reference.gradcheck import gradcheck


def naive_conv2d(x, W, b, stride, padding):
    """The definition, one output pixel at a time; padding written out from TensorFlow's docs."""
    n, h, w, _ = x.shape
    kh, kw, _, f = W.shape
    if padding == "SAME":
        ho, wo = math.ceil(h / stride), math.ceil(w / stride)
        ph = max((ho - 1) * stride + kh - h, 0)
        pw = max((wo - 1) * stride + kw - w, 0)
        top, left = ph // 2, pw // 2
        xp = np.zeros((n, h + ph, w + pw, x.shape[3]), dtype=x.dtype)
        xp[:, top:top + h, left:left + w] = x
    else:
        ho, wo = math.ceil((h - kh + 1) / stride), math.ceil((w - kw + 1) / stride)
        xp = x
    z = np.zeros((n, ho, wo, f), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            for o in range(f):
                z[:, i, j, o] = np.sum(patch * W[:, :, :, o], axis=(1, 2, 3)) + b[o]
    return z


CASES = [
    pytest.param(hw, k, s, pad, id=f"{pad}-k{k}-s{s}-{hw[0]}x{hw[1]}")
    for pad in ("SAME", "VALID")
    for s in (1, 2)
    for k in (3, 4, 5)
    for hw in ((7, 9), (8, 5))
]


@pytest.mark.parametrize(("hw", "k", "stride", "padding"), CASES)
def test_forward_matches_naive_loop(hw, k, stride, padding):
    rng = np.random.default_rng(k * 10 + stride)
    x = rng.standard_normal((2, *hw, 3))
    W = rng.standard_normal((k, k, 3, 4))
    b = rng.standard_normal(4)
    got = conv.conv2d(x, W, b, stride, padding)
    want = naive_conv2d(x, W, b, stride, padding)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance("float64", ("conv",)) * 100)


@pytest.mark.parametrize(("size", "k", "stride", "expected"), [
    (28, 5, 1, (2, 2)),   # the three-framework notes: symmetric
    (8, 4, 1, (1, 2)),    # even kernel: the extra pixel goes after (bottom/right)
    (8, 3, 2, (0, 1)),    # stride 2: total 1, all of it after
    (7, 3, 2, (1, 1)),
    (28, 2, 2, (0, 0)),   # the three-framework notes' pool
    (7, 2, 2, (0, 1)),
    (5, 7, 1, (3, 3)),    # kernel wider than the input
])
def test_same_padding_is_tensorflows_rule(size, k, stride, expected):
    assert conv.same_padding(size, k, stride) == expected


def test_asymmetric_same_padding_known_answer():
    """Ones 4x4, 2x2 ones kernel, SAME: padding at the bottom/right, so the top-left sees 4 ones."""
    x = np.ones((1, 4, 4, 1))
    z = conv.conv2d(x, np.ones((2, 2, 1, 1)), np.zeros(1), 1, "SAME")[0, :, :, 0]
    expected = np.array([[4, 4, 4, 2], [4, 4, 4, 2], [4, 4, 4, 2], [2, 2, 2, 1]], dtype=float)
    np.testing.assert_array_equal(z, expected)


@pytest.mark.parametrize(("hw", "k", "stride", "padding"), [
    pytest.param((7, 9), 3, 1, "SAME", id="SAME-k3-s1"),
    pytest.param((7, 8), 4, 2, "SAME", id="SAME-k4-s2"),
    pytest.param((8, 5), 5, 2, "SAME", id="SAME-k5-s2"),
    pytest.param((7, 9), 3, 2, "VALID", id="VALID-k3-s2"),
    pytest.param((8, 6), 4, 1, "VALID", id="VALID-k4-s1"),
])
def test_backward_matches_finite_differences(hw, k, stride, padding):
    """``L = sum(z * R)`` is linear in x, W and b, so central differences are exact up to
    rounding; every entry of dx, dW and db is checked in float64."""
    rng = np.random.default_rng(7)
    tensors = {"x": rng.standard_normal((2, *hw, 2)), "W": rng.standard_normal((k, k, 2, 3)),
               "b": rng.standard_normal(3)}
    z = conv.conv2d(tensors["x"], tensors["W"], tensors["b"], stride, padding)
    R = rng.standard_normal(z.shape)
    dx, dW, db = conv.conv2d_backward(R, tensors["x"], tensors["W"], stride, padding)
    assert (dx.shape, dW.shape, db.shape) == ((2, *hw, 2), (k, k, 2, 3), (3,))

    def loss(t):
        return float(np.sum(conv.conv2d(t["x"], t["W"], t["b"], stride, padding) * R))

    results = gradcheck(loss, tensors, {"x": dx, "W": dW, "b": db}, max_entries=10_000)
    for r in results:
        assert r.checked == r.total
        assert r.max_rel <= GRADCHECK_TOLERANCE, r


def test_col2im_is_the_adjoint_of_im2col():
    """``<im2col(x), C> == <x, col2im(C)>`` for a stride-2 SAME window with asymmetric padding."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 8, 3))
    cols = conv.im2col(x, (4, 4), 2, "SAME")
    C = rng.standard_normal(cols.shape)
    dcols = C.reshape(*C.shape[:3], 4, 4, 3).transpose(3, 4, 0, 1, 2, 5)
    back = conv.col2im(dcols, x.shape, 2, "SAME")
    assert np.isclose(np.sum(cols * C), np.sum(x * back), rtol=REORDERED_FLOAT64)


def test_backward_reuses_cols_and_skips_dx():
    rng = np.random.default_rng(4)
    x, W = rng.standard_normal((2, 6, 6, 2)), rng.standard_normal((3, 3, 2, 4))
    dz = rng.standard_normal((2, 3, 3, 4))
    cols = conv.im2col(x, (3, 3), 2, "SAME")
    dx, dW, db = conv.conv2d_backward(dz, x, W, 2, "SAME")
    none, dW2, db2 = conv.conv2d_backward(dz, x, W, 2, "SAME", cols=cols, need_dx=False)
    assert none is None and dx is not None
    np.testing.assert_array_equal(dW, dW2)
    np.testing.assert_array_equal(db, db2)


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    W = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    b = np.zeros(4, np.float32)
    z = conv.conv2d(x, W, b, 1, "SAME")
    dx, dW, db = conv.conv2d_backward(z, x, W, 1, "SAME")
    assert {a.dtype for a in (z, dx, dW, db)} == {np.dtype(np.float32)}


def test_window_that_does_not_fit_is_an_error():
    with pytest.raises(ValueError, match="does not fit"):
        conv.conv2d(np.zeros((1, 3, 3, 1)), np.zeros((5, 5, 1, 1)), None, 1, "VALID")
    with pytest.raises(ValueError, match="unknown padding"):
        conv.conv2d(np.zeros((1, 3, 3, 1)), np.zeros((2, 2, 1, 1)), None, 1, "FULL")


@pytest.mark.parametrize("samples_per_chunk", [1, 2])
def test_dx_in_sample_chunks_equals_dx_at_once(samples_per_chunk, monkeypatch):
    """``dx`` computed a few samples at a time (here 1 or 2 of 3: a ragged last chunk) is the
    ``dx`` of the whole batch, and ``dW``, ``db`` do not depend on the chunking."""
    rng = np.random.default_rng(6)
    x, W = rng.standard_normal((3, 7, 8, 2)), rng.standard_normal((4, 4, 2, 5))
    dz = rng.standard_normal((3, 4, 4, 5))
    whole = conv.conv2d_backward(dz, x, W, 2, "SAME")
    monkeypatch.setattr(conv, "DCOLS_CHUNK", samples_per_chunk * 4 * 4 * 4 * 4 * 2)
    chunked = conv.conv2d_backward(dz, x, W, 2, "SAME")
    for a, b in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=REORDERED_FLOAT64, atol=0)
