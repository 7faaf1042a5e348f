"""Property-based parity (hypothesis): random float64 specs, weights, data and optimisers.

Examples per test: the hypothesis profile (``conftest.py``: ``default`` 20, ``--hypothesis-profile
ci`` 200), or ``NNPARITY_HYPOTHESIS_EXAMPLES=N`` to override. The default run takes seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nnparity.backends import registry
from nnparity.backends.compare import describe_divergence
from nnparity.parity import cases, runner
from nnparity.reference import MLPSpec, Optimizer, forward
from nnparity.reference.kinks import KINKED

# Near saturation, f'(z) from h (1 - h^2 for tanh, h (1 - h) for sigmoid, the BP lecture's formulas
# and
# the frameworks') loses digits: one ulp of difference in h (NumPy's and torch's tanh differ by
# one) becomes a relative error of eps / (1 - |h|). When such a unit dominates a delta tensor that
# measures rounding, not a bug (hypothesis found 1.3e-9 with tanh(z) at |z| ~ 10 as the only
# output unit). Drawn problems keep |z| below these bounds; test_edge_cases covers saturation.
SATURATION = {"tanh": 4.0, "sigmoid": 8.0}
# Every activation but relu3 (cubes of cubes saturate: see ``cases.convention_spec``).
ACTIVATIONS = tuple(a for a in cases.CONVENTION_ACTIVATIONS if a != "relu3")

_EXAMPLES = os.environ.get("NNPARITY_HYPOTHESIS_EXAMPLES")
SETTINGS = settings(
    deadline=None,  # the first example on a framework pays for its import and tracing
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    **({"max_examples": int(_EXAMPLES)} if _EXAMPLES else {}),
)


@dataclass(frozen=True)
class Problem:
    """A drawn spec with its weights, batches (one per step) and optimiser."""

    spec: MLPSpec
    params: dict[str, np.ndarray]
    batches: list[tuple[np.ndarray, np.ndarray]]
    optimizer: str
    lr: float


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    """Random MLP (1-3 layers of width 1-6, any activation per layer, every loss/reduction)."""
    loss = draw(st.sampled_from(["l2", "ce", "bce"]))
    depth = draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 6), min_size=depth - 1, max_size=depth - 1))
    output = 1 if loss == "bce" else draw(st.integers(2, 4))
    spec = MLPSpec(
        input_dim=draw(st.integers(1, 6)),
        layers=(*hidden, output),
        activations=tuple(draw(st.sampled_from(ACTIVATIONS)) for _ in range(depth)),
        loss=loss,
        reduction=draw(st.sampled_from(cases.REDUCTIONS)),
        weight_decay=draw(st.sampled_from(cases.WEIGHT_DECAYS)),
        bias=draw(st.booleans()),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 0.5, 1.0]))
    params = {k: scale * rng.standard_normal(s) for k, s in spec.param_shapes().items()}
    n = draw(st.integers(1, 5))
    batches = []
    for _ in range(3):
        x = rng.standard_normal((n, spec.input_dim))
        if loss == "ce":
            y = rng.integers(0, output, size=n)
        elif loss == "bce":
            y = rng.integers(0, 2, size=n).astype(np.float64)
        else:
            y = rng.standard_normal((n, output))
        batches.append((x, y))
    trace = forward(spec, params, batches[0][0])
    for name, act in zip(spec.layer_names, spec.activations, strict=True):
        assume(np.abs(trace.z[name]).max() < SATURATION.get(act, np.inf))
    optimizer = draw(st.sampled_from(cases.OPTIMIZERS))
    return Problem(spec, params, batches, optimizer, 1e-3 if optimizer == "adam" else 1e-2)


@SETTINGS
@given(problem=problems())
def test_framework_parity_holds_for_random_specs(backend_name: str, problem: Problem) -> None:
    comparisons = runner.compare_backend(
        registry.get(backend_name), problem.spec, problem.params, problem.batches,
        lambda variant: Optimizer(problem.optimizer, lr=problem.lr, variant=variant))
    assert all(c.passed for c in comparisons), (
        f"{backend_name}, {problem.spec.to_json()}: {describe_divergence(comparisons)}")


def stencil_reach(problem: Problem, x: np.ndarray) -> dict[str, float]:
    """Layer -> a bound on how far the finite-difference stencil (one parameter moved by up to
    two steps) moves that layer's pre-activations: its own parameters move ``z`` by ``h_prev``
    (weights) or 1 (bias) per unit step; earlier ones arrive through ``|W|``'s column sums and
    the activations' slopes (at most 1, or ``|a|`` for prelu, whose slope moves ``h`` by ``z``)."""
    spec, params = problem.spec, problem.params
    trace = forward(spec, params, x)
    move = 2 * runner.GRADCHECK_STEP
    reach, h_prev, h_reach = {}, x, 0.0
    for i, (name, act) in enumerate(zip(spec.layer_names, spec.activations, strict=True), 1):
        columns = np.abs(params[f"W{i}"]).sum(axis=0).max()
        reach[name] = move * max(1.0, float(np.abs(h_prev).max())) + columns * h_reach
        slope = max(1.0, float(np.abs(params[f"a{i}"]).max())) if act == "prelu" else 1.0
        own = move * float(np.abs(trace.z[name]).max()) if act == "prelu" else 0.0
        h_prev, h_reach = trace.h[name], slope * reach[name] + own
    return reach


@SETTINGS
@given(problem=problems())
def test_reference_gradients_match_finite_differences(problem: Problem) -> None:
    x, y = problem.batches[0]
    # Central differences across a kink average its two slopes: keep kinked units farther from
    # 0 than the stencil reaches (hypothesis found relu's z = -1.2e-6 with a reach of 2e-6).
    trace = forward(problem.spec, problem.params, x)
    for (name, reach), act in zip(stencil_reach(problem, x).items(), problem.spec.activations,
                                  strict=True):
        assume(act not in KINKED or np.abs(trace.z[name]).min() > reach)
    comparisons = runner.gradcheck_comparisons(problem.spec, problem.params, x, y)
    assert all(c.passed for c in comparisons), (
        f"{problem.spec.to_json()}: {describe_divergence(comparisons)}")
