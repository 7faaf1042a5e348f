"""Residual blocks in users' models: a torch module adding its input to its body's output and a
Keras functional ``Add``, found from the traced data flow (not from names) and checked tensor
for tensor against the reference's ``residual`` layers; sums that are no residual block, and
projections the reference does not compute, are refused naming the layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.models import check
from nnparity.models.source import load

STAGES = {"forward", "loss", "delta", "grad", "update"}


def _kinds(net: tuple) -> list:
    return [[layer.kind, _kinds(layer.net)] if layer.kind == "residual" else layer.kind
            for layer in net]


@pytest.mark.torch
def test_a_torch_model_with_gelu_residual_blocks_and_dense_layers_passes(check_file) -> None:
    result = check_file("torch_residual.py:model")
    assert result.passed, result.divergence
    assert {c.stage for c in result.comparisons} == STAGES
    labels = {c.label for c in result.comparisons}
    assert {"forward h.res1", "forward z.dense3", "delta dense2", "grad res2.W",
            "update step3.res2.b"} <= labels


@pytest.mark.torch
def test_the_torch_blocks_map_onto_residual_layers(example) -> None:
    model = check.adapt(load(example("torch_residual.py:model"), loss="ce"))
    assert _kinds(model.spec.net) == [
        "dense", "tanh", ["residual", ["dense", "gelu", "dense"]],
        ["residual", ["dense", "tanh"]], "dense"]
    assert [block.projection for block in model.spec.net[2:4]] == [False, True]
    assert model.structure.params["res2.W"][0] != model.structure.params["dense4.W"][0]


@pytest.mark.torch
def test_a_torch_conv_block_written_in_forward_passes(example, capsys) -> None:
    assert main(["check", "--model-file", example("torch_residual.py:cnn")]) == 0, \
        capsys.readouterr().out


TORCH_SUMS = """
import torch
from torch import nn
class Residual(nn.Module):  # named like a block, but no sum: a plain chain
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
    def forward(self, x):
        return torch.tanh(self.fc(x))
class TwoBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a1, self.a2 = nn.Linear(4, 4), nn.Linear(4, 4)
        self.b1, self.b2 = nn.Linear(4, 4), nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)
    def forward(self, x):
        return self.out(self.a2(torch.tanh(self.a1(x))) + self.b2(torch.tanh(self.b1(x))))
class Unbiased(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.skip, self.out = nn.Linear(4, 3), nn.Linear(4, 3, bias=False), nn.Linear(3, 2)
    def forward(self, x):
        return self.out(torch.tanh(self.fc(x)) + self.skip(x))
class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.out = nn.Linear(4, 4), nn.Linear(4, 2)
    def forward(self, x):
        h = self.fc(x)
        h += x
        return self.out(h)
def named():
    torch.manual_seed(0)
    return nn.Sequential(Residual(), nn.Linear(4, 2)).double()
def branches():
    torch.manual_seed(0)
    return TwoBranches().double()
def in_place():
    torch.manual_seed(0)
    return InPlace().double()
def unbiased():
    torch.manual_seed(0)
    return Unbiased().double()
"""


@pytest.mark.torch
@pytest.mark.parametrize(("builder", "code", "message"), [
    ("named", 0, ""),
    ("branches", 2, "add() in forward: a sum that is not x + f(x) over a chain of layers"),
    ("unbiased", 0, ""),  # a projection without bias: projection_bias false
    ("in_place", 2, "add_() in forward: an in-place sum (out += x) overwrites"),
])
def test_torch_sums_are_traced_not_guessed(builder: str, code: int, message: str,
                                          tmp_path: Path, capsys) -> None:
    path = tmp_path / "sums.py"
    path.write_text(TORCH_SUMS)
    assert main(["check", "--model-file", f"{path}:{builder}", "--loss", "ce"]) == code
    assert message in capsys.readouterr().err
    if builder == "named":
        model = check.adapt(load(f"{path}:named", loss="ce"))
        assert [layer.kind for layer in model.spec.net][:3] == ["dense", "tanh", "dense"]
        assert "residual" not in {layer.kind for layer in model.spec.net}
    if builder == "unbiased":
        model = check.adapt(load(f"{path}:unbiased", loss="ce"))
        block = next(layer for layer in model.spec.net if layer.kind == "residual")
        assert block.projection and not block.projection_bias


@pytest.mark.tensorflow
def test_a_keras_functional_model_with_add_passes(check_file, example) -> None:
    result = check_file("keras_residual.py:model")
    assert result.passed, result.divergence
    assert {c.stage for c in result.comparisons} == STAGES
    model = check.adapt(load(example("keras_residual.py:model"), loss="ce"))
    assert _kinds(model.spec.net) == [
        "dense", "tanh", ["residual", ["dense", "sigmoid", "dense"]],
        ["residual", ["dense", "tanh"]], "dense"]
    assert [block.projection for block in model.spec.net[2:4]] == [False, True]


@pytest.mark.tensorflow
def test_a_keras_conv_block_passes(check_file) -> None:
    result = check_file("keras_residual.py:cnn")
    assert result.passed, result.divergence
    assert "forward h.res1" in {c.label for c in result.comparisons}
