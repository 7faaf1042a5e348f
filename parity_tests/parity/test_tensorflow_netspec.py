"""The tensorflow backend on networks given as layer lists (:class:`NetSpec`) against the
reference (``reference.network``, the ``numpy`` backend): forward ``z``/``h``, loss, deltas,
gradients, and one SGD, momentum and Adam step each (the trainers draw the same dropout mask),
in float64 (max rel <= 1e-12) and float32 (``compare.tolerance``), with a dropout mask.

Nets: issue 21's conv net; a conv net with PReLU slopes per channel and shared on maps (Keras'
``alpha`` of shape ``(1, 1, C)`` and ``(1, 1, 1)``), a VALID conv and pool, and a dense layer
without bias; a flat net with shared and per-unit PReLU, leaky relu, relu^3, a dense layer
without bias and two dropout layers (each its own columns of the mask), with weight decay.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import REORDERED_FLOAT64, compare_all, tolerance
from nnparity.parity.runner import run_backend
from nnparity.reference import Optimizer
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import init_params
from nnparity.reference.netspec import NetSpec

pytestmark = pytest.mark.tensorflow

NETS = {
    "issue21-conv": {
        "input_shape": [12, 12, 1], "loss": "ce", "reduction": "mean",
        "net": [{"kind": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": "same"},
                {"kind": "relu"}, {"kind": "maxpool", "size": 2}, {"kind": "flatten"},
                {"kind": "dense", "units": 16}, {"kind": "sigmoid"},
                {"kind": "dropout", "keep_prob": 0.5}, {"kind": "dense", "units": 5}]},
    "conv-prelu": {
        "input_shape": [9, 8, 2], "loss": "ce", "reduction": "sum", "weight_decay": 0.01,
        "net": [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": "valid"},
                {"kind": "prelu", "slopes": "unit"},
                {"kind": "conv2d", "filters": 4, "kernel": 2, "padding": "same"},
                {"kind": "prelu"}, {"kind": "maxpool", "size": 2, "padding": "valid"},
                {"kind": "flatten"}, {"kind": "dropout", "keep_prob": 0.8},
                {"kind": "dense", "units": 5, "use_bias": False}, {"kind": "tanh"},
                {"kind": "dense", "units": 3}]},
    "flat-prelu": {
        "input_shape": [6], "loss": "l2", "reduction": "sum", "weight_decay": 0.01,
        "net": [{"kind": "dense", "units": 5}, {"kind": "prelu"},
                {"kind": "dense", "units": 4, "use_bias": False}, {"kind": "leaky_relu"},
                {"kind": "dropout", "keep_prob": 0.8},
                {"kind": "dense", "units": 4}, {"kind": "prelu", "slopes": "unit"},
                {"kind": "dropout", "keep_prob": 0.8},
                {"kind": "dense", "units": 3}, {"kind": "relu3"},
                {"kind": "dense", "units": 2}]},
}
OPTIMIZERS = {"sgd": {"lr": 0.05}, "momentum": {"lr": 0.05, "momentum": 0.9},
              "adam": {"lr": 0.01}}
BATCH = 4


def net_spec(name: str, dtype: str) -> NetSpec:
    return NetSpec(**{**NETS[name], "dtype": dtype})


def problem(spec: NetSpec, seed: int) -> tuple[dict, list, np.ndarray]:
    """Params (random biases and slopes, so that a misplaced one shows), two batches and a
    dropout mask."""
    rng = np.random.default_rng(seed)
    params = init_params(spec, "torch-default", seed)
    for name, value in params.items():
        if spec.param_kind(name) == "slope":
            params[name] = rng.uniform(0.05, 0.5, value.shape).astype(spec.dtype)
    batches = []
    for _ in range(2):
        x = rng.standard_normal((BATCH, *spec.input_shape)).astype(spec.dtype)
        y = rng.integers(0, spec.output_dim, BATCH) if spec.loss == "ce" \
            else rng.standard_normal((BATCH, spec.output_dim))
        batches.append((x, y))
    return params, batches, draw_dropout_mask(spec, BATCH, rng)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("net", list(NETS))
def test_netspec_matches_the_reference(net: str, dtype: str, optimizer: str) -> None:
    spec = net_spec(net, dtype)
    params, batches, mask = problem(spec, seed=len(net))
    opt = Optimizer(optimizer, **OPTIMIZERS[optimizer], variant="keras")
    expected, actual = (run_backend(registry.get(name), spec, params, batches, opt, steps=1,
                                    dropout_mask=mask) for name in ("numpy", "tensorflow"))
    assert list(actual) == list(expected)
    tol = REORDERED_FLOAT64 if dtype == "float64" else tolerance(dtype)
    failed = [f"{c.label}: {c.max_rel:.2e} {c.note}"
              for c in compare_all(actual, expected, tol) if not c.passed]
    assert not failed, "; ".join(failed)


def test_the_trace_holds_the_reference_keys_with_and_without_a_mask() -> None:
    """Dropout layers are traced only with a mask; every ``z``/``h`` key matches."""
    spec = net_spec("flat-prelu", "float64")
    params, batches, mask = problem(spec, seed=0)
    x = batches[0][0]
    for kwargs in ({}, {"dropout_mask": mask}):
        expected, actual = (registry.get(name).forward(spec, params, x, **kwargs)
                            for name in ("numpy", "tensorflow"))
        assert list(actual.z) == list(expected.z) == spec.layer_names
        assert list(actual.h) == list(expected.h)
        assert ("dropout1" in actual.h) == bool(kwargs)
