"""Exports of networks with residual blocks (identity and projected skips, flat and map
inputs): the NumPy and JAX files' loss and gradients against the reference, and the torch and
Keras files, loaded back by ``check --model-file``, mapped onto the same ``residual`` layers
and passing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from nnparity.backends.compare import REORDERED_FLOAT64, compare_tensor
from nnparity.cli import main
from nnparity.models import check
from nnparity.models.source import load
from nnparity.reference import NetSpec, network
from nnparity.reference.family import init_params

FLAT = NetSpec(input_shape=(6,), loss="ce", reduction="mean", weight_decay=0.01, net=[
    {"kind": "dense", "units": 5}, {"kind": "tanh"},
    {"kind": "residual", "net": [{"kind": "dense", "units": 5}, {"kind": "gelu"},
                                 {"kind": "dense", "units": 5}]},
    {"kind": "residual", "projection": True,
     "net": [{"kind": "dense", "units": 4}, {"kind": "sigmoid"}]},
    {"kind": "dense", "units": 3}])
MAP = NetSpec(input_shape=(5, 5, 2), loss="ce", reduction="sum", net=[
    {"kind": "residual", "projection": True,
     "net": [{"kind": "conv2d", "filters": 3, "kernel": 3}, {"kind": "relu"}]},
    {"kind": "residual", "net": [{"kind": "conv2d", "filters": 3, "kernel": 3},
                                 {"kind": "tanh"}]},
    {"kind": "flatten"}, {"kind": "dense", "units": 3}])
STRIDED = NetSpec(input_shape=(7, 7, 2), loss="ce", reduction="mean", net=[
    {"kind": "conv2d", "filters": 3, "kernel": 3, "use_bias": False}, {"kind": "relu"},
    {"kind": "residual", "projection": True, "projection_stride": 2, "projection_bias": False,
     "net": [{"kind": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "use_bias": False},
             {"kind": "tanh"}, {"kind": "conv2d", "filters": 4, "kernel": 3}]},
    {"kind": "relu"}, {"kind": "global_avgpool"}, {"kind": "dense", "units": 3}])
"""ResNet's downsampling block: convolutions without bias, a strided 1x1 projection without
bias, ``relu(x + f(x))``."""
SPECS = {"flat": FLAT, "map": MAP, "strided": STRIDED}


def _export(framework: str, spec: NetSpec, folder: Path) -> Path:
    spec_file = folder / "net.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    path = folder / f"residual_{framework}.py"
    assert main(["export", "--framework", framework, str(spec_file), "--dtype", "float64",
                 "-o", str(path)]) == 0
    return path


def _module(path: Path) -> ModuleType:
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _gradients_match(module: ModuleType, spec: NetSpec) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, *spec.input_shape))
    y = rng.integers(0, spec.output_dim, 3)
    params = init_params(spec, seed=1)
    ref = network.gradients(spec, params, x, y)
    value, grads = module.gradients(params, x, y)
    for what, actual, expected in [("loss", value, ref.loss),
                                   *((k, grads[k], g) for k, g in ref.grads.items())]:
        c = compare_tensor("export", what, np.asarray(actual), np.asarray(expected),
                           REORDERED_FLOAT64)
        assert c.passed, f"{what}: max rel {c.max_rel:.1e} {c.note}"


@pytest.mark.parametrize("net", list(SPECS))
def test_numpy_export(net: str, tmp_path: Path) -> None:
    _gradients_match(_module(_export("numpy", SPECS[net], tmp_path)), SPECS[net])


@pytest.mark.parametrize("net", list(SPECS))
def test_jax_export(net: str, tmp_path: Path) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed")
    previous = jax.config.jax_enable_x64
    try:
        _gradients_match(_module(_export("jax", SPECS[net], tmp_path)), SPECS[net])
    finally:
        jax.config.update("jax_enable_x64", previous)


def _blocks(spec: object) -> list:
    return [(layer.projection, [inner.kind for inner in layer.net])
            for layer in spec.net if layer.kind == "residual"]


@pytest.mark.parametrize("framework", [
    pytest.param("torch", marks=pytest.mark.torch),
    pytest.param("keras", marks=pytest.mark.tensorflow)])
@pytest.mark.parametrize("net", list(SPECS))
def test_framework_export_checks_as_the_same_blocks(framework: str, net: str,
                                                    tmp_path: Path, capsys) -> None:
    spec = SPECS[net].with_(weight_decay=0.0)  # torch's decay on weights only: two groups
    path = _export(framework, spec, tmp_path)
    model = check.adapt(load(f"{path}:build"))
    assert _blocks(model.spec) == _blocks(spec)
    assert main(["check", "--model-file", f"{path}:build"]) == 0, capsys.readouterr().out
