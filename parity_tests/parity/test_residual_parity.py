"""The ``residual`` layer kind on every backend of the registry against the reference walk:
forward ``z``/``h`` (the sub-list's tensors and the block's output), loss, deltas (inner dense/conv
layers included), gradients (the projection's too) and one Adam step (params and optimiser
state). An identity and a projected skip on flat inputs (a dropout after the block) and on maps
(a 1x1 conv projection). float64: every tensor within 1e-12 relative; float32: within
``compare.tolerance_for(spec)``."""

from __future__ import annotations

import json
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
from nnparity.cli import main
from nnparity.parity.runner import run_backend
from nnparity.reference import Optimizer
from nnparity.reference.family import init_params
from nnparity.reference.netspec import NetSpec

FLOAT64_TOLERANCE = REORDERED_FLOAT64
FLAT: dict[str, Any] = {
    "input_shape": [6], "loss": "ce", "reduction": "mean", "weight_decay": 0.01,
    "net": [{"kind": "dense", "units": 5}, {"kind": "tanh"},
            {"kind": "residual", "net": [{"kind": "dense", "units": 5}, {"kind": "gelu"},
                                         {"kind": "dense", "units": 5}]},
            {"kind": "residual", "projection": True,
             "net": [{"kind": "dense", "units": 4}, {"kind": "sigmoid"}]},
            {"kind": "dropout", "keep_prob": 0.8}, {"kind": "dense", "units": 3}]}
MAP: dict[str, Any] = {
    "input_shape": [6, 6, 2], "loss": "ce", "reduction": "mean",
    "net": [{"kind": "residual", "projection": True,
             "net": [{"kind": "conv2d", "filters": 3, "kernel": 3}, {"kind": "tanh"}]},
            {"kind": "residual", "net": [{"kind": "conv2d", "filters": 3, "kernel": 3},
                                         {"kind": "gelu"},
                                         {"kind": "conv2d", "filters": 3, "kernel": 1}]},
            {"kind": "maxpool", "size": 2}, {"kind": "flatten"}, {"kind": "dense", "units": 4}]}
NETS = {"flat": (FLAT, ("z.dense2", "h.res1", "h.res2"), "res2.W"),
        "map": (MAP, ("z.conv3", "h.res2"), "res1.W")}
BATCH = 4


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["torch", "tensorflow", "jax"])
def test_residual_blocks_match_the_reference(backend: str, dtype: str, net: str) -> None:
    if registry.reason(backend):
        pytest.skip(f"{backend}: {registry.reason(backend)}")
    data, inner, projection = NETS[net]
    spec = NetSpec(**{**data, "dtype": dtype})
    rng = np.random.default_rng(11)
    params = init_params(spec, seed=11)
    for name, value in params.items():  # non-zero biases: a value never copied would show
        if not spec.is_weight(name):
            params[name] = rng.uniform(-0.5, 0.5, value.shape).astype(value.dtype)
    x = rng.standard_normal((BATCH, *spec.input_shape)).astype(dtype)
    y = rng.integers(0, spec.output_dim, BATCH)
    mask = (rng.random((BATCH, spec.dropout_units)) < 0.8).astype(dtype) \
        if spec.dropout_units else None
    actual_backend = registry.get(backend)
    opt = Optimizer("adam", lr=0.05, variant=actual_backend.optimizer_variant)
    expected, actual = (run_backend(b, spec, params, [(x, y)], opt, steps=1, dropout_mask=mask)
                        for b in (registry.get("numpy"), actual_backend))
    assert all(("forward", key) in expected for key in inner)
    assert all(("delta", layer) in expected for layer in spec.layer_names)
    assert ("grad", projection) in expected
    tol = FLOAT64_TOLERANCE if dtype == "float64" else tolerance_for(spec)
    comparisons = compare_all(actual, expected, tol)
    worst = max(comparisons, key=lambda c: c.max_rel)
    assert all(c.passed for c in comparisons), \
        f"{describe_divergence(comparisons)}; worst {worst.label} {worst.max_rel:.1e}"
    assert {c.stage for c in comparisons} == {"forward", "loss", "delta", "grad", "update"}


def test_check_spec_passes_a_net_with_blocks(tmp_path, capsys) -> None:
    """``nnparity check --spec`` on a ``net`` with both kinds of block: every installed backend
    passes (float64)."""
    path = tmp_path / "residual.json"
    path.write_text(json.dumps({**MAP, "dtype": "float64"}))
    assert main(["check", "--spec", str(path), "-k", "adam"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "0 failed" in out and "torch" in out
