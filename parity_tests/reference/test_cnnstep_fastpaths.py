"""The CNN step's fast paths (issue 26) against their plain formulations, bit for bit:

- :func:`conv.im2col` of a one-channel map, stored offsets-major (a transposed view), gives the
  same matrix; the convolution's GEMMs on it agree with those on a C-ordered copy to a few ulps
  (:data:`REORDERED_FLOAT32`, :data:`REORDERED_FLOAT64`): OpenBLAS' Haswell kernels give the
  same bits from both layouts, its SkylakeX (AVX-512) kernels not for small products;
- :func:`conv.conv2d_backward` adds each offset's ``dcols`` straight onto the unpadded ``dx``
  (cells that land on padding skipped) instead of onto a padded ``dxp`` cropped afterwards;
- relu before a max-pool whose windows do not overlap runs on the pooled map
  (:func:`pool.relu_maxpool2d` and its backward), and :func:`network.gradients` fuses it
  (``fused=True``) with the same loss, gradients and deltas as the plain walk.

Ties, NaN (both signs), infinities and signed zeros included; float32 and float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from conv_formulations import dx_of_whole_chunks  # parity_tests/, beside the conftest

from nnparity.backends.compare import REORDERED_FLOAT32, REORDERED_FLOAT64, compare_tensor
from nnparity.reference import CNNSpec, conv, init_params, network, pool
from nnparity.reference.activations import relu, relu_grad
from nnparity.reference.layers import MaxPool, make_layer
from nnparity.reference.netspec import NetSpec

DTYPES = [np.float32, np.float64]


def bits(a: np.ndarray) -> np.ndarray:
    """``a``'s bytes, so that comparing them tells NaN payloads and signed zeros apart."""
    return np.ascontiguousarray(a).view(np.uint8)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(bits(a), bits(b))


def plain_im2col(x: np.ndarray, k: int, stride: int, padding: str | int) -> np.ndarray:
    """The row-major im2col: the windows' view copied in ``(p, q, c)`` order."""
    xp = conv.pad(x, conv.padding_amounts(x.shape[1:3], (k, k), stride, padding))
    view = conv.windows(xp, (k, k), stride)
    n, ho, wo, c = view.shape[:4]
    return np.ascontiguousarray(view.transpose(0, 1, 2, 4, 5, 3)).reshape(n, ho, wo, k * k * c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("x_shape", "k", "filters", "stride", "padding"), [
    ((50, 28, 28, 1), 5, 32, 1, "SAME"),   # the notes' CNN's conv1
    ((3, 9, 7, 1), 3, 5, 2, "SAME"),       # strided, odd sizes
    ((2, 8, 9, 1), 4, 3, 3, "VALID"),      # a row/column left over
    ((2, 7, 7, 1), 3, 7, 2, 1),            # PyTorch's padding=1
    ((2, 6, 5, 2), 3, 4, 1, "SAME"),       # two channels: the row-major branch
])
def test_im2col_is_bit_identical_and_its_gemms_agree(dtype, x_shape, k, filters, stride,
                                                     padding):
    rng = np.random.default_rng(26)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal((k, k, x_shape[3], filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    cols = conv.im2col(x, (k, k), stride, padding)
    plain = plain_im2col(x, k, stride, padding)
    assert same_bits(cols, plain)
    if x_shape[3] == 1:
        assert not cols.flags.c_contiguous  # the offsets-major layout is the one tested
    z = conv.conv2d_cols(cols, W, b)
    dz = rng.standard_normal(z.shape).astype(dtype)
    _, dW, db = conv.conv2d_backward(dz, x, W, stride, padding, cols=cols, need_dx=False)
    _, dW_plain, db_plain = conv.conv2d_backward(dz, x, W, stride, padding, cols=plain,
                                                 need_dx=False)
    tol = REORDERED_FLOAT32 if dtype == np.float32 else REORDERED_FLOAT64
    for name, fast, slow in (("z", z, conv.conv2d_cols(plain, W, b)), ("dW", dW, dW_plain)):
        result = compare_tensor("grad", name, fast, slow, tol)
        assert result.passed, result
    assert same_bits(db, db_plain)  # a sum over dz alone: no GEMM


@pytest.mark.parametrize(("m", "f", "z_dtype", "b_dtype"), [
    (39200, 32, np.float32, np.float32),   # conv1's z: 560 rows at a time
    (9800, 64, np.float64, np.float64),
    (97, 5, np.float32, np.float32),       # a prime number of rows: one at a time
    (12, 70000, np.float32, np.float32),   # rows too wide to tile
    (60, 3, np.float32, np.float64),       # a float64 bias onto float32 z, as ``z += b``
])
def test_bias_added_in_wide_rows_is_bit_identical(m, f, z_dtype, b_dtype):
    rng = np.random.default_rng(26)
    z = rng.standard_normal((m, f)).astype(z_dtype)
    b = rng.standard_normal(f).astype(b_dtype)
    b[0], z[0, 1] = -0.0, -0.0
    expected = z.copy()
    expected += b
    conv.add_bias(z, b)
    assert same_bits(z, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("x_shape", "k", "filters", "stride", "padding"), [
    ((50, 14, 14, 32), 5, 64, 1, "SAME"),  # the notes' CNN's conv2
    ((3, 9, 8, 3), 3, 4, 2, "SAME"),       # SAME's extra row/column bottom/right
    ((3, 10, 9, 2), 5, 3, 3, "SAME"),      # offsets past the far edge
    ((2, 9, 7, 2), 3, 3, 2, "VALID"),      # a row/column no window reaches
    ((2, 7, 8, 2), 3, 4, 2, 2),            # padding=2 on every side
    ((2, 5, 5, 1), 5, 2, 1, 4),            # padding wider than the map
])
def test_dx_onto_the_unpadded_map_is_bit_identical(dtype, x_shape, k, filters, stride, padding,
                                                   monkeypatch):
    rng = np.random.default_rng(26)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal((k, k, x_shape[3], filters)).astype(dtype)
    ho, wo = conv.output_hw(x_shape[1:3], (k, k), stride, padding)
    dz = rng.standard_normal((x_shape[0], ho, wo, filters)).astype(dtype)
    dz[0, 0, 0, :] = -0.0  # a cell whose adds are all -0.0 products
    if x_shape[0] < 50:  # several chunks, the last one ragged
        monkeypatch.setattr(conv, "DCOLS_CHUNK", 2 * ho * wo * k * k * x_shape[3])
    dx, _, _ = conv.conv2d_backward(dz, x, W, stride, padding)
    assert dx.flags.c_contiguous
    assert same_bits(dx, dx_of_whole_chunks(dz, x, W, stride, padding))


@pytest.mark.parametrize(("start", "stride", "size"), [(-3, 1, 6), (-3, 2, 6), (2, 3, 5),
                                                       (5, 1, 4), (-9, 2, 4)])
def test_add_offset_adds_only_the_cells_inside(start, stride, size):
    block = np.arange(1, 2 * 4 * 3 * 2 + 1, dtype=np.float64).reshape(2, 4, 3, 2)
    dx = np.zeros((2, size, size, 2))
    conv.add_offset(dx, start, start, stride, block)
    expected = np.zeros_like(dx)
    for i in range(4):
        for j in range(3):
            r, c = start + stride * i, start + stride * j
            if 0 <= r < size and 0 <= c < size:
                expected[:, r, c, :] += block[:, i, j, :]
    assert same_bits(dx, expected)


def tied_map(shape: tuple[int, ...], dtype: type, rng: np.random.Generator) -> np.ndarray:
    """Small integers (ties everywhere, many windows all nonpositive), signed zeros, NaN of
    both signs and infinities."""
    z = rng.integers(-2, 3, size=shape).astype(dtype)
    z[rng.random(shape) < 0.1] = -0.0
    z.reshape(-1)[[3, 17]] = np.nan
    z.reshape(-1)[[40]] = -np.nan
    z.reshape(-1)[[5]] = np.inf
    z.reshape(-1)[[60]] = -np.inf
    z[0, 0, 0, 0], z[0, 0, 1, 0] = 2.0, np.nan  # a NaN window with a positive first cell
    return z


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "k", "stride", "padding"), [
    ((4, 28, 28, 3), 2, 2, "SAME"),   # the notes' CNN's pool
    ((3, 7, 9, 2), 2, 2, "SAME"),     # odd sizes: padded with -inf bottom/right
    ((3, 8, 7, 2), 3, 3, "VALID"),    # a row/column left over
    ((2, 9, 9, 2), 2, 3, "SAME"),     # gaps between windows
])
def test_relu_then_pool_pooled_first_is_bit_identical(dtype, shape, k, stride, padding):
    rng = np.random.default_rng(26)
    z = tied_map(shape, dtype, rng)
    h, arg = pool.relu_maxpool2d(z, k, stride, padding)
    y_plain, arg_plain = pool.maxpool2d_argmax(relu(z), k, stride, padding)
    assert same_bits(h, y_plain)
    dy = rng.standard_normal(h.shape).astype(dtype)
    dy[rng.random(h.shape) < 0.2] = -0.0
    dy.reshape(-1)[[1, 2, 3]] = [np.nan, np.inf, -np.inf]
    with np.errstate(invalid="ignore"):  # inf * 0
        dz = pool.relu_maxpool2d_backward(dy, z, h, arg, k, stride, padding)
        dh = pool.maxpool2d_backward(dy, relu(z), k, stride, padding, arg=arg_plain)
        assert same_bits(dz, dh * relu_grad(z, relu(z)))


def routed_onto_zeros(dy: np.ndarray, arg: np.ndarray, x_shape: tuple[int, ...], k: int,
                      stride: int, padding: str) -> np.ndarray:
    """The plain max-pool backward: each window's ``dy`` added (``np.add.at``) onto zeros at
    its arg-max, the padding cropped off."""
    dxp, crop = conv.padded_zeros(x_shape, (k, k), stride, padding, dy.dtype)
    n, i, j, c = np.indices(dy.shape)
    np.add.at(dxp, (n, stride * i + arg // k, stride * j + arg % k, c), dy)
    return dxp[crop]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "k", "stride", "padding"), [
    ((3, 28, 28, 2), 2, 2, "SAME"),   # windows tile the map: written onto an empty one
    ((3, 7, 9, 2), 2, 2, "SAME"),     # tile the padded map
    ((3, 9, 9, 2), 3, 3, "VALID"),    # tile
    ((3, 8, 7, 2), 3, 3, "VALID"),    # a row/column left over: zeros there
    ((2, 9, 9, 2), 2, 3, "SAME"),     # gaps between windows
])
def test_pool_backward_writes_every_cell(dtype, shape, k, stride, padding):
    rng = np.random.default_rng(26)
    x = tied_map(shape, dtype, rng)
    y, arg = pool.maxpool2d_argmax(x, k, stride, padding)
    dy = rng.standard_normal(y.shape).astype(dtype)
    filler = np.full(4 * x.size, np.nan, dtype=dtype)
    del filler  # freed memory full of NaN, for the uninitialised map to reuse
    dx = pool.maxpool2d_backward(dy, x, k, stride, padding, arg=arg)
    expected = routed_onto_zeros(dy, arg, x.shape, k, stride, padding)
    assert np.array_equal(np.abs(dx), np.abs(expected))  # dy * False is -0.0 for dy < 0


def test_overlapping_windows_do_not_fuse():
    z = np.zeros((1, 4, 4, 1))
    h, arg = pool.relu_maxpool2d(z, 3, 2, "SAME")
    with pytest.raises(ValueError, match="overlap"):
        pool.relu_maxpool2d_backward(np.ones_like(h), z, h, arg, 3, 2, "SAME")
    assert not make_layer("maxpool", "pool", size=3, stride=2).fuses_relu
    assert make_layer("maxpool", "pool", size=2).fuses_relu


def test_a_subclassed_pool_is_not_fused():
    """A known mistake's variant (a subclass with a backward of its own) runs as written."""
    @dataclass(frozen=True)
    class OwnBackward(MaxPool):
        pass

    relu_layer = make_layer("relu", "conv1")
    assert network._relus_pooled((relu_layer, MaxPool("pool1"))) == {0}
    assert not network._relus_pooled((relu_layer, OwnBackward("pool1")))


def assert_same_gradients(spec, params, x, y, mask=None):
    fused = network.gradients(spec, params, x, y, dropout_mask=mask)
    plain = network.gradients(spec, params, x, y, dropout_mask=mask, fused=False)
    assert np.array_equal(np.float64(fused.loss), np.float64(plain.loss), equal_nan=True)
    assert fused.grads.keys() == plain.grads.keys() and fused.deltas.keys() == plain.deltas.keys()
    for name in fused.grads:
        assert same_bits(fused.grads[name], plain.grads[name]), name
    for name in fused.deltas:
        assert same_bits(fused.deltas[name], plain.deltas[name]), name
    assert same_bits(fused.output, plain.output)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_training_pass_is_bit_identical(dtype):
    spec = CNNSpec.tiny(dtype=dtype)
    params = init_params(spec, seed=3)
    rng = np.random.default_rng(26)
    x = rng.standard_normal((7, *spec.input_shape))
    y = rng.integers(0, spec.classes, size=7)
    mask = rng.integers(0, 2, size=(7, spec.dropout_units)).astype(dtype)
    assert network._run(spec, None, 0, fused=True).pooled
    assert not network._run(spec, None, 0).pooled
    assert_same_gradients(spec, params, x, y, mask)
    x[:, :3] = 0.0  # zero rows: conv outputs equal to the bias, pools full of ties
    assert_same_gradients(spec, params, x, y, mask)
    x[0, 1, 1, 0] = np.nan  # NaN windows, a NaN loss
    assert_same_gradients(spec, params, x, y, mask)


def test_fused_notes_cnn_step_is_bit_identical():
    spec = CNNSpec.seed002(dtype="float32")
    params = {k: np.asarray(v, dtype=np.float32) for k, v in init_params(spec, seed=0).items()}
    rng = np.random.default_rng(26)
    x = rng.random((8, *spec.input_shape), dtype=np.float32)
    y = rng.integers(0, spec.classes, size=8)
    mask = rng.integers(0, 2, size=(8, spec.dropout_units)).astype(np.float32)
    assert_same_gradients(spec, params, x, y, mask)


def test_fused_net_with_a_strided_pool_and_an_overlapping_one():
    spec = NetSpec((9, 9, 2), [
        {"kind": "conv2d", "filters": 3, "kernel": 3},
        {"kind": "relu"}, {"kind": "maxpool", "size": 2, "stride": 3},
        {"kind": "conv2d", "filters": 4, "kernel": 2},
        {"kind": "relu"}, {"kind": "maxpool", "size": 2, "stride": 1},
        {"kind": "flatten"}, {"kind": "dense", "units": 3}], loss="ce", dtype="float64")
    run = network._run(spec, None, 0, fused=True)
    assert run.pooled == {1}  # the overlapping pool stays unfused
    params = init_params(spec, seed=5)
    rng = np.random.default_rng(26)
    x = rng.integers(-1, 2, size=(4, 9, 9, 2)).astype(np.float64)
    assert_same_gradients(spec, params, x, rng.integers(0, 3, size=4))
