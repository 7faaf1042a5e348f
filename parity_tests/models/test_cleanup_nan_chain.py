"""A model with NaN weights is still a chain: the Keras and Flax chain checks (replaying the
layers one after another must give ``model(x)``) compare with ``equal_nan=True`` on purpose, so
that such a model is judged, and fails as non-finite, rather than refused as "not a chain". The
check is structural, never a verdict: no tensor holding a NaN passes."""

from __future__ import annotations

import numpy as np
import pytest

import nnparity


def _assert_judged_and_failed_as_non_finite(report) -> None:
    comparisons = report.results[0].comparisons
    assert not report.ok
    assert any("non-finite: NaN" in c.note for c in comparisons)
    assert not any(c.passed for c in comparisons if "non-finite" in c.note)
    assert not any(c.passed for c in comparisons if c.stage in ("loss", "delta", "grad"))


@pytest.mark.tensorflow
def test_a_keras_chain_with_nan_weights_is_judged_and_fails():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                              keras.layers.Dense(2)])
    kernel = model.layers[0].kernel
    kernel.assign(np.full(kernel.shape, np.nan, kernel.dtype))
    _assert_judged_and_failed_as_non_finite(nnparity.check_model(model, loss="ce"))


def test_a_flax_chain_with_nan_weights_is_judged_and_fails():
    nnx = pytest.importorskip("flax.nnx", reason="flax is not installed: pip install "
                              "nnparity[all]")
    jnp = pytest.importorskip("jax").numpy
    model = nnx.Sequential(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), nnx.tanh,
                           nnx.Linear(3, 2, rngs=nnx.Rngs(1)))
    model.layers[0].kernel[...] = jnp.full((4, 3), jnp.nan)
    _assert_judged_and_failed_as_non_finite(nnparity.check_model(model, loss="ce"))
