"""``layernorm``, ``global_avgpool`` and SAME ``avgpool`` (both divisors, symmetric and
asymmetric padding) on every backend of the registry against the reference walk: forward,
loss, deltas, gradients and one Adam step (parameters and state after it). float64: within
1e-12 relative; float32: within ``compare.tolerance_for(spec)``."""

from __future__ import annotations

import json
from pathlib import Path
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
NETS: dict[str, dict[str, Any]] = {
    "layernorm": {
        "input_shape": [6], "loss": "ce",
        "net": [{"kind": "layernorm", "epsilon": 1e-3}, {"kind": "dense", "units": 8},
                {"kind": "tanh"}, {"kind": "layernorm"}, {"kind": "dense", "units": 3}]},
    "same-avgpool": {  # 7x6: SAME 2/2 pads the bottom only (asymmetric); 3/1 pads 1 all round
        "input_shape": [7, 6, 2], "loss": "ce",
        "net": [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
                {"kind": "tanh"}, {"kind": "avgpool", "size": 2, "padding": "same"},
                {"kind": "avgpool", "size": 3, "stride": 1, "padding": "same",
                 "count_include_pad": True},
                {"kind": "avgpool", "size": 3, "stride": 1, "padding": "same"},
                {"kind": "global_avgpool"}, {"kind": "dense", "units": 3}]},
    "counted-pad-asymmetric": {
        "input_shape": [7, 7, 1], "loss": "l2",
        "net": [{"kind": "conv2d", "filters": 2, "kernel": 2, "stride": 1, "padding": "same"},
                {"kind": "sigmoid"},
                {"kind": "avgpool", "size": 2, "padding": "same", "count_include_pad": True},
                {"kind": "flatten"}, {"kind": "dense", "units": 4}, {"kind": "tanh"},
                {"kind": "layernorm"}, {"kind": "dense", "units": 2}]},
}
BATCH = 4


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["torch", "tensorflow", "jax"])
def test_norm_kinds_match_the_reference(backend: str, dtype: str, net: str) -> None:
    if registry.reason(backend):
        pytest.skip(f"{backend}: {registry.reason(backend)}")
    spec = NetSpec(**{**NETS[net], "dtype": dtype})
    rng = np.random.default_rng(3)
    params = init_params(spec, seed=3)
    for name, value in params.items():  # gamma/beta/biases away from 1/0: a copy shows
        if not spec.is_weight(name):
            params[name] = (value + rng.uniform(-0.5, 0.5, value.shape)).astype(value.dtype)
    x = (2.0 * rng.standard_normal((BATCH, *spec.input_shape))).astype(dtype)
    y = rng.integers(0, spec.output_dim, BATCH) if spec.loss == "ce" \
        else rng.standard_normal((BATCH, spec.output_dim))
    actual_backend = registry.get(backend)
    opt = Optimizer("adam", lr=0.05, variant=actual_backend.optimizer_variant)
    expected, actual = (run_backend(b, spec, params, [(x, y)], opt, steps=1)
                        for b in (registry.get("numpy"), actual_backend))
    tol = FLOAT64_TOLERANCE if dtype == "float64" else tolerance_for(spec)
    comparisons = compare_all(actual, expected, tol)
    worst = max(comparisons, key=lambda c: c.max_rel)
    assert all(c.passed for c in comparisons), \
        f"{describe_divergence(comparisons)}; worst {worst.label} {worst.max_rel:.1e}"
    assert {c.stage for c in comparisons} == {"forward", "loss", "delta", "grad", "update"}
    assert any(c.name.endswith(("gamma", "avgpool1")) for c in comparisons)


SPEC_FILE = {
    "input_shape": [7, 6, 2], "loss": "bce", "reduction": "mean", "dtype": "float64",
    "net": [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
            {"kind": "tanh"}, {"kind": "avgpool", "size": 2, "padding": "same"},
            {"kind": "avgpool", "size": 3, "stride": 1, "padding": "same",
             "count_include_pad": True},
            {"kind": "global_avgpool"}, {"kind": "layernorm", "epsilon": 1e-3},
            {"kind": "dense", "units": 4}, {"kind": "tanh"}, {"kind": "layernorm"},
            {"kind": "dense", "units": 1}]}


def test_check_spec_of_the_norm_kinds_agrees_to_1e_12(tmp_path: Path) -> None:
    """``check --spec`` in float64 (SGD, momentum, Adam; a ``bce`` output): every tensor of
    every framework backend within 1e-12 relative of the reference."""
    spec, report = tmp_path / "net.json", tmp_path / "r.json"
    spec.write_text(json.dumps(SPEC_FILE))
    assert main(["check", "--spec", str(spec), "--json", str(report)]) == 0
    rows = [(case, backend, c["tensor"], c["max_rel"])
            for case, data in json.loads(report.read_text())["cases"].items()
            for backend, result in data["backends"].items() if backend != "numpy"
            for c in result["comparisons"]]
    assert {backend for _, backend, _, _ in rows} >= {
        b for b in ("torch", "tensorflow", "jax") if not registry.reason(b)}
    worst = max(rows, key=lambda row: row[3])
    assert worst[3] <= FLOAT64_TOLERANCE, worst
