"""The port check: two model files against each other, each with its own weights (or, with
``transfer=True``, the first's transferred through the canonical layout), the optimisers'
designed drift stated instead of failed."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.errors import InputError
from nnparity.models import check
from nnparity.models.port import port
from nnparity.models.source import load

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]


def _models(example, *targets):
    return [check.adapt(load(example(t), loss="ce")) for t in targets]


def test_a_keras_mlp_and_its_torch_port_agree_with_the_weights_transferred(example):
    """--transfer-weights: the architecture comparison passes; the own weights are reported on."""
    keras_mlp, torch_mlp = _models(example, "keras_mlp.py:model", "torch_mlp.py:model")
    assert keras_mlp.params()["W1"].tolist() != torch_mlp.params()["W1"].tolist()
    result = port(keras_mlp, torch_mlp, ("keras", "torch"), transfer=True)
    assert result.passed, result.divergence
    assert torch_mlp.params()["W1"].tolist() == keras_mlp.params()["W1"].tolist()
    assert {c.stage for c in result.comparisons} == {"forward", "loss", "delta", "grad"}
    own, drift = result.notes
    assert own.startswith("with each model's own weights: forward of z.layer1 differs")
    assert "the architectures are equivalent; your weights are not: every weight differs" in own
    assert drift.startswith("the optimisers differ (keras adam vs torch momentum)")
    assert "expected drift after 3 steps" in drift


def test_two_independently_initialised_models_fail_as_a_port_on_their_own_weights(example):
    keras_mlp, torch_mlp = _models(example, "keras_mlp.py:model", "torch_mlp.py:model")
    result = port(keras_mlp, torch_mlp, ("keras", "torch"))
    assert not result.passed
    assert result.diagnosis.startswith("the architectures are equivalent; your weights are not: "
                                       "every weight differs from the first model's")


def test_a_port_with_other_shapes_is_refused(example):
    torch_mlp, sigmoid = _models(example, "torch_mlp.py:model", "torch_custom_sigmoid.py:correct")
    with pytest.raises(InputError, match="is not a port of"):
        port(torch_mlp, sigmoid, ("a", "b"))


def test_prelu_slope_sharing_between_frameworks_is_named(tmp_path):
    torch_file, keras_file = tmp_path / "t.py", tmp_path / "k.py"
    torch_file.write_text("import torch\nfrom torch import nn\ndef model():\n    return "
                          "nn.Sequential(nn.Linear(3, 4), nn.PReLU(), nn.Linear(4, 2))\n")
    keras_file.write_text("import keras\ndef model():\n    return keras.Sequential(["
                          "keras.Input((3,)), keras.layers.Dense(4), keras.layers.PReLU(), "
                          "keras.layers.Dense(2)])\n")
    a, b = (check.adapt(load(f"{f}:model", loss="ce")) for f in (keras_file, torch_file))
    with pytest.raises(InputError, match="PReLU slope sharing: Keras' PReLU"):
        port(a, b, ("keras", "torch"))


@pytest.mark.slow
def test_the_seed002_cnn_in_keras_and_its_torch_port(example, capsys):
    targets = [example("seed002_keras.py:model"), example("seed002_torch.py:model")]
    assert main(["check", "--port", targets[0], targets[1], "--transfer-weights"]) == 0
    out = capsys.readouterr().out
    assert "3 passed, 0 failed" in out
    assert "adam differs by design (keras's vs torch's formulation)" in out


KERAS_CNN = """
import keras
def model():
    keras.utils.set_random_seed(7)
    L = keras.layers
    return keras.Sequential([keras.Input((6, 6, 2), dtype="float64"),
                             L.Conv2D(3, 3, padding="same", activation="relu", dtype="float64"),
                             L.MaxPooling2D(2, dtype="float64"), L.Flatten(dtype="float64"),
                             L.Dense(4, dtype="float64")])
"""

TORCH_PORT = """
import numpy as np
import torch
from torch import nn
def model():
    w = np.load({weights!r})
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(27, 4)).double()
    state = {{"0.weight": w["conv"].transpose(3, 2, 0, 1), "0.bias": w["conv_b"],
             "4.weight": w["fc"].T{permute}, "4.bias": w["fc_b"]}}
    net.load_state_dict({{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}})
    return {{"model": net, "input_shape": (6, 6, 2)}}
"""


@pytest.mark.parametrize("permute", [False, True])
def test_weights_converted_without_the_flatten_permutation_are_named(tmp_path, permute):
    """A torch port whose weights were converted from the Keras model's by hand: kernels
    transposed, the first dense layer's rows left in NHWC order (the classic bug) or permuted."""
    (tmp_path / "k.py").write_text(KERAS_CNN)
    keras_model = check.adapt(load(f"{tmp_path / 'k.py'}:model", loss="ce"))
    conv, conv_b, fc, fc_b = (v.numpy() for v in keras_model.model.weights)
    np.savez(tmp_path / "w.npz", conv=conv, conv_b=conv_b, fc=fc, fc_b=fc_b)
    rows = "[:, np.arange(27).reshape(3, 3, 3).transpose(2, 0, 1).reshape(-1)]" if permute else ""
    (tmp_path / "t.py").write_text(TORCH_PORT.format(weights=str(tmp_path / "w.npz"),
                                                     permute=rows))
    torch_model = check.adapt(load(f"{tmp_path / 't.py'}:model", loss="ce"))
    result = port(keras_model, torch_model, ("keras", "torch"))
    assert result.passed == permute, result.divergence
    if not permute:
        assert result.divergence.startswith("forward of z.fc1 differs")
        assert "fc1.W: flatten order: the rows of fc1.W are in the other flatten order" \
            in result.diagnosis
        assert "(confirmed: re-run with the first model's weights converted" in result.diagnosis
