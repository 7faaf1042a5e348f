"""Exports are written from the spec's layer list: an MLP's dropout layers and a network
written as a ``net`` list reach every framework's file, checked against the reference.

The NumPy and JAX files take the dropout mask as an input, so they are compared with the
reference under the same mask. The torch and Keras files draw their own masks: their dropout
layers are found in the built model (two, ``p = 1 - keep_prob``, in the list's places) and
replaced by the same explicit mask, and the model's output is compared with the reference's.
"""

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
from nnparity.reference import MLPSpec, NetSpec, network
from nnparity.reference.family import init_params

DROPOUT_MLP = MLPSpec(4, (6, 5, 3), ("relu", "tanh", "identity"), keep_prob=0.5,
                      dropout_after=(1, 2), reduction="mean")
CONV_NET = NetSpec(input_shape=(12, 12, 1), loss="ce", reduction="mean", net=[
    {"kind": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": "same"},
    {"kind": "relu"}, {"kind": "maxpool", "size": 2}, {"kind": "flatten"},
    {"kind": "dense", "units": 16}, {"kind": "sigmoid"},
    {"kind": "dropout", "keep_prob": 0.5}, {"kind": "dense", "units": 5}])
SPECS = {"dropout-mlp": DROPOUT_MLP, "conv-net": CONV_NET}


def _export(framework: str, name: str, folder: Path) -> ModuleType:
    spec_file = folder / f"{name}.json"
    spec_file.write_text(json.dumps(SPECS[name].to_dict()))
    path = folder / f"{name.replace('-', '_')}_{framework}.py"
    assert main(["export", "--framework", framework, str(spec_file), "--dtype", "float64",
                 "-o", str(path)]) == 0
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _problem(name: str) -> dict:
    spec = SPECS[name]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, *spec.input_shape))
    y = rng.integers(0, spec.output_dim, 3)
    mask = (rng.random((3, spec.dropout_units)) < 0.5).astype("float64")
    params = init_params(spec, seed=1)
    return {"spec": spec, "params": params, "x": x, "y": y, "mask": mask,
            "ref": network.gradients(spec, params, x, y, dropout_mask=mask)}


def _close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    c = compare_tensor("export", what, np.asarray(actual), np.asarray(expected),
                       REORDERED_FLOAT64)
    assert c.passed, f"{what}: max rel {c.max_rel:.1e} {c.note}"


@pytest.mark.parametrize("name", SPECS)
def test_numpy_export_keeps_every_dropout(name: str, tmp_path: Path) -> None:
    module, p = _export("numpy", name, tmp_path), _problem(name)
    value, grads = module.gradients(p["params"], p["x"], p["y"], p["mask"])
    _close(value, p["ref"].loss, "loss")
    for key, grad in p["ref"].grads.items():
        _close(grads[key], grad, key)


@pytest.mark.parametrize("name", SPECS)
def test_jax_export_keeps_every_dropout(name: str, tmp_path: Path) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed")
    previous = jax.config.jax_enable_x64
    try:
        module, p = _export("jax", name, tmp_path), _problem(name)
        value, grads = module.gradients(p["params"], p["x"], p["y"], p["mask"])
        _close(value, p["ref"].loss, "loss")
        for key, grad in p["ref"].grads.items():
            _close(grads[key], grad, key)
    finally:
        jax.config.update("jax_enable_x64", previous)


def _dropout_columns(spec: object) -> list[slice]:
    return list(spec.dropout_columns.values())


@pytest.mark.torch
@pytest.mark.parametrize("name", SPECS)
def test_torch_export_keeps_every_dropout(name: str, tmp_path: Path) -> None:
    import torch
    from torch import nn

    module, p = _export("torch", name, tmp_path), _problem(name)
    spec, params = p["spec"], p["params"]
    net = module.build()["model"]
    drops = [(parent, child) for parent in net.modules()
             for child, m in parent.named_children() if isinstance(m, nn.Dropout)]
    assert len(drops) == len(spec.dropout_columns)
    mask = torch.from_numpy(p["mask"])

    class Masked(nn.Module):
        def __init__(self, columns: slice, keep: float) -> None:
            super().__init__()
            self.columns, self.keep = columns, keep

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            return h * mask[:, self.columns] / self.keep

    for (parent, child), columns in zip(drops, _dropout_columns(spec), strict=True):
        keep = 1 - getattr(parent, child).p
        assert keep == pytest.approx(0.5)
        setattr(parent, child, Masked(columns, keep))
    with torch.no_grad():
        for key, tensor in zip(spec.param_shapes(), net.parameters(), strict=True):
            tensor.copy_(torch.from_numpy(layout.to_framework("torch", key, params[key], spec)))
    x = p["x"] if p["x"].ndim == 2 else layout.nhwc_to_nchw(p["x"])
    _close(net(torch.from_numpy(x)).detach().numpy(), p["ref"].output, "output")


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", SPECS)
def test_keras_export_keeps_every_dropout(name: str, tmp_path: Path) -> None:
    from nnparity.backends.determinism import import_tensorflow

    tf, _ = import_tensorflow()
    module, p = _export("keras", name, tmp_path), _problem(name)
    spec, params = p["spec"], p["params"]
    net = module.build()["model"]
    for key, var in zip(spec.param_shapes(), net.trainable_variables, strict=True):
        var.assign(layout.to_framework("keras", key, params[key], spec))
    columns = iter(_dropout_columns(spec))
    h = tf.constant(p["x"])
    found = 0
    for layer in net.layers:
        if type(layer).__name__ == "Dropout":
            assert 1 - layer.rate == pytest.approx(0.5)
            h = h * p["mask"][:, next(columns)] / (1 - layer.rate)
            found += 1
        else:
            h = layer(h)
    assert found == len(spec.dropout_columns)
    _close(np.asarray(h), p["ref"].output, "output")
