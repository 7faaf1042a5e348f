"""Port diagnoses of the norm kinds' convention traps, each confirmed by re-running the
reference with the port's setting: a LayerNorm epsilon left at the other framework's default
(torch 1e-5, Keras 1e-3), and torch's ``count_include_pad`` (the padded cells counted) against
Keras' SAME average pool (the real cells only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnparity.cli import main

TORCH_LN = """
import torch
from torch import nn
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.LayerNorm(6), nn.Linear(6, 3))
"""
KERAS_LN = """
import keras
def model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                             keras.layers.LayerNormalization({epsilon}), keras.layers.Dense(3)])
"""
KERAS_POOL = """
import keras
def model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((5, 5, 2)), L.Conv2D(3, 3, padding="same"),
                             L.Activation("tanh"), L.AveragePooling2D(3, 1, padding="same"),
                             L.Flatten(), L.Dense(3)])
"""
TORCH_POOL = """
import torch
from torch import nn
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(),
                         nn.AvgPool2d(3, 1, padding=1{counted}), nn.Flatten(),
                         nn.Linear(75, 3))
"""


def _file(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return f"{path}:model"


@pytest.mark.torch
@pytest.mark.tensorflow
@pytest.mark.parametrize(("epsilon", "code"), [("", 1), ("epsilon=1e-5", 0)])
def test_a_keras_port_keeping_its_layernorm_epsilon(epsilon: str, code: int, tmp_path: Path,
                                                   capsys) -> None:
    first = _file(tmp_path, "t.py", TORCH_LN)
    second = _file(tmp_path, "k.py", KERAS_LN.format(epsilon=epsilon))
    assert main(["check", "--port", first, second, "--transfer-weights", "--loss",
                 "ce"]) == code
    out = capsys.readouterr().out
    if code:
        assert "forward of h.layernorm1 differs" in out
        assert "'epsilon': 1e-05} in " in out and "'epsilon': 0.001} in " in out
        assert "torch's nn.LayerNorm has eps=1e-5, Keras' LayerNormalization epsilon=1e-3" in out
        assert "confirmed: the reference re-run with the second model's layer settings" in out


@pytest.mark.torch
@pytest.mark.tensorflow
@pytest.mark.parametrize(("counted", "code"), [("", 1), (", count_include_pad=False", 0)])
def test_a_torch_port_of_a_keras_same_average_pool(counted: str, code: int, tmp_path: Path,
                                                   capsys) -> None:
    first = _file(tmp_path, "k.py", KERAS_POOL)
    second = _file(tmp_path, "t.py", TORCH_POOL.format(counted=counted))
    assert main(["check", "--port", first, second, "--transfer-weights", "--loss", "ce",
                 "--input-shape", "5,5,2"]) == code
    out = capsys.readouterr().out
    if code:
        assert "forward of h.avgpool1 differs" in out
        assert "'count_include_pad': True} in " in out
        assert "count_include_pad=True by default), Keras' SAME averages the real cells" in out
        assert "confirmed: the reference re-run with the second model's layer settings" in out
