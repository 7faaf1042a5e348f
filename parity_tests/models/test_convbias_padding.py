"""A convolution's padding as torch writes it (``padding=p``: p zeros on every side), where it is
not TensorFlow's SAME (a stride-2 3x3 convolution of an even map, ResNet's downsampling): the
reference computes it (``"padding": p``) on every backend, torch and Keras models map onto it
(``padding=1``; ``ZeroPadding2D(1)`` before a VALID ``Conv2D``), and a port of a Keras SAME
convolution written with ``padding=1`` fails with the diagnosis naming both paddings."""

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
from nnparity.reference.conv import output_size, padding_amounts
from nnparity.reference.family import init_params
from nnparity.reference.optim import Optimizer

SPEC = NetSpec(input_shape=(8, 8, 2), loss="ce", net=[
    {"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": 1}, {"kind": "relu"},
    {"kind": "conv2d", "filters": 2, "kernel": 2, "padding": 2, "use_bias": False},
    {"kind": "tanh"}, {"kind": "flatten"}, {"kind": "dense", "units": 3}])


def test_explicit_padding_is_torchs_rule():
    assert padding_amounts((8, 8), (3, 3), 2, 1) == ((1, 1), (1, 1))
    assert padding_amounts((8, 8), (3, 3), 2, "SAME") == ((0, 1), (0, 1))
    assert [output_size(8, 3, 2, 1), output_size(8, 2, 1, 2)] == [4, 11]
    assert SPEC.layer_shapes[2] == (4, 4, 3) and SPEC.layer_shapes[3] == (7, 7, 2)


@pytest.mark.parametrize("bad", [-1, True, "1", 1.5])
def test_a_bad_padding_is_refused(bad):
    with pytest.raises(ValueError, match="padding"):
        NetSpec(input_shape=(8, 8, 1), net=[{"kind": "conv2d", "filters": 1, "kernel": 3,
                                             "padding": bad}, {"kind": "flatten"},
                                            {"kind": "dense", "units": 2}])


def test_finite_differences_and_the_json_form():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 8, 8, 2)), np.array([0, 1, 2])
    checks = gradcheck_comparisons(SPEC, init_params(SPEC, seed=0), x, y)
    assert all(c.passed for c in checks)
    assert SPEC.to_dict()["net"][0]["padding"] == 1


@pytest.mark.parametrize("backend_name", ["torch", "tensorflow", "jax"])
def test_the_frameworks_agree_in_float64(backend_name):
    if registry.reason(backend_name):
        pytest.skip(registry.reason(backend_name))
    rng = np.random.default_rng(1)
    data = [(rng.normal(size=(3, 8, 8, 2)), rng.integers(0, 3, 3)) for _ in range(2)]
    comparisons = compare_backend(registry.get(backend_name), SPEC, init_params(SPEC, seed=0),
                                  data, lambda v: Optimizer("adam", 0.01, variant=v), steps=2)
    assert all(c.passed for c in comparisons), [c for c in comparisons if not c.passed]
    assert max(c.max_rel for c in comparisons) <= FLOAT64_WATCH


KERAS_SAME = """
import keras
def model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(3, 3, strides=2, padding="same"),
                             L.ReLU(), L.Flatten(), L.Dense(3)])
"""
KERAS_PADDED = """
import keras
def model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((8, 8, 2)), L.ZeroPadding2D(1),
                             L.Conv2D(3, 3, strides=2), L.ReLU(), L.Flatten(), L.Dense(3)])
"""
TORCH_PADDED = """
import torch
from torch import nn
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(48, 3))
"""


def _file(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return f"{path}:model"


@pytest.mark.tensorflow
def test_keras_zero_padding_before_a_valid_conv_is_that_padding(tmp_path: Path, capsys):
    report = tmp_path / "r.json"
    assert main(["check", "--model-file", _file(tmp_path, "k.py", KERAS_PADDED), "--loss",
                 "ce", "--json", str(report)]) == 0, capsys.readouterr().out
    (case,) = json.loads(report.read_text())["cases"].values()
    assert case["spec"]["net"][0]["padding"] == 1


@pytest.mark.torch
@pytest.mark.tensorflow
def test_a_torch_port_with_padding_1_of_a_keras_same_conv_names_the_paddings(tmp_path: Path,
                                                                             capsys):
    """The Keras SAME model maps as the source documents' CNN, the port (padding 1, no such
    CNN) as a list of layers: not the same network, and the refusal says why."""
    first = _file(tmp_path, "k.py", KERAS_SAME)
    second = _file(tmp_path, "t.py", TORCH_PADDED)
    assert main(["check", "--port", first, second, "--transfer-weights", "--loss", "ce",
                 "--input-shape", "8,8,2"]) == 2
    err = capsys.readouterr().err
    assert "a convolution pads 1 there and 'SAME' here" in err
    assert "torch's padding=p puts p zeros on every side" in err


@pytest.mark.torch
@pytest.mark.tensorflow
def test_a_torch_port_of_a_keras_model_padded_explicitly_passes(tmp_path: Path, capsys):
    first = _file(tmp_path, "k.py", KERAS_PADDED)
    second = _file(tmp_path, "t.py", TORCH_PADDED)
    assert main(["check", "--port", first, second, "--transfer-weights", "--loss", "ce",
                 "--input-shape", "8,8,2"]) == 0, capsys.readouterr().out
