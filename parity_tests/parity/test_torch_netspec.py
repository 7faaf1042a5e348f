"""The torch backend on networks written as layer lists (``NetSpec``, the ``net`` key of a spec
JSON) against the reference walk, with a dropout mask: forward ``z``/``h``, loss, deltas,
gradients, and one step of SGD, momentum and Adam each (params and optimiser state after it;
the trainers draw the step's mask by the reference's rule).

float64: every tensor within 1e-12 relative; float32: within ``compare.tolerance(dtype)``.
Nets: the conv net of issue 21's example; a flat net with a shared and a per-unit PReLU,
leaky relu, a dense layer without bias, weight decay and two dropout layers (each taking its
columns of the mask); a conv net with a stride-2 SAME conv (torch's explicit asymmetric pad),
a per-channel PReLU on the map and dropout right after the flatten (its mask columns in torch's
NCHW flatten order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import REORDERED_FLOAT64, compare_all, describe_divergence, tolerance
from nnparity.parity.runner import run_backend
from nnparity.reference import Optimizer
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import init_params
from nnparity.reference.netspec import NetSpec

pytestmark = pytest.mark.torch

FLOAT64_TOLERANCE = REORDERED_FLOAT64
NETS: dict[str, dict[str, Any]] = {
    "issue21-conv": {
        "input_shape": [12, 12, 1], "loss": "ce", "reduction": "mean",
        "net": [{"kind": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": "same"},
                {"kind": "relu"}, {"kind": "maxpool", "size": 2}, {"kind": "flatten"},
                {"kind": "dense", "units": 16}, {"kind": "sigmoid"},
                {"kind": "dropout", "keep_prob": 0.5}, {"kind": "dense", "units": 5}]},
    "flat-prelu-leaky-nobias": {
        "input_shape": [5], "loss": "ce", "reduction": "sum", "weight_decay": 1e-3,
        "net": [{"kind": "dense", "units": 6}, {"kind": "prelu"},
                {"kind": "dropout", "keep_prob": 0.75},
                {"kind": "dense", "units": 5, "use_bias": False},
                {"kind": "prelu", "slopes": "unit"},
                {"kind": "dense", "units": 4}, {"kind": "leaky_relu"},
                {"kind": "dropout", "keep_prob": 0.75}, {"kind": "dense", "units": 3}]},
    "conv-stride2-prelu-dropout-after-flatten": {
        "input_shape": [9, 8, 2], "loss": "ce", "reduction": "mean",
        "net": [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": "same"},
                {"kind": "prelu", "slopes": "unit"}, {"kind": "maxpool", "size": 2},
                {"kind": "flatten"}, {"kind": "dropout", "keep_prob": 0.5},
                {"kind": "dense", "units": 4}, {"kind": "tanh"}, {"kind": "dense", "units": 3}]},
}
BATCH = 4


def _inputs(spec: NetSpec, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray,
                                                np.ndarray]:
    """``(params, x, y, mask)``: initial weights with non-zero biases and slopes (a value never
    copied into torch would then show), a standard normal batch, labels and a 0/1 mask."""
    rng = np.random.default_rng(seed)
    params = init_params(spec, seed=seed)
    for name, value in params.items():
        if not spec.is_weight(name):
            params[name] = rng.uniform(-0.5, 0.5, value.shape).astype(value.dtype)
    x = rng.standard_normal((BATCH, *spec.input_shape)).astype(spec.dtype)
    y = rng.integers(0, spec.output_dim, BATCH)
    return params, x, y, draw_dropout_mask(spec, BATCH, rng)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("net", list(NETS))
def test_netspec_matches_the_reference(net: str, dtype: str, optimizer: str) -> None:
    spec = NetSpec(**{**NETS[net], "dtype": dtype})
    params, x, y, mask = _inputs(spec, seed=len(net))
    opt = Optimizer(optimizer, lr=0.05, variant="torch")
    expected, actual = (run_backend(registry.get(name), spec, params, [(x, y)], opt, steps=1,
                                    dropout_mask=mask) for name in ("numpy", "torch"))
    assert ("forward", "h.dropout1") in expected  # the mask was applied and traced
    tol = FLOAT64_TOLERANCE if dtype == "float64" else tolerance(dtype)
    comparisons = compare_all(actual, expected, tol)
    worst = max(comparisons, key=lambda c: c.max_rel)
    assert all(c.passed for c in comparisons), \
        f"{describe_divergence(comparisons)}; worst {worst.label} {worst.max_rel:.1e}"
    stages = {c.stage for c in comparisons}
    assert stages == {"forward", "loss", "delta", "grad", "update"}
