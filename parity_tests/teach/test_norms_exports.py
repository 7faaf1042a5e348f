"""Exports of networks with ``layernorm`` (first, and after a dense layer), SAME ``avgpool``
(the real cells only, and torch's ``count_include_pad``, symmetric and asymmetric padding),
``global_avgpool`` and the ``bce`` loss: the NumPy and JAX files' loss and gradients, the torch
and Keras files' output, against the reference (float64, within 1e-12)."""

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

SPECS = {
    "maps": NetSpec(input_shape=(7, 6, 2), loss="ce", reduction="mean", net=[
        {"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
        {"kind": "tanh"},
        {"kind": "avgpool", "size": 2, "padding": "same"},  # 7x6 -> 4x3, bottom row padded
        {"kind": "avgpool", "size": 3, "stride": 1, "padding": "same", "count_include_pad": True},
        {"kind": "avgpool", "size": 3, "stride": 1, "padding": "same"},  # symmetric, real cells
        {"kind": "avgpool", "size": 2, "padding": "same", "count_include_pad": True},  # right
        {"kind": "global_avgpool"}, {"kind": "layernorm", "epsilon": 1e-3},
        {"kind": "dense", "units": 3}]),
    "flat-bce": NetSpec(input_shape=(5,), loss="bce", reduction="sum", net=[
        {"kind": "layernorm"}, {"kind": "dense", "units": 4}, {"kind": "tanh"},
        {"kind": "layernorm", "epsilon": 1e-3}, {"kind": "dense", "units": 1}]),
}


def _export(framework: str, spec: NetSpec, folder: Path) -> ModuleType:
    spec_file = folder / "net.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    path = folder / f"norms_{framework}.py"
    assert main(["export", "--framework", framework, str(spec_file), "--dtype", "float64",
                 "-o", str(path)]) == 0
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _problem(spec: NetSpec) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(4)
    x = 2.0 * rng.standard_normal((3, *spec.input_shape))
    y = rng.integers(0, spec.output_dim, 3) if spec.loss == "ce" \
        else rng.integers(0, 2, (3, 1)).astype(float)
    params = init_params(spec, seed=1)
    for name, value in params.items():  # gamma and beta away from 1 and 0
        if not spec.is_weight(name):
            params[name] = value + rng.uniform(-0.5, 0.5, value.shape)
    return params, x, y, network.gradients(spec, params, x, y)


def _close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    c = compare_tensor("export", what, np.asarray(actual), np.asarray(expected),
                       REORDERED_FLOAT64)
    assert c.passed, f"{what}: max rel {c.max_rel:.1e} {c.note}"


@pytest.mark.parametrize("name", SPECS)
def test_numpy_export(name: str, tmp_path: Path) -> None:
    module = _export("numpy", SPECS[name], tmp_path)
    params, x, y, ref = _problem(SPECS[name])
    value, grads = module.gradients(params, x, y)
    _close(value, ref.loss, "loss")
    for key, grad in ref.grads.items():
        _close(grads[key], grad, key)


@pytest.mark.parametrize("name", SPECS)
def test_jax_export(name: str, tmp_path: Path) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed")
    previous = jax.config.jax_enable_x64
    try:
        module = _export("jax", SPECS[name], tmp_path)
        params, x, y, ref = _problem(SPECS[name])
        value, grads = module.gradients(params, x, y)
        _close(value, ref.loss, "loss")
        for key, grad in ref.grads.items():
            _close(grads[key], grad, key)
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.mark.torch
@pytest.mark.parametrize("name", SPECS)
def test_torch_export(name: str, tmp_path: Path) -> None:
    import torch

    spec = SPECS[name]
    module = _export("torch", spec, tmp_path)
    params, x, _, ref = _problem(spec)
    net = module.build()["model"]
    assert "LayerNorm" in repr(net)
    with torch.no_grad():
        for key, tensor in zip(spec.param_shapes(), net.parameters(), strict=True):
            tensor.copy_(torch.from_numpy(layout.to_framework("torch", key, params[key], spec)))
        x_in = layout.nhwc_to_nchw(x) if x.ndim == 4 else x
        out = net(torch.from_numpy(x_in)).numpy()
    _close(out, ref.output, "output")


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", SPECS)
def test_keras_export(name: str, tmp_path: Path) -> None:
    spec = SPECS[name]
    module = _export("keras", spec, tmp_path)
    params, x, _, ref = _problem(spec)
    net = module.build()["model"]
    for key, var in zip(spec.param_shapes(), net.trainable_variables, strict=True):
        var.assign(layout.to_framework("keras", key, params[key], spec))
    _close(np.asarray(net(x)), ref.output, "output")


ROUND_TRIP = NetSpec(input_shape=(5, 5, 2), loss="ce", net=[
    {"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
    {"kind": "tanh"},
    {"kind": "avgpool", "size": 2, "padding": "same", "count_include_pad": True},  # zero pad
    {"kind": "avgpool", "size": 3, "stride": 1, "padding": "same"},  # torch's own padding
    {"kind": "global_avgpool"}, {"kind": "layernorm"}, {"kind": "dense", "units": 3}])


@pytest.mark.parametrize("framework", [
    pytest.param("torch", marks=pytest.mark.torch),
    pytest.param("keras", marks=pytest.mark.tensorflow)])
def test_the_exported_file_passes_check_model_file(framework: str, tmp_path: Path) -> None:
    """The torch and Keras files of a net with the norm kinds map back onto the same list."""
    spec_file, path = tmp_path / "net.json", tmp_path / f"rt_{framework}.py"
    spec_file.write_text(json.dumps(ROUND_TRIP.to_dict()))
    assert main(["export", "--framework", framework, str(spec_file), "-o", str(path)]) == 0
    report = tmp_path / "r.json"
    assert main(["check", "--model-file", f"{path}:build", "--input-shape", "5,5,2",
                 "--json", str(report)]) == 0
    (case,) = json.loads(report.read_text())["cases"].values()
    assert NetSpec.from_dict(case["spec"]).net == ROUND_TRIP.net
