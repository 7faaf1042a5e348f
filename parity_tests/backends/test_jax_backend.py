"""What makes the jax backend idiomatic JAX, and its scoping of float64 (its parity with the
reference is in ``test_parity_conventions.py`` and the parity matrix, once for every backend)."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import SAME_OPS_FLOAT64
from nnparity.reference import MLPSpec, Optimizer, init_params
from nnparity.reference.cnn_spec import CNNSpec
from nnparity.reference.optim import init_state
from nnparity.reference.train import NumpyTrainer

pytestmark = pytest.mark.jax


@pytest.fixture(scope="module")
def jax_backend():
    return registry.get("jax")


def _batch(spec: MLPSpec, n: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, spec.input_dim)), rng.integers(0, spec.output_dim, n)


def test_float64_is_scoped_to_the_backends_calls(jax_backend) -> None:
    """A float64 check runs in float64 (it matches the reference to 1e-13), and afterwards the
    caller's JAX is still float32: its arrays, its defaults, its config."""
    import jax
    import jax.numpy as jnp

    before = jnp.ones(3)
    spec = MLPSpec(3, (5, 3), ("tanh", "identity"), "ce")
    params, (x, y) = init_params(spec, seed=1), _batch(spec)
    grads = jax_backend.gradients(spec, params, x, y)
    expected = registry.get("numpy").gradients(spec, params, x, y)
    assert grads.grads["W1"].dtype == np.float64
    np.testing.assert_allclose(grads.grads["W1"], expected.grads["W1"], rtol=0,
                               atol=SAME_OPS_FLOAT64)
    trainer = jax_backend.trainer(spec, params, Optimizer("adam"))
    trainer.step(x, y)
    assert trainer.params()["W1"].dtype == np.float64
    assert not jax.config.jax_enable_x64
    assert before.dtype == jnp.float32
    assert jnp.ones(3).dtype == jnp.float32
    assert jnp.asarray(np.zeros(2)).dtype == jnp.float32
    assert jnp.array(1.5).dtype == jnp.float32


def test_float32_results_are_float32(jax_backend) -> None:
    spec = MLPSpec(3, (5, 3), ("relu", "identity"), "ce", dtype="float32")
    params, (x, y) = init_params(spec, seed=2), _batch(spec)
    grads = jax_backend.gradients(spec, params, x, y)
    trace = jax_backend.forward(spec, params, x)
    trainer = jax_backend.trainer(spec, params, Optimizer("adam"))
    trainer.step(x, y)
    arrays = [*grads.grads.values(), *grads.deltas.values(), *trace.z.values(),
              *trainer.params().values(), *trainer.state().values()]
    assert {a.dtype for a in arrays} - {np.dtype("int64")} == {np.dtype("float32")}


def test_keras_variant_is_refused(jax_backend) -> None:
    spec = MLPSpec(2, (2,), ("identity",), "l2")
    params = init_params(spec)
    for name in ("sgd", "momentum", "adam"):
        with pytest.raises(ValueError, match="'torch' variant"):
            jax_backend.trainer(spec, params, Optimizer(name, variant="keras"))
    assert jax_backend.optimizer_variant == "torch"


@pytest.mark.parametrize(("name", "l2"), [("sgd", 0.0), ("momentum", 0.0), ("adam", 0.0),
                                          ("momentum", 0.01), ("adam", 0.01)])
def test_optimizer_state_round_trips_and_resumes(jax_backend, name: str, l2: float) -> None:
    """State in the reference's flat format goes into optax and comes back unchanged; a trainer
    resumed from ``params()``/``state()`` continues exactly like one that never stopped."""
    spec = MLPSpec(3, (4, 3), ("sigmoid", "identity"), "ce", "mean", weight_decay=1e-3)
    params, optimizer = init_params(spec, seed=3), Optimizer(name, lr=0.05, l2=l2)
    batches = [_batch(spec, seed=s) for s in range(3)]
    reference = NumpyTrainer(spec, params, optimizer)
    reference.step(*batches[0])
    state = reference.state()
    resumed = jax_backend.trainer(spec, reference.params(), optimizer, state)
    assert list(resumed.state()) == list(state)
    for key, value in state.items():
        np.testing.assert_array_equal(resumed.state()[key], value)
    straight = jax_backend.trainer(spec, params, optimizer)
    straight.step(*batches[0])
    for x, y in batches[1:]:
        resumed.step(x, y)
        straight.step(x, y)
    for key, value in straight.params().items():
        np.testing.assert_allclose(resumed.params()[key], value, rtol=0, atol=SAME_OPS_FLOAT64)
    assert list(straight.state()) == list(init_state(optimizer, params))


def test_one_compilation_per_spec_serves_forward_gradients_and_steps(jax_backend) -> None:
    from nnparity.backends import jax_backend as jb

    spec = CNNSpec.tiny(dense=(5,))
    params, rng = init_params(spec, seed=4), np.random.default_rng(4)
    x, y = rng.uniform(size=(2, *spec.input_shape)), rng.integers(0, 3, 2)
    mask = (rng.uniform(size=(2, spec.dropout_units)) < 0.5).astype(float)
    compiled = jb.evaluate._cache_size()
    jax_backend.forward(spec, params, x, dropout_mask=mask)
    jax_backend.gradients(spec, params, x, y, dropout_mask=mask)
    trainer = jax_backend.trainer(spec, params, Optimizer("adam"))
    for _ in range(3):
        trainer.step(x, y)
    assert jb.evaluate._cache_size() == compiled + 1


def test_jax_leaky_relu_has_slope_one_at_zero() -> None:
    """Why the backend writes leaky relu itself: ``jax.nn.leaky_relu`` is
    ``where(x >= 0, x, slope x)``, so its derivative at 0 is 1; the convention is the slope."""
    import jax

    from nnparity.backends.jax_layers import ACTIVATIONS

    assert float(jax.grad(jax.nn.leaky_relu)(0.0)) == 1.0
    assert float(jax.grad(ACTIVATIONS["leaky_relu"])(0.0)) == pytest.approx(0.01)
    assert float(jax.grad(ACTIVATIONS["relu"])(0.0)) == 0.0


def test_optax_adam_bias_correction_is_float32_without_x64() -> None:
    """Why float32 specs run with x64 on too: without it optax computes ``1 - b2^t`` as a float32
    power (``1 - float32(0.999)`` is 1.3e-5 relative off); with it, in float64 as torch does,
    while every array stays float32."""
    import jax
    import jax.numpy as jnp
    import optax

    g = jnp.full((3,), 1e-2, jnp.float32)
    exact = 1e-2 / (np.sqrt(1e-4) + 1e-3)  # one Adam step with lr 1: m_hat / (sqrt(v_hat) + eps)

    def first_step() -> float:
        tx = optax.adam(1.0, eps=1e-3)
        updates, _ = tx.update(g, tx.init(g))
        assert updates.dtype == jnp.float32
        return float(-updates[0])

    with jax.enable_x64(False):
        off = abs(first_step() - exact) / exact
    with jax.enable_x64(True):
        on = abs(first_step() - exact) / exact
    assert off > 4e-6 and on < 1e-6


# --- the layout traps, in JAX -------------------------------------------------------------------


@pytest.mark.parametrize(("size", "kernel", "stride"), [(8, 3, 2), (8, 4, 1), (9, 2, 2), (8, 5, 2)])
def test_lax_same_padding_is_tensorflows_rule(size: int, kernel: int, stride: int) -> None:
    """``lax``'s ``"SAME"`` pads as TensorFlow does (the odd pixel bottom/right), so the backend
    passes the string; a symmetric ``k // 2`` pad shifts every window or changes the shape."""
    import jax
    from jax import lax

    from nnparity.backends.jax_layers import DIMENSIONS
    from nnparity.reference.conv import conv2d, padding_amounts

    pads = padding_amounts((size, size), (kernel, kernel), stride, "SAME")
    assert pads[0][0] != pads[0][1]  # asymmetric
    assert [tuple(p) for p in lax.padtype_to_pads((size, size), (kernel, kernel),
                                                  (stride, stride), "SAME")] == list(pads)
    rng = np.random.default_rng(kernel)
    x, k = rng.standard_normal((2, size, size, 3)), rng.standard_normal((kernel, kernel, 3, 2))
    expected = conv2d(x, k, None, stride, "SAME")
    with jax.enable_x64(True):
        same = np.asarray(lax.conv_general_dilated(x, k, (stride, stride), "SAME",
                                                   dimension_numbers=DIMENSIONS))
        half = kernel // 2
        symmetric = np.asarray(lax.conv_general_dilated(x, k, (stride, stride),
                                                        [(half, half)] * 2,
                                                        dimension_numbers=DIMENSIONS))
    np.testing.assert_allclose(same, expected, rtol=0, atol=SAME_OPS_FLOAT64)
    assert symmetric.shape != expected.shape or np.abs(symmetric - expected).max() > 0.05


def test_reduce_window_same_pads_with_minus_infinity_bottom_right() -> None:
    """A 2x2/2 SAME max-pool on a 9x8 map of negative numbers: one padded row at the bottom,
    holding ``-inf`` (a zero pad would win every window of the last row)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from nnparity.reference.pool import maxpool2d

    x = -1.0 - np.random.default_rng(9).uniform(size=(2, 9, 8, 3))
    with jax.enable_x64(True):
        pooled = np.asarray(lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                              "SAME"))
    np.testing.assert_array_equal(pooled, maxpool2d(x, 2, 2, "SAME"))
    assert pooled.shape == (2, 5, 4, 3) and (pooled[:, -1] < 0).all()
