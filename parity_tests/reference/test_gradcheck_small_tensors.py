"""The ``numpy`` row's finite differences on small tensors: past ``GRADCHECK_ENTRIES`` (4)
entries a tensor is checked along ``GRADCHECK_DIRECTIONS`` random directions, which takes fewer
loss evaluations than entry by entry, and a wrong entry of a bias-sized tensor still fails."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import GRADCHECK_TOLERANCE
from nnparity.parity import runner
from nnparity.reference.family import init_params
from nnparity.reference.gradcheck import gradcheck
from nnparity.reference.spec import MLPSpec


def _problem(n: int) -> tuple[dict, dict, object]:
    """``L(w) = sum c_i sin(w_i)``: its parameters, gradient and loss."""
    rng = np.random.default_rng(3)
    params = {"b": rng.uniform(-1, 1, n)}
    c = rng.standard_normal(n)
    return params, {"b": np.cos(params["b"]) * c}, lambda p: float(np.sin(p["b"]) @ c)


def _check(loss, params, grads):
    (check,) = gradcheck(loss, params, grads, step=runner.GRADCHECK_STEP,
                         max_entries=runner.GRADCHECK_ENTRIES,
                         directions=runner.GRADCHECK_DIRECTIONS)
    return check


@pytest.mark.parametrize("n", [5, 10, 32, 64])
def test_a_bias_sized_tensor_passes_along_directions(n):
    params, grads, loss = _problem(n)
    check = _check(loss, params, grads)
    assert (check.directional, check.checked) == (True, runner.GRADCHECK_DIRECTIONS)
    assert check.max_rel <= GRADCHECK_TOLERANCE


@pytest.mark.parametrize("n", [5, 10, 32])
def test_one_wrong_entry_of_a_bias_sized_tensor_fails(n):
    params, grads, loss = _problem(n)
    for wrong in range(n):
        bad = {"b": grads["b"].copy()}
        bad["b"][wrong] *= 1.5
        assert _check(loss, params, bad).max_rel > 100 * GRADCHECK_TOLERANCE, wrong


def test_at_most_four_entries_are_checked_one_by_one():
    params, grads, loss = _problem(runner.GRADCHECK_ENTRIES)
    check = _check(loss, params, grads)
    assert (check.directional, check.checked) == (False, runner.GRADCHECK_ENTRIES)


def test_the_numpy_row_evaluates_the_loss_four_times_a_direction(monkeypatch):
    """A [3-8-2] MLP (four tensors: 24, 8, 16 and 2 entries): 3 x 16 evaluations along
    directions and 2 x 4 for the two-entry bias, where entry by entry took 200."""
    spec = MLPSpec(input_dim=3, layers=(8, 2), activations=("tanh", "identity"),
                   dtype="float64")
    params = init_params(spec, None, 0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)), np.eye(2)[[0, 1, 1, 0]]
    calls = []
    original = runner.network.loss
    monkeypatch.setattr(runner.network, "loss",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    comparisons = runner.gradcheck_comparisons(spec, params, x, y)
    assert len(comparisons) == 4 and all(c.passed for c in comparisons)
    assert len(calls) == 3 * 16 + 2 * 4
