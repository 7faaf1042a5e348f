"""Finite differences along random directions (``gradcheck(..., directions=K)``): what the
``numpy`` row of ``nnparity check`` runs on tensors of more than 50 entries."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import GRADCHECK_TOLERANCE
from nnparity.reference.gradcheck import gradcheck

STEP = 1e-6


def _problem(n: int, low: float, high: float) -> tuple[dict, dict, object]:
    """``L(w) = sum c_i sin(w_i)`` on ``w ~ U(low, high)``: its gradient and the loss."""
    rng = np.random.default_rng(1)
    params = {"w": rng.uniform(low, high, n)}
    c = rng.standard_normal(n)
    return params, {"w": np.cos(params["w"]) * c}, lambda p: float(np.sin(p["w"]) @ c)


def test_a_big_tensor_is_checked_along_directions_and_a_small_one_entry_by_entry():
    params, grads, loss = _problem(5000, -1, 1)
    small = {"v": np.linspace(-1, 1, 7)}
    params, grads = {**params, **small}, {**grads, "v": np.cos(small["v"])}

    def both(p: dict) -> float:
        return loss(p) + float(np.sum(np.sin(p["v"])))

    big, little = gradcheck(both, params, grads, step=STEP, max_entries=50, directions=4)
    assert (big.directional, big.checked, big.total) == (True, 4, 5000)
    assert (little.directional, little.checked, little.total) == (False, 7, 7)
    assert big.max_rel <= GRADCHECK_TOLERANCE and little.max_rel <= GRADCHECK_TOLERANCE


@pytest.mark.parametrize("wrong", [0, 1234, 4999])
def test_one_wrong_entry_anywhere_fails_the_directions(wrong):
    """A sample of 50 entries out of 5,000 sees one wrong entry with probability 1 %; every
    direction goes through it."""
    params, grads, loss = _problem(5000, -1, 1)
    grads["w"][wrong] *= 1.5
    (check,) = gradcheck(loss, params, grads, step=STEP, max_entries=50, directions=4)
    assert check.max_rel > 100 * GRADCHECK_TOLERANCE


def test_the_direction_applied_absorbs_the_rounding_of_large_parameters():
    """``w ~ U(500, 1000)``: ``fl(w + o h u) - w`` differs from ``o h u`` by up to
    ``eps |w|`` per entry, 2e-7 of ``h``; through 2,000 entries that moves the directional
    derivative by about 3e-6 relative. It is compared along the direction actually applied."""
    params, grads, loss = _problem(2000, 500, 1000)
    (check,) = gradcheck(loss, params, grads, step=STEP, max_entries=50, directions=4)
    unit = np.random.default_rng(0).standard_normal((4, 2000))  # the directions drawn (seed 0)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    assert np.max(np.abs(check.numeric - unit @ grads["w"])) > 10 * GRADCHECK_TOLERANCE
    assert check.max_rel <= GRADCHECK_TOLERANCE

