"""Units at a kink (relu at z = 0 within rounding) and max-pool ties: counted, the tensors after
them judged by the reference re-run with the backend's side, and a real bug next to them still
failing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nnparity.backends.numpy_backend import NumpyBackend
from nnparity.parity import cases
from nnparity.parity.runner import run_case
from nnparity.reference import MLPSpec, network
from nnparity.reference.cnn_spec import CNNSpec
from nnparity.reference.family import init_params
from nnparity.reference.kinks import KINK_C, kink_units, tie_units
from nnparity.reference.optim import init_state, step
from nnparity.reference.results import Gradients, Trace

SPEC = MLPSpec(2, (3, 2), ("relu", "identity"), "ce")
X = np.array([[0.0, 0.0], [1.0, 2.0], [-2.0, 1.0]])  # row 0: z1 = 0 exactly (b1 = 0)
Y = np.array([0, 1, 1])


def _params() -> dict[str, np.ndarray]:
    params = init_params(SPEC, "seed004", seed=3)
    params["b1"] = np.zeros((1, 3))
    return params


CASE = cases.Case("kink-row", SPEC, batch=3, architecture="edge", steps=0,
                  given=(_params(), (X, Y)), at_kink=True)


class OtherSide(NumpyBackend):
    """The reference, but rounding put row 0's ``z1`` just above 0 (``1e-17``), as another
    summation order can: relu'(z1) = 1 there instead of 0. ``bug`` scales the delta of
    ``layer1`` on the rows away from the kink (a real bug)."""

    name = "other-side"

    def __init__(self, bug: float = 1.0) -> None:
        self.bug = bug

    def forward(self, spec: Any, params: Any, x: np.ndarray, **kwargs: Any) -> Trace:
        trace = super().forward(spec, params, x, **kwargs)
        z = trace.z["layer1"].copy()
        z[0] = 1e-17
        trace.z["layer1"], trace.h["layer1"] = z, np.maximum(z, 0)
        return trace

    def gradients(self, spec: Any, params: Any, x: np.ndarray, y: np.ndarray,
                  **kwargs: Any) -> Gradients:
        model = network
        result = model.backward(spec, params, x, self.forward(spec, params, x), y)
        result.deltas["layer1"][1:] *= self.bug
        return result


def test_units_at_a_kink_are_those_within_the_rounding_bound():
    trace = network.forward(SPEC, _params(), X)
    units = kink_units(SPEC, _params(), X, trace)
    assert list(units) == ["layer1"]
    assert units["layer1"][0].all() and not units["layer1"][1:].any()
    assert KINK_C == 16.0


def test_the_other_one_sided_derivative_at_a_kink_passes_with_the_count():
    result = run_case(CASE, OtherSide(), name="other-side")
    assert result.passed, result.divergence
    kinked = [c for c in result.comparisons if c.note]
    assert kinked and all(c.note == "at a kink: 3 units" for c in kinked)
    assert {c.label for c in kinked} == {"delta layer1", "grad b1"}  # x = 0 there: dW1 agrees
    assert result.notes == ["tensors after units at a kink judged by the reference with the "
                            "backend's side there"]


@pytest.mark.parametrize("bug", [1.3, 1.0 + 1e-6])
def test_a_real_bug_next_to_a_kink_still_fails(bug):
    result = run_case(CASE, OtherSide(bug), name="other-side")
    assert not result.passed
    assert result.divergence.startswith("forward and loss match; delta of layer1 differs")


class OtherSideSteps(OtherSide):
    """:class:`OtherSide` that also trains: its SGD steps use its own (kink-side) gradients;
    ``step_bug`` scales the first update (a real bug in the optimiser)."""

    def __init__(self, bug: float = 1.0, step_bug: float = 1.0) -> None:
        super().__init__(bug)
        self.step_bug = step_bug

    def trainer(self, spec: Any, params: Any, optimizer: Any, state: Any = None,
                dropout_seed: int = 0) -> Any:
        backend = self

        class Trainer:
            def __init__(self) -> None:
                self.p, self.s = dict(params), init_state(optimizer, params)

            def step(self, x: np.ndarray, y: np.ndarray, dropout_mask: Any = None) -> float:
                g = backend.gradients(spec, self.p, x, y)
                scaled = {k: v * backend.step_bug for k, v in g.grads.items()}
                self.p, self.s = step(optimizer, self.p, scaled, self.s)
                return g.loss

            def params(self) -> dict[str, np.ndarray]:
                return dict(self.p)

            def state(self) -> dict[str, np.ndarray]:
                return dict(self.s)
        return Trainer()


STEP_CASE = cases.Case("kink-row-step", SPEC, lr=0.1, batch=3, architecture="edge", steps=1,
                       given=(_params(), (X, Y)), at_kink=True)


def test_an_update_after_a_kink_is_judged_by_the_references_step_from_the_backends_side():
    result = run_case(STEP_CASE, OtherSideSteps(), name="other-side")
    assert result.passed, result.divergence
    stepped = {c.label: c.note for c in result.comparisons if c.stage == "update" and c.note}
    assert stepped == {"update step1.b1": "at a kink: 3 units (step 1 from the backend's side)"}


def test_a_wrong_update_after_a_kink_still_fails():
    result = run_case(STEP_CASE, OtherSideSteps(step_bug=1.01), name="other-side")
    assert not result.passed
    assert result.divergence.startswith("forward, loss, deltas and gradients match; update of "
                                        "step1.W1 differs")


CNN = CNNSpec.tiny(keep_prob=1.0)


def _cnn_params() -> dict[str, np.ndarray]:
    params = init_params(CNN, "he", seed=2)
    params["conv1.b"] = np.abs(params["conv1.b"]) + 0.5  # x = 0: every conv1 window ties at b > 0
    return params


CNN_CASE = cases.Case("pool-tie", CNN, batch=2, architecture="edge", steps=0,
                      given=(_cnn_params(), (np.zeros((2, 8, 8, 2)), np.array([0, 2]))),
                      at_kink=True)


class OtherCell(NumpyBackend):
    """The reference, but rounding made the second cell of every pool1 window the largest by
    one ulp (as another order of summation can): the gradient goes there. ``bug`` scales the
    gradient of ``fc2.W`` (a real bug elsewhere)."""

    name = "other-cell"

    def __init__(self, bug: float = 1.0) -> None:
        self.bug = bug

    def forward(self, spec: Any, params: Any, x: np.ndarray, **kwargs: Any) -> Trace:
        trace = super().forward(spec, params, x, **kwargs)
        h = trace.h["conv1"].copy()
        h[:, 0::2, 1::2, :] = np.nextafter(h[:, 0::2, 1::2, :], np.inf)
        trace.h["conv1"] = h
        return trace

    def gradients(self, spec: Any, params: Any, x: np.ndarray, y: np.ndarray,
                  **kwargs: Any) -> Gradients:
        model = network
        result = model.backward(spec, params, x, self.forward(spec, params, x), y)
        result.grads["fc2.W"] = result.grads["fc2.W"] * self.bug
        return result


def test_max_pool_ties_are_found_within_the_rounding_bound():
    trace = network.forward(CNN, _cnn_params(), np.zeros((2, 8, 8, 2)))
    ties = tie_units(CNN, _cnn_params(), np.zeros((2, 8, 8, 2)), trace)
    assert list(ties) == ["conv1"] and ties["conv1"].all()  # every window of equal cells


def test_the_other_cell_of_a_tied_window_passes_as_at_a_kink():
    result = run_case(CNN_CASE, OtherCell(), name="other-cell")
    assert result.passed, result.divergence
    assert any(c.note.startswith("at a kink") for c in result.comparisons)


def test_a_real_bug_next_to_a_pool_tie_still_fails():
    result = run_case(CNN_CASE, OtherCell(bug=1.01), name="other-cell")
    assert not result.passed and "grad of fc2.W differs" in result.divergence
