"""Every export of the seed networks runs and computes the reference's numbers.

For the BP lecture's MLP (``seed000-iris``), the NumPy blog's ThreeNet (``seed003-iris``, with
weight decay) and the three-framework notes' CNN (``seed002-cnn``), each exported file (torch,
Keras, JAX, NumPy; float64) is imported, given the reference's weights, and its forward output,
loss, gradients and one optimiser step are compared with the reference: max rel <= 1e-12
(``REORDERED_FLOAT64``: the same float64 math in another summation order). The files import no
nnparity.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from nnparity.backends import layout
from nnparity.backends.compare import REORDERED_FLOAT64, compare_tensor
from nnparity.cli import main
from nnparity.export import source
from nnparity.reference import CNNSpec, ConvBlock, network, optim
from nnparity.reference.family import init_params

PRESETS = ("seed000-iris", "seed003-iris", "seed002-cnn")
# Beyond the seed networks: the log-loss without biases, PReLU, and a CNN with every padding
# case (stride-2 convs, an even kernel, asymmetric and overlapping pools, VALID).
OTHERS = ("seed001-diamond", "seed002-fc-prelu-lr0.1", "odd-cnn")
ODD_CNN = CNNSpec(input_shape=(17, 16, 2), conv=(
    ConvBlock(3, 3, stride=2, pool=3, pool_stride=1), ConvBlock(4, 4, stride=2),
    ConvBlock(3, 2, padding="VALID", pool=0)), dense=(5,), keep_prob=0.5, classes=3)


def _source(name: str, folder: Path) -> str:
    """A preset name, or the path of a spec file written for ``odd-cnn``."""
    if name != "odd-cnn":
        return name
    path = folder / "odd-cnn.json"
    path.write_text(json.dumps(ODD_CNN.to_dict()))
    return str(path)


def _export(framework: str, preset: str, folder: Path) -> tuple[ModuleType, str]:
    path = folder / f"{preset}_{framework}.py"
    assert main(["export", "--framework", framework, _source(preset, folder), "--dtype",
                 "float64", "-o", str(path)]) == 0
    text = path.read_text()
    module_spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module, text


def _problem(preset: str, variant: str, folder: Path) -> dict:
    spec, opt, _ = source.load(_source(preset, folder), {"dtype": "float64", "variant": variant})
    params = init_params(spec, seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, *spec.input_shape))
    y = (rng.integers(0, spec.output_dim, 3) if spec.loss == "ce"
         else rng.integers(0, 2, (3, spec.output_dim)).astype("float64"))  # dense 0/1 targets
    model = network
    ref = model.gradients(spec, params, x, y)
    stepped, _ = optim.step(opt, params, ref.grads, optim.init_state(opt, params))
    return {"spec": spec, "params": params, "x": x, "y": y, "ref": ref, "step": stepped}


def _assert_close(actual: dict, expected: dict, what: str) -> None:
    for name, value in expected.items():
        c = compare_tensor("export", name, np.asarray(actual[name]), np.asarray(value),
                           REORDERED_FLOAT64)
        assert c.passed, f"{what} {name}: max rel {c.max_rel:.1e} {c.note}"


def _standalone(text: str) -> None:
    assert "import nnparity" not in text and "from nnparity" not in text


@pytest.mark.parametrize("preset", PRESETS + OTHERS)
def test_numpy_export(preset: str, tmp_path: Path) -> None:
    module, text = _export("numpy", preset, tmp_path)
    _standalone(text)
    p = _problem(preset, "torch", tmp_path)
    out, _ = module.forward(p["params"], p["x"])
    value, grads = module.gradients(p["params"], p["x"], p["y"])
    stepped, _ = module.step(p["params"], module.init_state(p["params"]), grads)
    _assert_close({"o": out, "loss": value}, {"o": p["ref"].output, "loss": p["ref"].loss}, "numpy")
    _assert_close(grads, p["ref"].grads, "numpy grad")
    _assert_close(stepped, p["step"], "numpy step")


def test_numpy_export_with_a_dropout_mask(tmp_path: Path) -> None:
    module, _ = _export("numpy", "seed002-cnn", tmp_path)
    p = _problem("seed002-cnn", "torch", tmp_path)
    spec = p["spec"]
    mask = np.random.default_rng(3).integers(0, 2, (3, spec.dropout_units)).astype("float64")
    ref = network.gradients(spec, p["params"], p["x"], p["y"], dropout_mask=mask)
    value, grads = module.gradients(p["params"], p["x"], p["y"], mask)
    _assert_close({"loss": value, **grads}, {"loss": ref.loss, **ref.grads}, "numpy, mask")


@pytest.fixture
def jax_x64_restored() -> Iterator[None]:
    """The exported JAX file switches x64 on for its process: give the test process its own
    setting back afterwards."""
    jax = pytest.importorskip("jax", reason="jax is not installed")
    previous = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("preset", [*PRESETS[:2], pytest.param(PRESETS[2], marks=pytest.mark.slow),
                                    *OTHERS])
def test_jax_export(preset: str, tmp_path: Path, jax_x64_restored: None) -> None:
    module, text = _export("jax", preset, tmp_path)
    _standalone(text)
    p = _problem(preset, "torch", tmp_path)
    value, grads = module.gradients(p["params"], p["x"], p["y"])
    stepped, _ = module.step(p["params"], module.init_state(p["params"]), grads)
    _assert_close({"o": module.forward(p["params"], p["x"]), "loss": value},
                  {"o": p["ref"].output, "loss": p["ref"].loss}, "jax")
    _assert_close(grads, p["ref"].grads, "jax grad")
    _assert_close(stepped, p["step"], "jax step")


@pytest.mark.torch
@pytest.mark.parametrize("preset", PRESETS + OTHERS)
def test_torch_export(preset: str, tmp_path: Path) -> None:
    import torch

    module, text = _export("torch", preset, tmp_path)
    _standalone(text)
    p = _problem(preset, "torch", tmp_path)
    spec, params = p["spec"], p["params"]
    parts = module.build()
    net = parts["model"].eval()  # no dropout: the reference without a mask
    names = list(spec.param_shapes())
    with torch.no_grad():
        for name, tensor in zip(names, net.parameters(), strict=True):
            tensor.copy_(torch.from_numpy(layout.to_framework("torch", name, params[name], spec)))
    x = torch.from_numpy(p["x"] if p["x"].ndim == 2 else layout.nhwc_to_nchw(p["x"]))
    out = net(x)
    loss = parts["loss"](out, torch.from_numpy(p["y"]))
    loss.backward()
    decay = {k: spec.weight_decay * params[k] for k in names if spec.is_weight(k)}
    grads = {k: layout.from_framework("torch", k, t.grad.numpy(), spec) + decay.get(k, 0)
             for k, t in zip(names, net.parameters(), strict=True)}
    penalty = sum(0.5 * spec.weight_decay * np.sum(params[k] ** 2) for k in decay)
    parts["optimizer"].step()
    stepped = {k: layout.from_framework("torch", k, t.detach().numpy(), spec)
               for k, t in zip(names, net.parameters(), strict=True)}
    _assert_close({"o": out.detach().numpy(), "loss": loss.item() + penalty},
                  {"o": p["ref"].output, "loss": p["ref"].loss}, "torch")
    _assert_close(grads, p["ref"].grads, "torch grad")
    _assert_close(stepped, p["step"], "torch step")


@pytest.mark.tensorflow
@pytest.mark.parametrize("preset", PRESETS + OTHERS)
def test_keras_export(preset: str, tmp_path: Path) -> None:
    from nnparity.backends.determinism import import_tensorflow

    tf, _ = import_tensorflow()
    module, text = _export("keras", preset, tmp_path)
    _standalone(text)
    p = _problem(preset, "keras", tmp_path)
    spec, params = p["spec"], p["params"]
    parts = module.build()
    net, names = parts["model"], list(spec.param_shapes())
    for name, var in zip(names, net.trainable_variables, strict=True):
        var.assign(layout.to_framework("keras", name, params[name], spec))
    with tf.GradientTape() as tape:
        out = net(p["x"], training=False)
        loss = parts["loss"](p["y"], out) + sum(net.losses)
    tapes = tape.gradient(loss, net.trainable_variables)
    grads = {k: layout.from_framework("keras", k, np.asarray(g), spec)
             for k, g in zip(names, tapes, strict=True)}
    parts["optimizer"].apply_gradients(zip(tapes, net.trainable_variables, strict=True))
    stepped = {k: layout.from_framework("keras", k, np.asarray(v.value), spec)
               for k, v in zip(names, net.trainable_variables, strict=True)}
    _assert_close({"o": np.asarray(out), "loss": float(loss)},
                  {"o": p["ref"].output, "loss": p["ref"].loss}, "keras")
    _assert_close(grads, p["ref"].grads, "keras grad")
    _assert_close(stepped, p["step"], "keras step")


def test_a_spec_file_exports_and_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    spec_file = tmp_path / "spec.json"
    spec, _, _ = source.load("seed000-iris", {})
    spec_file.write_text(json.dumps(spec.to_dict()))
    assert main(["export", "--framework", "numpy", str(spec_file)]) == 0
    assert "def gradients(params, x, y, mask=None):" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{")
    assert main(["export", "--framework", "torch", str(tmp_path / "bad.json"),
                 "-o", str(tmp_path / "out.py")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json: not JSON" in err
    assert not (tmp_path / "out.py").exists()


@pytest.mark.parametrize(("framework", "preset"), [
    pytest.param("torch", "seed000-iris", marks=pytest.mark.torch),
    pytest.param("keras", "seed003-iris", marks=pytest.mark.tensorflow),
    pytest.param("torch", "seed002-cnn", marks=[pytest.mark.torch, pytest.mark.slow]),
])
def test_check_model_file_passes_an_export(framework: str, preset: str, tmp_path: Path,
                                           capsys) -> None:
    path = tmp_path / f"{preset}_{framework}.py"
    assert main(["export", "--framework", framework, preset, "--dtype", "float64",
                 "-o", str(path)]) == 0
    assert main(["check", "--model-file", f"{path}:build"]) == 0, capsys.readouterr()


@pytest.mark.torch
def test_check_model_file_refuses_torch_weight_decay_on_weights_only(tmp_path: Path,
                                                                     capsys) -> None:
    """The file decays weights only (two parameter groups); check reads one group."""
    path = tmp_path / "threenet_torch.py"
    assert main(["export", "--framework", "torch", "seed003-iris", "-o", str(path)]) == 0
    assert main(["check", "--model-file", f"{path}:build"]) == 2
    assert "2 parameter groups" in capsys.readouterr().err
