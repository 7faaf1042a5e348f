"""Exports of networks with ``batchnorm`` (over channels, over features, inside a residual
block; both running-variance estimators) to NumPy and JAX, against the reference in float64:
a training pass's loss, gradients (of the trained parameters only) and running statistics, two
training steps with momentum (the running statistics carried; with a dropout mask where the net
drops), and the evaluation pass on the running statistics."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np
import pytest

from nnparity.backends.compare import REORDERED_FLOAT64, compare_tensor
from nnparity.cli import main
from nnparity.reference import NetSpec, network
from nnparity.reference.family import init_params
from nnparity.reference.optim import Optimizer, init_state, step

SPECS = {
    "maps": NetSpec(input_shape=(6, 6, 2), loss="ce", reduction="mean", weight_decay=0.01, net=[
        {"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
        {"kind": "tanh"},
        {"kind": "batchnorm", "momentum": 0.9, "epsilon": 1e-3, "variance": "unbiased"},
        {"kind": "maxpool", "size": 2, "padding": "valid"}, {"kind": "flatten"},
        {"kind": "dense", "units": 4}, {"kind": "tanh"},
        {"kind": "batchnorm", "momentum": 0.8}, {"kind": "dense", "units": 3}]),
    "flat": NetSpec(input_shape=(5,), loss="l2", reduction="sum", net=[
        {"kind": "dense", "units": 4, "use_bias": False},
        {"kind": "batchnorm", "variance": "unbiased"}, {"kind": "tanh"},
        {"kind": "residual", "net": [{"kind": "dense", "units": 4}, {"kind": "sigmoid"},
                                     {"kind": "batchnorm", "momentum": 0.5}]},
        {"kind": "dense", "units": 2}]),
    "dropout": NetSpec(input_shape=(5,), loss="ce", net=[
        {"kind": "dense", "units": 6}, {"kind": "tanh"}, {"kind": "batchnorm", "momentum": 0.7},
        {"kind": "dropout", "keep_prob": 0.5}, {"kind": "dense", "units": 3}]),
}
OPTIMIZER = Optimizer("momentum", lr=0.05, momentum=0.9)
FRAMEWORKS = ["numpy", pytest.param("jax", marks=pytest.mark.jax)]  # jax: skipped without it


@pytest.fixture(autouse=True)
def _x64_restored() -> object:
    """A JAX file turns float64 on; leave JAX as it was (the NumPy files need no JAX)."""
    try:
        import jax
    except ImportError:
        yield
        return
    previous = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", previous)


def _export(framework: str, spec: NetSpec, folder: Path) -> ModuleType:
    spec_file = folder / "net.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    path = folder / f"bn_{framework}.py"
    assert main(["export", "--framework", framework, str(spec_file), "--dtype", "float64",
                 "--optimizer", OPTIMIZER.name, "--lr", str(OPTIMIZER.lr),
                 "--momentum", str(OPTIMIZER.momentum), "-o", str(path)]) == 0
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _mask(spec: NetSpec, rows: int) -> np.ndarray | None:
    """A 0/1 dropout mask for ``rows`` samples, None without dropout."""
    if not spec.dropout_units:
        return None
    return np.random.default_rng(5).integers(0, 2, (rows, spec.dropout_units)).astype(float)


def _problem(spec: NetSpec) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Parameters with gamma, beta and the running statistics away from 1 and 0; 4 samples."""
    rng = np.random.default_rng(7)
    x = 2.0 * rng.standard_normal((4, *spec.input_shape)) + 0.5
    y = rng.integers(0, spec.output_dim, 4) if spec.loss == "ce" \
        else rng.standard_normal((4, spec.output_dim))
    params = init_params(spec, seed=2)
    for name, value in params.items():
        if name.endswith(".var"):
            params[name] = rng.uniform(0.5, 2.0, value.shape)
        elif not spec.is_weight(name):
            params[name] = value + rng.uniform(-0.5, 0.5, value.shape)
    return params, x, y


def _close(actual: object, expected: np.ndarray, what: str) -> None:
    c = compare_tensor("export", what, np.asarray(actual), np.asarray(expected),
                       REORDERED_FLOAT64)
    assert c.passed, f"{what}: max rel {c.max_rel:.1e} {c.note}"


class Exported(NamedTuple):
    """A spec, its exported file (imported) and the problem it is run on."""

    spec: NetSpec
    module: ModuleType
    params: dict[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=list(SPECS))
def exported(request: pytest.FixtureRequest, framework: str, tmp_path: Path) -> Exported:
    """Each spec of :data:`SPECS` exported to ``framework``, with its problem."""
    spec = SPECS[request.param]
    return Exported(spec, _export(framework, spec, tmp_path), *_problem(spec))


def test_a_training_pass_matches_the_reference(exported: Exported) -> None:
    spec, module, params, x, y = exported
    mask = _mask(spec, len(x))
    ref = network.gradients(spec, params, x, y, dropout_mask=mask)
    value, grads, running = module.gradients(params, x, y, mask)
    _close(value, ref.loss, "loss")
    assert set(grads) == set(ref.grads) == set(module.TRAINABLE)
    for key, grad in ref.grads.items():
        _close(grads[key], grad, key)
    assert set(running) == set(ref.state) and ref.state
    for key, value in ref.state.items():
        _close(running[key], value, key)


def test_two_training_steps_match_the_reference(exported: Exported) -> None:
    spec, module, params, x, y = exported
    trained = [k for k in params if k in spec.trained_names]
    ref_params, ref_state = params, init_state(OPTIMIZER, {k: params[k] for k in trained})
    ours, state = params, module.init_state({k: params[k] for k in module.TRAINABLE})
    for rows in (slice(0, 4), slice(1, 4)):
        mask = _mask(spec, len(x[rows]))
        ref = network.gradients(spec, ref_params, x[rows], y[rows], dropout_mask=mask)
        stepped, ref_state = step(OPTIMIZER, {k: ref_params[k] for k in trained}, ref.grads,
                                  ref_state)
        ref_params = {**ref_params, **stepped, **ref.state}
        value, ours, state = module.train_step(ours, state, x[rows], y[rows], mask)
        _close(value, ref.loss, "loss")
    assert set(ours) == set(ref_params)
    for key, value in ref_params.items():
        _close(ours[key], value, key)


def test_evaluation_uses_the_running_statistics(framework: str, exported: Exported) -> None:
    spec, module, params, x, _ = exported
    output, running = module.forward(params, x)[::2] if framework == "numpy" \
        else module.forward(params, x)
    _close(output, network.forward(spec, params, x, training=False).output, "eval output")
    assert running == {}
    trained_output = module.forward(params, x, training=True)[0]
    _close(trained_output, network.forward(spec, params, x, training=True).output,
           "training output")
