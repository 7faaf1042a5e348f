"""Flax NNX models with batch normalisation through ``check --model-file``: a module with
``nnx.BatchNorm``, ``nnx.gelu`` and a residual add ``h + f(h)`` (traced from the data flow)
and a CNN with ``nnx.BatchNorm`` and a mean over H and W (a global average pool) pass in
float64 at the table's tolerance, the running statistics compared after every step as tensors
of their own; a model that evaluates on the batch's statistics (``use_running_average=False``
passed in ``__call__``) fails with the training-mode diagnosis; a batch normalisation that
weighs the new batch by its momentum (torch's convention, planted in a subclass) fails at the
running mean; a torch -> Flax port with torch's momentum copied verbatim is diagnosed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnparity.cli import main

jax = pytest.importorskip("jax")
pytest.importorskip("flax.nnx", reason="flax is not installed: pip install nnparity[all]")

HEAD = """
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from nnparity import Optimizer
jax.config.update("jax_enable_x64", True)
F64 = {"param_dtype": jnp.float64}
"""
RESIDUAL = HEAD + """
class Net(nnx.Module):
    def __init__(self, rngs):
        self.fc1 = nnx.Linear(4, 6, use_bias=False, rngs=rngs, **F64)
        self.bn = nnx.BatchNorm(6, rngs=rngs, **F64)
        self.fc2 = nnx.Linear(6, 6, rngs=rngs, **F64)
        self.out = nnx.Linear(6, 3, rngs=rngs, **F64)

    def __call__(self, x):
        h = nnx.gelu(self.bn(self.fc1(x){call}))
        h = h + nnx.tanh(self.fc2(h))
        return self.out(h)

def model():
    return {"model": Net(nnx.Rngs(0)), "loss": "ce",
            "optimizer": (optax.sgd(0.1, momentum=0.9), Optimizer("momentum", lr=0.1))}
"""
CNN = HEAD + """
class Net(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 3, (3, 3), padding="SAME", rngs=rngs, **F64)
        self.bn = nnx.BatchNorm(3, momentum=0.9, rngs=rngs, **F64)
        self.fc = nnx.Linear(3, 3, rngs=rngs, **F64)

    def __call__(self, x):
        h = self.bn(nnx.relu(self.conv(x)))
        return self.fc(jnp.mean(h, axis=(1, 2)))

def model():
    return {"model": Net(nnx.Rngs(0)), "loss": "ce", "input_shape": (5, 5, 2),
            "optimizer": (optax.adam(0.01), Optimizer("adam", lr=0.01))}
"""
TORCH_MOMENTUM = HEAD + """
class TorchMomentumBatchNorm(nnx.BatchNorm):
    '''The mistake: ``momentum`` read as torch's, the weight of the new batch.'''

    def __call__(self, x, use_running_average=None):
        old = self.mean[...], self.var[...]
        y = super().__call__(x, use_running_average)
        if not self.use_running_average and use_running_average is not True:
            m = self.momentum
            for stat, before in zip((self.mean, self.var), old):
                batch = (stat[...] - m * before) / (1 - m)
                stat[...] = (1 - m) * before + m * batch
        return y

def model():
    rngs = nnx.Rngs(0)
    return {"model": nnx.Sequential(nnx.Linear(4, 6, use_bias=False, rngs=rngs, **F64),
                                    TorchMomentumBatchNorm(6, momentum=0.9, rngs=rngs, **F64),
                                    nnx.relu, nnx.Linear(6, 3, rngs=rngs, **F64)),
            "loss": "ce", "optimizer": (optax.sgd(0.1), Optimizer("sgd", lr=0.1))}
"""


@pytest.fixture(autouse=True)
def _x64_restored():
    """The model files turn on JAX's float64; put the setting back for the other tests."""
    before = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", before)


def _check(tmp_path: Path, text: str, *extra: str) -> tuple[int, dict]:
    path, report = tmp_path / "net.py", tmp_path / "r.json"
    path.write_text(text)
    code = main(["check", "--model-file", f"{path}:model", "--timeout", "600", "--json",
                 str(report), *extra])
    (case,) = json.loads(report.read_text())["cases"].values()
    (result,) = case["backends"].values()
    return code, {**result, "spec": case["spec"]}


def _batchnorm(result: dict) -> dict:
    (layer,) = [entry for entry in result["spec"]["net"] if entry["kind"] == "batchnorm"]
    return layer


def test_batchnorm_gelu_and_a_residual_add_pass_in_float64(tmp_path: Path) -> None:
    code, result = _check(tmp_path, RESIDUAL.replace("{call}", ""))
    failed = [c for c in result["comparisons"] if not c["passed"]]
    assert code == 0, failed
    assert [entry["kind"] for entry in result["spec"]["net"]] == [
        "dense", "batchnorm", "gelu", "residual", "dense"]
    assert _batchnorm(result) == {"kind": "batchnorm", "momentum": 0.99, "epsilon": 1e-5,
                                  "variance": "biased"}
    assert result["spec"]["net"][2]["approximate"] == "tanh"  # jax.nn.gelu's default
    assert {c["tol"] for c in result["comparisons"]} == {1e-10}
    names = {c["tensor"] for c in result["comparisons"]}
    assert {"z.batchnorm1", "batchnorm1.gamma", "step1.batchnorm1.mean", "step3.batchnorm1.var",
            "h.res1", "eval.output"} <= names
    assert any("Flax holds BatchNorm's running statistics in float32" in note
               for note in result["notes"])


def test_a_cnn_with_batchnorm_and_a_mean_over_h_and_w_passes_in_float64(tmp_path: Path) -> None:
    code, result = _check(tmp_path, CNN)
    failed = [c for c in result["comparisons"] if not c["passed"]]
    assert code == 0, failed
    assert [entry["kind"] for entry in result["spec"]["net"]] == [
        "conv2d", "relu", "batchnorm", "global_avgpool", "dense"]
    assert _batchnorm(result)["momentum"] == 0.9
    assert {c["tol"] for c in result["comparisons"]} == {1e-10}
    assert {"step3.batchnorm1.mean", "h.global_avgpool1"} <= {c["tensor"]
                                                             for c in result["comparisons"]}


def test_batch_statistics_at_evaluation_are_diagnosed(tmp_path: Path) -> None:
    """``use_running_average=False`` passed in ``__call__`` wins over ``model.eval()``."""
    code, result = _check(tmp_path, RESIDUAL.replace("{call}", ", use_running_average=False"))
    assert code == 1
    failed = [c["tensor"] for c in result["comparisons"] if not c["passed"]]
    assert "eval.output" in failed
    assert [d["code"] for d in result["diagnosis"]] == ["batchnorm-training-mode"]
    assert "Flax: model.eval()" in result["diagnosis"][0]["message"]


def test_torch_s_momentum_convention_in_a_flax_layer_fails_at_the_running_mean(
        tmp_path: Path) -> None:
    code, result = _check(tmp_path, TORCH_MOMENTUM)
    assert code == 1
    failed = [c for c in result["comparisons"] if not c["passed"]]
    assert failed and {c["stage"] for c in failed} == {"update"}
    assert failed[0]["tensor"] == "step1.batchnorm1.mean"


TORCH = """
import torch
from torch import nn
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(),
                         nn.Linear(6, 3))
"""
FLAX = """
from flax import nnx
def model():
    rngs = nnx.Rngs(0)
    return nnx.Sequential(nnx.Linear(4, 6, use_bias=False, rngs=rngs),
                          nnx.BatchNorm(6, momentum={momentum}, rngs=rngs), nnx.relu,
                          nnx.Linear(6, 3, rngs=rngs))
"""


@pytest.mark.torch
@pytest.mark.parametrize(("momentum", "code", "diagnosis"), [
    (0.9, 0, None),  # torch's 0.1 mapped: 1 - 0.1
    (0.1, 1, "batchnorm-momentum"),  # torch's momentum copied verbatim
])
def test_a_torch_to_flax_port(momentum: float, code: int, diagnosis: str | None,
                              tmp_path: Path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "t.py").write_text(TORCH)
    (tmp_path / "f.py").write_text(FLAX.format(momentum=momentum))
    report = tmp_path / "r.json"
    assert main(["check", "--port", f"{tmp_path / 't.py'}:model", f"{tmp_path / 'f.py'}:model",
                 "--transfer-weights", "--loss", "ce", "--timeout", "600", "--json",
                 str(report)]) == code
    port = next(c for c in json.loads(report.read_text())["cases"].values()
                if "port" in c["backends"])["backends"]["port"]
    assert any("running variance estimators differ by design" in note for note in port["notes"])
    assert {"train.batchnorm1.mean", "train.batchnorm1.var"} <= {c["tensor"]
                                                                 for c in port["comparisons"]}
    assert [d["code"] for d in port["diagnosis"]] == ([diagnosis] if diagnosis else [])
