"""The ``batchnorm`` layer kind on every backend of the registry against the reference walk:
forward ``z``/``h`` (on the running statistics at evaluation, on the batch's in a pass with a
dropout mask), loss, deltas, gradients through the batch statistics, and two optimiser steps
with the running mean and variance compared as tensors of their own after each. float64: every
tensor within 1e-12 relative; float32: within ``compare.tolerance_for(spec)``.

Each backend runs the variance estimator its framework keeps (torch: unbiased; Keras: biased;
JAX, written by hand here, either) and refuses the other with its reason."""

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
from nnparity.parity.cases import STATE_RANGE
from nnparity.parity.runner import run_backend
from nnparity.reference import Optimizer
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import init_params
from nnparity.reference.netspec import NetSpec

FLOAT64_TOLERANCE = REORDERED_FLOAT64
# A bias right before a batchnorm has gradient 0 in exact arithmetic (the normalisation
# subtracts it again): its computed gradient is rounding noise no two libraries share, so the
# layer before one has no bias, or an activation between them.
FEATURES: list[dict[str, Any]] = [  # BatchNorm1d / BatchNormalization after Dense
    {"kind": "dense", "units": 6, "use_bias": False}, {"kind": "batchnorm", "momentum": 0.9},
    {"kind": "relu"},
    {"kind": "dropout", "keep_prob": 0.75}, {"kind": "dense", "units": 3}]
CHANNELS: list[dict[str, Any]] = [  # BatchNorm2d / BatchNormalization after Conv2D (NHWC)
    {"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
    {"kind": "tanh"}, {"kind": "batchnorm", "momentum": 0.8, "epsilon": 1e-3},
    {"kind": "maxpool", "size": 2}, {"kind": "flatten"}, {"kind": "dense", "units": 3}]
NATIVE = {"torch": ["unbiased"], "tensorflow": ["biased"], "jax": ["biased", "unbiased"]}
BATCH = 5


def spec_of(layers: list[dict[str, Any]], variance: str, dtype: str) -> NetSpec:
    """The net with every batchnorm layer's ``variance`` set."""
    net = [{**entry, "variance": variance} if entry["kind"] == "batchnorm" else entry
           for entry in layers]
    shape = [5] if layers[0]["kind"] == "dense" else [6, 6, 2]
    return NetSpec(shape, net, loss="ce", reduction="mean", dtype=dtype)


def params_of(spec: NetSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Seeded weights; biases, gamma, beta off their start; running statistics in
    :data:`~nnparity.parity.cases.STATE_RANGE`."""
    params = init_params(spec, seed=7)
    for name, value in params.items():
        if spec.is_state(name):
            params[name] = rng.uniform(*STATE_RANGE, value.shape).astype(value.dtype)
        elif not spec.is_weight(name):
            params[name] = rng.uniform(-0.5, 1.5, value.shape).astype(value.dtype)
    return params


def _cases() -> list[Any]:
    return [pytest.param(backend, variance, name, id=f"{backend}-{variance}-{name}")
            for backend, variances in NATIVE.items() for variance in variances
            for name in ("features", "channels")]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("backend", "variance", "net"), _cases())
def test_batchnorm_matches_the_reference(backend: str, variance: str, net: str, dtype: str,
                                         optimizer: str) -> None:
    if registry.reason(backend):
        pytest.skip(f"{backend}: {registry.reason(backend)}")
    spec = spec_of(FEATURES if net == "features" else CHANNELS, variance, dtype)
    rng = np.random.default_rng(7)
    params = params_of(spec, rng)
    batches = [((2.0 * rng.standard_normal((BATCH, *spec.input_shape)) + 1).astype(dtype),
                rng.integers(0, spec.output_dim, BATCH)) for _ in range(2)]
    mask = draw_dropout_mask(spec, BATCH, rng) if spec.dropout_units else None
    actual_backend = registry.get(backend)
    opt = Optimizer(optimizer, lr=0.05, variant=actual_backend.optimizer_variant)
    expected, actual = (run_backend(b, spec, params, batches, opt, dropout_mask=mask)
                        for b in (registry.get("numpy"), actual_backend))
    for step in (1, 2):
        for state in ("mean", "var"):
            key = ("update", f"step{step}.batchnorm1.{state}")
            assert key in actual and not np.array_equal(actual[key], params[f"batchnorm1.{state}"])
    tol = FLOAT64_TOLERANCE if dtype == "float64" else tolerance_for(spec)
    comparisons = compare_all(actual, expected, tol)
    worst = max(comparisons, key=lambda c: c.max_rel)
    assert all(c.passed for c in comparisons), \
        f"{describe_divergence(comparisons)}; worst {worst.label} {worst.max_rel:.1e}"
    assert {c.stage for c in comparisons} == {"forward", "loss", "delta", "grad", "update"}


@pytest.mark.parametrize(("backend", "variance"), [("torch", "biased"),
                                                   ("tensorflow", "unbiased")])
def test_a_variance_the_framework_cannot_keep_is_refused(backend: str, variance: str) -> None:
    if registry.reason(backend):
        pytest.skip(f"{backend}: {registry.reason(backend)}")
    spec = spec_of(FEATURES, variance, "float64")
    params = params_of(spec, np.random.default_rng(0))
    x = np.ones((2, 5))
    with pytest.raises(ValueError, match=f"batchnorm1: .* variance .*{variance}"):
        registry.get(backend).forward(spec, params, x)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_check_spec_passes_where_the_framework_keeps_the_estimator(dtype: str, tmp_path,
                                                                    capsys) -> None:
    """``check --spec`` (SGD, momentum and Adam, five steps, running statistics compared after
    each): every backend that keeps the spec's estimator passes; the other is skipped with its
    reason, not failed."""
    import json

    from nnparity.cli import main

    spec = tmp_path / "bn.json"
    net = [{**entry, "variance": "unbiased"} if entry["kind"] == "batchnorm" else entry
           for entry in CHANNELS]
    spec.write_text(json.dumps({"input_shape": [6, 6, 2], "loss": "ce", "dtype": dtype,
                                "net": net}))
    report = tmp_path / "r.json"
    assert main(["check", "--spec", str(spec), "--json", str(report)]) == 0, \
        capsys.readouterr().out
    cases = json.loads(report.read_text())["cases"].values()
    results = {backend: result for case in cases
               for backend, result in case["backends"].items()}
    if not registry.reason("tensorflow"):
        assert "keeps the biased moving variance" in results["tensorflow"]["reason"]
    for backend in ("torch", "jax"):
        if not registry.reason(backend):
            assert results[backend]["passed"]
            names = {c["tensor"] for c in results[backend]["comparisons"]}
            assert {"step5.batchnorm1.mean", "step5.batchnorm1.var"} <= names


def test_the_kink_judge_reruns_the_training_pass() -> None:
    """A relu right after a batchnorm sits at its kink where a sample equals its batch's mean:
    the judge finds it on the batch's statistics (the pass the gradients come from, not the
    running ones), and its optimiser re-step leaves the running statistics out."""
    from dataclasses import replace

    from nnparity.backends.compare import collect
    from nnparity.parity.kink_judge import rejudge
    from nnparity.reference import network

    spec = NetSpec((2,), [{"kind": "dense", "units": 2, "use_bias": False},
                          {"kind": "batchnorm"}, {"kind": "relu"},
                          {"kind": "dense", "units": 2}], loss="ce")
    params = init_params(spec, seed=0)
    params["dense1.W"] = np.eye(2)
    params["batchnorm1.mean"], params["batchnorm1.var"] = np.full(2, 3.0), np.full(2, 2.0)
    x, y = np.array([[-1.0, 2.0], [0.0, 5.0], [1.0, 8.0]]), np.array([0, 1, 0])
    grads = network.gradients(spec, params, x, y)
    actual = collect(network.forward(spec, params, x, training=True), grads)
    comparisons = compare_all(actual, actual, FLOAT64_TOLERANCE)
    comparisons = [replace(c, passed=False) if c.name == "dense2.W" else c for c in comparisons]
    judged, count = rejudge(spec, params, x, y, None, actual, comparisons,
                            Optimizer("adam", lr=0.1))
    assert count == 2  # the middle sample, both features
    assert all(c.passed for c in judged)


@pytest.mark.parametrize(("layers", "programs"), [
    ([{"kind": "dense", "units": 4}, {"kind": "tanh"}, {"kind": "dense", "units": 3}], 1),
    (FEATURES[:3] + FEATURES[4:], 2),  # batch statistics in training, running ones at evaluation
])
def test_jax_compiles_a_second_program_only_for_batch_normalisation(layers: list,
                                                                      programs: int) -> None:
    if registry.reason("jax"):
        pytest.skip(f"jax: {registry.reason('jax')}")
    from nnparity.backends import jax_backend as jb

    spec = spec_of(layers, "biased", "float64")
    rng = np.random.default_rng(3)
    params = params_of(spec, rng)
    x, y = rng.standard_normal((3, 5)), rng.integers(0, 3, 3)
    compiled = jb.evaluate._cache_size()
    backend = registry.get("jax")
    backend.forward(spec, params, x)
    backend.gradients(spec, params, x, y)
    backend.trainer(spec, params, Optimizer("sgd", lr=0.1)).step(x, y)
    assert jb.evaluate._cache_size() == compiled + programs
