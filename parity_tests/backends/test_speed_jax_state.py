"""The JAX backend's speed-ups keep its values: the optimiser's zero state made without
compiling, and inputs moved to the device as copies."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax", reason="jax is not installed")
pytest.importorskip("optax", reason="optax is not installed")

import jax

from nnparity.backends.jax_backend import initial_state, scope, transformation
from nnparity.backends.jax_layers import on_device
from nnparity.reference.optim import Optimizer

OPTIMIZERS = [Optimizer("sgd"), Optimizer("sgd", l2=1e-3), Optimizer("momentum"),
              Optimizer("momentum", l2=1e-3), Optimizer("adam"), Optimizer("adam", l2=1e-3),
              Optimizer("adamw")]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: f"{o.name}-l2{o.l2}")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_zero_state_is_what_optax_init_makes(optimizer, dtype):
    with scope():
        params = {"W": on_device(np.ones((3, 2)), dtype), "b": on_device(np.ones(2), dtype)}
        made, expected = initial_state(optimizer, params), transformation(optimizer).init(params)
        assert jax.tree.structure(made) == jax.tree.structure(expected)
        for ours, theirs in zip(jax.tree.leaves(made), jax.tree.leaves(expected), strict=True):
            assert (ours.shape, ours.dtype) == (theirs.shape, theirs.dtype)
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_on_device_copies_and_converts():
    source = np.arange(6, dtype=np.float64).reshape(2, 3)
    with scope():
        moved = on_device(source, np.float32)
        kept = on_device(source)
    source[0, 0] = 99.0
    assert moved.dtype == np.float32 and kept.dtype == np.float64
    assert float(kept[0, 0]) == 0.0 and float(moved[0, 0]) == 0.0
