"""A user's model that is neither the source documents' MLP nor their CNN is checked layer for
layer as a ``net`` list (``models.structure._net``): a conv regression net with a bias-free
dense layer and dropout between hidden layers passes; the same net with a wrong backward in one
activation fails at that layer's delta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnparity.cli import main

pytestmark = pytest.mark.torch

MODEL = '''import torch
from torch import nn

ACTIVATION

def build():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), TANH, nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(27, 5, bias=False), nn.ReLU(),
                          nn.Dropout(0.3), nn.Linear(5, 1))
    return {"model": model, "loss": nn.MSELoss(),
            "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3)}
'''
WRONG_TANH = '''class Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y)  # should be 1 - y**2


class MyTanh(nn.Module):
    def forward(self, x):
        return Fn.apply(x)


NNPARITY_LAYERS = {"MyTanh": "tanh"}'''


def _check(tmp_path: Path, source: str) -> tuple[int, dict]:
    path = tmp_path / "regress.py"
    path.write_text(source)
    report = tmp_path / "r.json"
    code = main(["check", "--model-file", f"{path}:build", "--input-shape", "6,6,1",
                 "--dtype", "float64", "--json", str(report)])
    return code, json.loads(report.read_text())


def _tensor(comparison: dict) -> str:
    """A comparison's tensor (``tensor`` in report schema 2, ``name`` in 1)."""
    return comparison.get("tensor") or comparison["name"]


def _case(report: dict) -> dict:
    (case,) = report["cases"].values()
    (backend,) = case["backends"].values()
    return backend


def test_a_model_beyond_the_mlp_and_cnn_passes_as_a_net(tmp_path: Path) -> None:
    code, report = _check(tmp_path, MODEL.replace("ACTIVATION", "").replace("TANH", "nn.Tanh()"))
    assert code == 0
    tensors = {_tensor(c) for c in _case(report)["comparisons"]}
    assert {"z.conv1", "h.pool1", "h.flatten1", "h.dense2"} <= tensors
    assert {"dense1.W", "conv1.b", "dense2.b"} <= tensors
    assert "dense1.b" not in tensors


def test_a_wrong_backward_fails_at_its_layer(tmp_path: Path) -> None:
    code, report = _check(tmp_path, MODEL.replace("ACTIVATION", WRONG_TANH)
                          .replace("TANH", "MyTanh()"))
    assert code == 1
    failed = [c for c in _case(report)["comparisons"] if not c["passed"]]
    assert failed and failed[0]["stage"] == "delta" and _tensor(failed[0]) == "conv1"
