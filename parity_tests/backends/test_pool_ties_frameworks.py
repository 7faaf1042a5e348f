"""Max-pool ties against every framework: the documented rule (``reference/pool.py``) is that a
window whose maximum is held by several cells sends its whole gradient to the **first** of them
in row-major window order (rows top to bottom, each left to right).

Inputs are built so that the rule matters: 2x2 windows tied along a row, a column, a diagonal
and an anti-diagonal (row-major and column-major order disagree on the last two), all four cells
tied, and overlapping 3x3 stride-1 windows over an all-equal map. The upstream gradient has
distinct entries, so a gradient sent to the wrong cell cannot go unnoticed. Then the whole
network: a conv layer with zero kernels makes every pool window a tie, and the backends'
gradients must still equal the reference's.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import layout
from nnparity.parity import cases
from nnparity.parity.runner import run_case
from nnparity.reference import CNNSpec, ConvBlock
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import init_params
from nnparity.reference.pool import maxpool2d, maxpool2d_backward

DTYPES = ("float64", "float32")


def tied_map() -> np.ndarray:
    """``[1, 4, 6, 1]``: six 2x2 windows, each with a tie for its maximum, as one NHWC map.

    Windows (0, 0..2): a row tie, a column tie, an anti-diagonal tie; windows (1, 0..2): a
    diagonal tie, an anti-diagonal tie, all four cells tied."""
    return np.array([
        [5, 5, 1, 7, 2, 3],
        [0, 1, 2, 7, 3, 2],
        [4, 0, 0, 6, 9, 9],
        [1, 4, 6, 0, 9, 9],
    ], dtype=np.float64).reshape(1, 4, 6, 1)


CASES = {
    "2x2-windows": (tied_map(), 2, 2, "VALID"),
    "2x2-same-odd-map": (np.ones((2, 3, 5, 2)), 2, 2, "SAME"),
    "3x3-overlapping": (np.full((1, 5, 5, 2), 0.5), 3, 1, "VALID"),
}


def _upstream(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return (1.0 + np.arange(np.prod(shape)).reshape(shape)).astype(dtype)


def torch_pool_gradient(x: np.ndarray, k: int, s: int, padding: str,
                        dy: np.ndarray) -> np.ndarray:
    """``dL/dx`` of ``F.max_pool2d`` (after TensorFlow's SAME pad of ``-inf``) on NCHW."""
    import torch
    import torch.nn.functional as F

    from nnparity.reference.conv import padding_amounts

    (top, bottom), (left, right) = padding_amounts(x.shape[1:3], (k, k), s, padding)
    t = torch.tensor(layout.nhwc_to_nchw(x), requires_grad=True)
    y = F.max_pool2d(F.pad(t, (left, right, top, bottom), value=-np.inf), k, s)
    y.backward(torch.from_numpy(layout.nhwc_to_nchw(dy)))
    return layout.nchw_to_nhwc(t.grad.numpy())


def tensorflow_pool_gradient(x: np.ndarray, k: int, s: int, padding: str,
                             dy: np.ndarray) -> np.ndarray:
    """``dL/dx`` of ``tf.nn.max_pool2d`` on NHWC (TensorFlow's own SAME)."""
    import tensorflow as tf

    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = tf.nn.max_pool2d(t, k, s, padding)
    return tape.gradient(y, t, output_gradients=tf.constant(dy)).numpy()


def jax_pool_gradient(x: np.ndarray, k: int, s: int, padding: str,
                      dy: np.ndarray) -> np.ndarray:
    """``dL/dx`` of ``lax.reduce_window`` max on NHWC (JAX's own SAME), by ``jax.vjp``."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    with jax.enable_x64(True):
        _, pullback = jax.vjp(lambda t: lax.reduce_window(t, -jnp.inf, lax.max, (1, k, k, 1),
                                                          (1, s, s, 1), padding), jnp.asarray(x))
        return np.asarray(pullback(jnp.asarray(dy))[0])


FRAMEWORKS = {
    "torch": pytest.param(torch_pool_gradient, marks=pytest.mark.torch, id="torch"),
    "tensorflow": pytest.param(tensorflow_pool_gradient, marks=pytest.mark.tensorflow,
                               id="tensorflow"),
    "jax": pytest.param(jax_pool_gradient, marks=pytest.mark.jax, id="jax"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
@pytest.mark.parametrize("framework", FRAMEWORKS.values())
def test_tied_maxima_follow_the_documented_rule(framework, case, dtype: str) -> None:
    x, k, s, padding = case
    x = x.astype(dtype)
    y = maxpool2d(x, k, s, padding)
    dy = _upstream(y.shape, dtype)
    expected = maxpool2d_backward(dy, x, k, s, padding)
    np.testing.assert_array_equal(framework(x, k, s, padding, dy), expected)


def test_the_rule_on_the_tied_map() -> None:
    """The rule itself, spelled out cell by cell on :func:`tied_map` (upstream 1..6)."""
    x = tied_map()
    dx = maxpool2d_backward(_upstream((1, 2, 3, 1), "float64"), x, 2, 2, "VALID")[0, :, :, 0]
    expected = np.zeros((4, 6))
    # first maximum in row-major order of each window, receiving that window's upstream value
    # (column-major order would pick (1, 4) and (3, 2) in the two anti-diagonal windows)
    for (row, col), value in {(0, 0): 1, (0, 3): 2, (0, 5): 3, (2, 0): 4, (2, 3): 5,
                              (2, 4): 6}.items():
        expected[row, col] = value
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_tied_pools_in_the_whole_network(backend, backend_name, assert_parity,
                                            dtype: str) -> None:
    """Zero conv kernels: every conv output is its bias, every pool window a tie; the conv1
    kernel gradient then depends on which tied cell gets the gradient."""
    spec = CNNSpec.tiny(dtype, input_shape=(9, 8, 2), conv=(ConvBlock(3, 3), ConvBlock(4, 3)))
    params = init_params(spec, seed=4)
    params["conv2.W"][:] = 0
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, *spec.input_shape)).astype(dtype)
    y, mask = rng.integers(0, 3, 3), draw_dropout_mask(spec, 3, rng)
    case = cases.Case("all-tied-pools", spec, batch=3, architecture="cnn", steps=0,
                      dropout_mask=mask, given=(params, (x, y)))
    assert_parity(run_case(case, backend, name=backend_name))
