"""Edge cases, each its own test, on every installed framework backend (``backend_name`` fixture
of ``conftest.py``: a missing framework is skipped with the registry's reason).

The cases are :func:`nnparity.parity.cases.edge_lockstep_cases`. Each test first asserts its
precondition on the reference (the edge really is hit), then runs the full parity comparison
(forward, loss, deltas, gradients, lockstep steps) through the CLI's runner.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import collect, compare_all, describe_divergence, tolerance
from nnparity.parity import cases
from nnparity.parity.runner import run_case
from nnparity.reference import forward, gradients

DTYPES = ("float64", "float32")


def _case(name: str, dtype: str = "float64") -> cases.Case:
    return cases.edge_lockstep_cases(dtype)[name]


def _assert_parity(backend_name: str, case: cases.Case) -> None:
    result = run_case(case, registry.get(backend_name), name=backend_name)
    assert result.error is None, result.error
    assert result.passed, f"{backend_name}: {describe_divergence(result.comparisons)}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_pre_activations_exactly_zero(backend_name: str, dtype: str) -> None:
    case = _case("relu-units-at-0", dtype)
    (x, y), params = case.batches()[0], case.params()
    z = forward(case.spec, params, x).z["layer1"]
    zero = z == 0
    assert zero[:, 0].all() and zero[2, 3]  # precondition
    deltas = registry.get(backend_name).gradients(case.spec, params, x, y).deltas["layer1"]
    assert np.all(deltas[zero] == 0), "relu'(0) must be 0 (ARCHITECTURE.md, edge conventions)"
    _assert_parity(backend_name, case)


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturated_sigmoid(backend_name: str, dtype: str) -> None:
    case = _case("sigmoid-saturated", dtype)
    (x, y), params = case.batches()[0], case.params()
    z = forward(case.spec, params, x).z["layer1"]
    assert (np.abs(z) > 40).sum() >= 3  # precondition: several units saturated either way
    result = registry.get(backend_name).gradients(case.spec, params, x, y)
    assert all(np.all(np.isfinite(g)) for g in result.grads.values())
    _assert_parity(backend_name, case)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_logits_of_magnitude_1e3(backend_name: str, dtype: str) -> None:
    case = _case("ce-logits-1e3", dtype)
    (x, y), params = case.batches()[0], case.params()
    logits = forward(case.spec, params, x).output
    assert np.abs(logits).max() > 1e3  # precondition
    result = registry.get(backend_name).gradients(case.spec, params, x, y)
    assert np.isfinite(result.loss) and result.loss > 100  # log-sum-exp, no overflow to inf
    _assert_parity(backend_name, case)


@pytest.mark.parametrize("dtype", DTYPES)
def test_labels_as_indices_or_one_hot(backend_name: str, dtype: str) -> None:
    by_index, by_one_hot = _case("labels-indices", dtype), _case("labels-one-hot", dtype)
    spec, params = by_index.spec, by_index.params()
    (x, indices), (x_hot, one_hot) = by_index.batches()[0], by_one_hot.batches()[0]
    assert np.array_equal(x, x_hot) and np.array_equal(np.eye(3)[indices], one_hot)
    assert all(np.array_equal(params[k], v) for k, v in by_one_hot.params().items())
    ref_idx, ref_hot = gradients(spec, params, x, indices), gradients(spec, params, x, one_hot)
    assert ref_idx.loss == ref_hot.loss
    assert all(np.array_equal(ref_idx.grads[k], ref_hot.grads[k]) for k in ref_idx.grads)
    backend = registry.get(backend_name)
    runs = [collect(gradients=backend.gradients(spec, params, x, y)) for y in (one_hot, indices)]
    comparisons = compare_all(*runs, tolerance(dtype))
    assert all(c.passed for c in comparisons), describe_divergence(comparisons)
    _assert_parity(backend_name, by_index)
    _assert_parity(backend_name, by_one_hot)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("loss", ["ce", "l2"])
def test_batch_of_one(backend_name: str, loss: str, reduction: str) -> None:
    case = _case(f"batch-of-one-{loss}-{reduction}")
    batches = case.batches()
    assert len(batches) == cases.EDGE_STEPS and all(len(x) == 1 for x, _ in batches)
    trace = forward(case.spec, case.params(), batches[0][0])
    assert trace.output.shape == (1, 3) and trace.z["layer1"].shape == (1, 5)
    _assert_parity(backend_name, case)
