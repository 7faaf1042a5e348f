"""Edge cases, each its own test, on every installed framework backend (``backend_name`` fixture
of ``conftest.py``: a missing framework is skipped with the registry's reason).

Each test first asserts its precondition on the reference (the edge really is hit), then runs
the full parity comparison (forward, loss, deltas, gradients, 1 and 3 lockstep steps).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nnparity import parity as runner
from nnparity.backends import registry
from nnparity.backends.compare import collect, compare_all, describe_divergence, tolerance
from nnparity.reference import MLPSpec, Optimizer, forward, gradients, init_params

DTYPES = ("float64", "float32")


def _assert_parity(name: str, spec: MLPSpec, params: dict[str, np.ndarray],
                   batches: list[tuple[np.ndarray, np.ndarray]], optimizer: str = "sgd",
                   lr: float = 0.01) -> None:
    comparisons = runner.compare_backend(
        registry.get(name), spec, params, batches,
        lambda variant: Optimizer(optimizer, lr=lr, variant=variant))
    assert all(c.passed for c in comparisons), f"{name}: {describe_divergence(comparisons)}"


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([20260, *key])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_pre_activations_exactly_zero(backend_name: str, dtype: str) -> None:
    spec = MLPSpec(3, (4, 3), ("relu", "identity"), loss="ce", dtype=dtype)
    params = init_params(spec, "xavier", 1)
    params["W1"][:, 0] = 0  # unit 1 sees nothing...
    params["b1"][:] = np.array([[0.0, 0.5, -0.5, 0.0]], dtype=dtype)  # ...and has no bias
    x = _rng(1).standard_normal((4, 3)).astype(dtype)
    x[2] = 0  # row 3: z = b1, so units 1 and 4 are exactly 0
    y = np.array([0, 1, 2, 1])
    z = forward(spec, params, x).z["layer1"]
    zero = z == 0
    assert zero[:, 0].all() and zero[2, 3]  # precondition
    deltas = registry.get(backend_name).gradients(spec, params, x, y).deltas["layer1"]
    assert np.all(deltas[zero] == 0), "relu'(0) must be 0 (ARCHITECTURE.md, edge conventions)"
    _assert_parity(backend_name, spec, params, [(x, y)] * 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturated_sigmoid(backend_name: str, dtype: str) -> None:
    spec = MLPSpec(3, (6, 2), ("sigmoid", "identity"), loss="ce", dtype=dtype)
    params = init_params(spec, "xavier", 2)
    params["W1"] = (params["W1"] * 40).astype(dtype)
    # Unit 1 stays in the linear range: in float32, h (1 - h) of a *nearly* saturated unit
    # (z ~ 8) loses digits to cancellation in 1 - h, and a delta tensor made only of such
    # units would measure that rounding (TensorFlow's sigmoid differs from NumPy's by an ulp).
    params["W1"][:, 0] /= 400
    x = _rng(2).standard_normal((5, 3)).astype(dtype) * 3
    y = np.array([0, 1, 1, 0, 1])
    z = forward(spec, params, x).z["layer1"]
    assert (np.abs(z) > 40).sum() >= 3  # precondition: several units saturated either way
    result = registry.get(backend_name).gradients(spec, params, x, y)
    assert all(np.all(np.isfinite(g)) for g in result.grads.values())
    _assert_parity(backend_name, spec, params, [(x, y)] * 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_logits_of_magnitude_1e3(backend_name: str, dtype: str) -> None:
    spec = MLPSpec(4, (3,), ("identity",), loss="ce", reduction="mean", dtype=dtype)
    params = init_params(spec, "xavier", 3)
    params["W1"] = (params["W1"] * 1500).astype(dtype)
    x = _rng(3).standard_normal((6, 4)).astype(dtype)
    y = np.array([0, 1, 2, 2, 1, 0])
    logits = forward(spec, params, x).output
    assert np.abs(logits).max() > 1e3  # precondition
    result = registry.get(backend_name).gradients(spec, params, x, y)
    assert np.isfinite(result.loss) and result.loss > 100  # log-sum-exp, no overflow to inf
    _assert_parity(backend_name, spec, params, [(x, y)] * 3, lr=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_labels_as_indices_or_one_hot(backend_name: str, dtype: str) -> None:
    spec = MLPSpec(4, (5, 3), ("tanh", "identity"), loss="ce", dtype=dtype)
    params = init_params(spec, "xavier", 4)
    x = _rng(4).standard_normal((6, 4)).astype(dtype)
    indices = np.array([2, 0, 1, 1, 2, 0])
    one_hot = np.eye(3, dtype=dtype)[indices]
    ref_idx, ref_hot = gradients(spec, params, x, indices), gradients(spec, params, x, one_hot)
    assert ref_idx.loss == ref_hot.loss
    assert all(np.array_equal(ref_idx.grads[k], ref_hot.grads[k]) for k in ref_idx.grads)
    backend = registry.get(backend_name)
    by_index = collect(gradients=backend.gradients(spec, params, x, indices))
    by_one_hot = collect(gradients=backend.gradients(spec, params, x, one_hot))
    comparisons = compare_all(by_one_hot, by_index, tolerance(dtype))
    assert all(c.passed for c in comparisons), describe_divergence(comparisons)
    _assert_parity(backend_name, spec, params, [(x, indices)] * 2)
    _assert_parity(backend_name, spec, params, [(x, one_hot)] * 2)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("loss", ["ce", "l2"])
def test_batch_of_one(backend_name: str, loss: str, reduction: str) -> None:
    spec = MLPSpec(4, (5, 3), ("sigmoid", "identity"), loss=loss, reduction=reduction)
    params = init_params(spec, "xavier", 5)
    rng = _rng(5)
    y: Any = [np.array([k % 3]) if loss == "ce" else np.eye(3)[[k % 3]] for k in range(3)]
    batches = [(rng.standard_normal((1, 4)), y[k]) for k in range(3)]
    trace = forward(spec, params, batches[0][0])
    assert trace.output.shape == (1, 3) and trace.z["layer1"].shape == (1, 5)
    _assert_parity(backend_name, spec, params, batches, optimizer="adam", lr=1e-2)
