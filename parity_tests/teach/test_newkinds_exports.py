"""Exports of a network with ``gelu`` (both forms) and ``avgpool``: the NumPy and JAX files'
loss and gradients, and the torch and Keras files' output, against the reference."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from nnparity.backends import layout
from nnparity.backends.compare import REORDERED_FLOAT64, compare_tensor
from nnparity.cli import main
from nnparity.reference import NetSpec, network
from nnparity.reference.family import init_params

SPEC = NetSpec(input_shape=(9, 9, 2), loss="ce", reduction="mean", net=[
    {"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
    {"kind": "gelu"}, {"kind": "avgpool", "size": 2, "stride": 1}, {"kind": "avgpool", "size": 2},
    {"kind": "flatten"}, {"kind": "dense", "units": 5}, {"kind": "gelu", "approximate": "tanh"},
    {"kind": "dense", "units": 3}])


def _export(framework: str, folder: Path) -> ModuleType:
    spec_file = folder / "net.json"
    spec_file.write_text(json.dumps(SPEC.to_dict()))
    path = folder / f"newkinds_{framework}.py"
    assert main(["export", "--framework", framework, str(spec_file), "--dtype", "float64",
                 "-o", str(path)]) == 0
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _problem() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(4)
    x = 2.0 * rng.standard_normal((3, *SPEC.input_shape))
    y = rng.integers(0, SPEC.output_dim, 3)
    params = init_params(SPEC, seed=1)
    return params, x, y, network.gradients(SPEC, params, x, y)


def _close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    c = compare_tensor("export", what, np.asarray(actual), np.asarray(expected),
                       REORDERED_FLOAT64)
    assert c.passed, f"{what}: max rel {c.max_rel:.1e} {c.note}"


def test_numpy_export(tmp_path: Path) -> None:
    module = _export("numpy", tmp_path)
    params, x, y, ref = _problem()
    value, grads = module.gradients(params, x, y)
    _close(value, ref.loss, "loss")
    for key, grad in ref.grads.items():
        _close(grads[key], grad, key)


def test_jax_export(tmp_path: Path) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed")
    previous = jax.config.jax_enable_x64
    try:
        module = _export("jax", tmp_path)
        params, x, y, ref = _problem()
        value, grads = module.gradients(params, x, y)
        _close(value, ref.loss, "loss")
        for key, grad in ref.grads.items():
            _close(grads[key], grad, key)
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.mark.torch
def test_torch_export(tmp_path: Path) -> None:
    import torch

    module = _export("torch", tmp_path)
    params, x, _, ref = _problem()
    net = module.build()["model"]
    assert "approximate='tanh'" in repr(net) and "AvgPool2d" in repr(net)
    with torch.no_grad():
        for key, tensor in zip(SPEC.param_shapes(), net.parameters(), strict=True):
            tensor.copy_(torch.from_numpy(layout.to_framework("torch", key, params[key], SPEC)))
        out = net(torch.from_numpy(layout.nhwc_to_nchw(x))).numpy()
    _close(out, ref.output, "output")


@pytest.mark.tensorflow
def test_keras_export(tmp_path: Path) -> None:
    module = _export("keras", tmp_path)
    params, x, _, ref = _problem()
    net = module.build()["model"]
    for key, var in zip(SPEC.param_shapes(), net.trainable_variables, strict=True):
        var.assign(layout.to_framework("keras", key, params[key], SPEC))
    _close(np.asarray(net(x)), ref.output, "output")
