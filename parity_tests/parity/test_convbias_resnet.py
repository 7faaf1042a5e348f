"""ResNet's building blocks as users write them: a convolution without bias (before a batch
normalisation), a downsampling residual block whose 1x1 projection has a stride and no bias,
and ``relu(x + f(x))`` (an activation after the block): the reference (finite differences), the
``net`` JSON, the three frameworks' parity, and torch model files mapped onto them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import FLOAT64_WATCH
from nnparity.cli import main
from nnparity.parity.runner import compare_backend, gradcheck_comparisons
from nnparity.reference import NetSpec
from nnparity.reference.family import init_params, spec_from_dict
from nnparity.reference.optim import Optimizer


def resnet(variance: str = "biased", dtype: str = "float64") -> NetSpec:
    """A stem (conv without bias, batchnorm, relu), a downsampling block, global pool, dense."""
    def bn() -> dict:
        return {"kind": "batchnorm", "variance": variance}

    return NetSpec(input_shape=(7, 7, 2), loss="ce", dtype=dtype, net=[
        {"kind": "conv2d", "filters": 3, "kernel": 3, "padding": "same", "use_bias": False},
        bn(), {"kind": "relu"},
        {"kind": "residual", "projection": True, "projection_stride": 2,
         "projection_bias": False, "net": [
             {"kind": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same",
              "use_bias": False}, bn(), {"kind": "relu"},
             {"kind": "conv2d", "filters": 4, "kernel": 3, "padding": "same",
              "use_bias": False}, bn()]},
        {"kind": "relu"}, {"kind": "global_avgpool"}, {"kind": "dense", "units": 3}])


def data(spec: NetSpec, steps: int = 3) -> list:
    rng = np.random.default_rng(0)
    return [(rng.normal(size=(4, *spec.input_shape)), rng.integers(0, 3, 4))
            for _ in range(steps)]


def test_the_blocks_parameters_and_shapes():
    spec = resnet()
    shapes = spec.param_shapes()
    assert "conv1.W" in shapes and "conv1.b" not in shapes
    assert shapes["res1.W"] == (1, 1, 3, 4) and "res1.b" not in shapes
    assert spec.layer_shapes[-4] == (4, 4, 4)  # ceil(7 / 2): the block downsamples
    assert spec.layer_activations["batchnorm1"] == "relu"


def test_finite_differences_agree_with_the_reference():
    spec = resnet()
    x, y = data(spec)[0]
    checks = gradcheck_comparisons(spec, init_params(spec, seed=0), x, y)
    assert {c.name for c in checks} >= {"conv1.W", "res1.W", "conv2.W", "conv3.W"}
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_the_json_form_round_trips_and_old_files_keep_their_defaults():
    spec = resnet()
    again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    block = next(e for e in spec.to_dict()["net"] if e["kind"] == "residual")
    assert block["projection_stride"] == 2 and block["projection_bias"] is False
    old = NetSpec(input_shape=(4,), net=[{"kind": "residual", "projection": True,
                                           "net": [{"kind": "dense", "units": 3}]}])
    assert set(old.to_dict()["net"][0]) == {"kind", "net", "projection"}
    assert "res1.b" in old.param_shapes()


@pytest.mark.parametrize(("entry", "message"), [
    ({"kind": "residual", "projection_stride": 2,
      "net": [{"kind": "conv2d", "filters": 2, "kernel": 1, "stride": 2}]},
     "projection_stride needs"),
    ({"kind": "residual", "projection": True, "projection_stride": 3,
      "net": [{"kind": "conv2d", "filters": 2, "kernel": 3, "stride": 2}]},
     "1x1 conv of stride 3"),
])
def test_a_projection_that_cannot_match_is_refused_naming_it(entry, message):
    with pytest.raises(ValueError, match=message):
        NetSpec(input_shape=(6, 6, 1), net=[entry, {"kind": "flatten"},
                                            {"kind": "dense", "units": 2}])


def test_an_activation_after_a_pool_is_still_refused():
    with pytest.raises(ValueError, match="must follow a dense, conv2d, batchnorm or residual"):
        NetSpec(input_shape=(6, 6, 1), net=[
            {"kind": "conv2d", "filters": 2, "kernel": 3}, {"kind": "maxpool", "size": 2},
            {"kind": "relu"}, {"kind": "flatten"}, {"kind": "dense", "units": 2}])


@pytest.mark.parametrize(("backend_name", "variance"), [
    ("torch", "unbiased"), ("tensorflow", "biased"), ("jax", "biased")])
def test_the_frameworks_agree_in_float64(backend_name, variance):
    if registry.reason(backend_name):
        pytest.skip(registry.reason(backend_name))
    spec = resnet(variance)
    comparisons = compare_backend(
        registry.get(backend_name), spec, init_params(spec, seed=0), data(spec),
        lambda v: Optimizer("momentum", 0.05, variant=v), steps=3)
    assert all(c.passed for c in comparisons), [c for c in comparisons if not c.passed]
    assert max(c.max_rel for c in comparisons) <= FLOAT64_WATCH


MODELS = '''
import torch
from torch import nn


class Block(nn.Module):
    """torchvision's BasicBlock: convolutions without bias, a downsampling shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def net(stride):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                         nn.ReLU(), Block(4, 4 * stride, stride), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4 * stride, 3))


def identity():
    return net(1)


def downsampling():
    return net(2)
'''


@pytest.mark.parametrize("name", ["identity", "downsampling"])
def test_a_torch_resnet_block_passes_check_model_file(name, tmp_path: Path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "blocks.py"
    path.write_text(MODELS)
    report = tmp_path / "r.json"
    code = main(["check", "--model-file", f"{path}:{name}", "--loss", "ce",
                 "--input-shape", "7,7,1", "--json", str(report)])
    assert code == 0, capsys.readouterr().out
    (case,) = json.loads(report.read_text())["cases"].values()
    (block,) = [e for e in case["spec"]["net"] if e["kind"] == "residual"]
    assert all(not e.get("use_bias", True) for e in block["net"] if e["kind"] == "conv2d")
    if name == "downsampling":
        assert block["projection"] and block["projection_stride"] == 2
        assert block["projection_bias"] is False
    assert case["spec"]["net"][case["spec"]["net"].index(block) + 1]["kind"] == "relu"


KERAS_MODEL = """
import keras


def model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    x = keras.Input((7, 7, 1))
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(4, 3, padding="same", use_bias=False)(x)))
    f = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(h)
    f = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(L.ReLU()(f)))
    h = L.ReLU()(L.Add()([f, L.Conv2D(8, 1, strides=2, use_bias=False)(h)]))
    return keras.Model(x, L.Dense(3)(L.GlobalAveragePooling2D()(h)))
"""


def test_a_keras_resnet_block_passes_check_model_file(tmp_path: Path, capsys):
    pytest.importorskip("tensorflow")
    path = tmp_path / "kblock.py"
    path.write_text(KERAS_MODEL)
    report = tmp_path / "r.json"
    code = main(["check", "--model-file", f"{path}:model", "--loss", "ce", "--json",
                 str(report)])
    assert code == 0, capsys.readouterr().out
    (case,) = json.loads(report.read_text())["cases"].values()
    (block,) = [e for e in case["spec"]["net"] if e["kind"] == "residual"]
    assert block["projection_stride"] == 2 and block["projection_bias"] is False
