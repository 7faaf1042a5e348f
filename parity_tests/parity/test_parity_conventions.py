"""MLP parity on every framework backend, written once: the convention cases of
:mod:`nnparity.parity.cases` (every activation x loss x reduction x weight decay, each optimiser in
lockstep for 10 steps, hand-made edge inputs) run through the CLI's runner, and the protocol's
``Backend.step`` carrying params and state along.

Every tensor is compared at the family tolerance: forward ``z``/``h``, loss, every delta and
gradient, and for lockstep cases the loss of every step, the params after steps 1 and 10 and the
optimiser state after the last step. Framework idioms (how each backend builds its model, traces
its steps, refuses the other optimiser variant) are tested in each backend's own file.
"""

from __future__ import annotations

import pytest

from nnparity.backends.compare import collect, compare_all, describe_divergence, tolerance_for
from nnparity.backends.protocol import Backend
from nnparity.parity import cases
from nnparity.parity.runner import run_case
from nnparity.reference import MLPSpec, Optimizer

CONVENTIONS = cases.convention_cases()


@pytest.mark.parametrize("case", CONVENTIONS, ids=[c.name for c in CONVENTIONS])
def test_convention_case(backend: Backend, backend_name: str, case: cases.Case,
                         assert_parity) -> None:
    assert_parity(run_case(case, backend, name=backend_name))


@pytest.mark.parametrize("optimizer", cases.OPTIMIZERS)
def test_protocol_step_carries_params_and_state(backend: Backend, reference: Backend,
                                                optimizer: str) -> None:
    """``Backend.step`` five times, passing params and state along, against the reference; the
    state keys come back in the reference's order."""
    spec = MLPSpec(3, (4, 2), ("tanh", "identity"), "ce", "mean", 1e-3)
    case = cases.Case("protocol", spec, optimizer, 0.05, 4, "conventions", init="seed004",
                      steps=5)
    opt = Optimizer(optimizer, lr=case.lr, variant=backend.optimizer_variant)
    runs = []
    for b in (backend, reference):
        params, state = case.params(), None
        for x, y in case.batches():
            params, state, _ = b.step(spec, params, state, x, y, opt)
        runs.append(collect(updates=[("step5", {**params, **state})]))
    assert list(runs[0]) == list(runs[1])
    comparisons = compare_all(*runs, tolerance_for(spec))
    assert all(c.passed for c in comparisons), describe_divergence(comparisons)


def test_every_convention_case_runs_on_the_reference_too(reference: Backend) -> None:
    """The float64 convention cases pass finite differences (the numpy backend's check), but
    those placed on a kink, which are skipped with the reason."""
    for case in CONVENTIONS:
        if case.dtype == "float64":
            result = run_case(case, reference, name="numpy")
            if case.at_kink:
                assert result.skipped and "kink" in result.skipped
            else:
                assert result.passed, f"{case.name}: {result.sentence}"
