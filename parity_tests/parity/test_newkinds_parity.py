"""The ``gelu`` (exact and tanh forms) and ``avgpool`` layer kinds on every backend of the
registry against the reference walk: forward ``z``/``h``, loss, deltas, gradients and one step
of SGD, momentum and Adam (params and optimiser state after it). float64: every tensor within
1e-12 relative; float32: within ``compare.tolerance_for(spec)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import (
    REORDERED_FLOAT64,
    compare_all,
    describe_divergence,
    tolerance_for,
)
from nnparity.parity.runner import run_backend
from nnparity.reference import Optimizer
from nnparity.reference.family import init_params
from nnparity.reference.netspec import NetSpec

FLOAT64_TOLERANCE = REORDERED_FLOAT64
NET: dict[str, Any] = {
    "input_shape": [9, 9, 2], "loss": "ce", "reduction": "mean",
    "net": [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
            {"kind": "gelu"}, {"kind": "avgpool", "size": 2, "stride": 1},
            {"kind": "avgpool", "size": 3}, {"kind": "flatten"},
            {"kind": "dense", "units": 6}, {"kind": "gelu", "approximate": "tanh"},
            {"kind": "dense", "units": 3}]}
BATCH = 4


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["torch", "tensorflow", "jax"])
def test_gelu_and_avgpool_match_the_reference(backend: str, dtype: str, optimizer: str) -> None:
    if registry.reason(backend):
        pytest.skip(f"{backend}: {registry.reason(backend)}")
    spec = NetSpec(**{**NET, "dtype": dtype})
    rng = np.random.default_rng(7)
    params = init_params(spec, seed=7)
    for name, value in params.items():  # non-zero biases: a value never copied would show
        if not spec.is_weight(name):
            params[name] = rng.uniform(-0.5, 0.5, value.shape).astype(value.dtype)
    x = (2.0 * rng.standard_normal((BATCH, *spec.input_shape))).astype(dtype)
    y = rng.integers(0, spec.output_dim, BATCH)
    actual_backend = registry.get(backend)
    opt = Optimizer(optimizer, lr=0.05, variant=actual_backend.optimizer_variant)
    expected, actual = (run_backend(b, spec, params, [(x, y)], opt, steps=1)
                        for b in (registry.get("numpy"), actual_backend))
    assert ("forward", "h.avgpool2") in expected
    tol = FLOAT64_TOLERANCE if dtype == "float64" else tolerance_for(spec)
    comparisons = compare_all(actual, expected, tol)
    worst = max(comparisons, key=lambda c: c.max_rel)
    assert all(c.passed for c in comparisons), \
        f"{describe_divergence(comparisons)}; worst {worst.label} {worst.max_rel:.1e}"
    assert {c.stage for c in comparisons} == {"forward", "loss", "delta", "grad", "update"}
