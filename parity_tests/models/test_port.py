"""The port check: two model files against each other, weights transferred through the canonical
layout, the optimisers' designed drift stated instead of failed."""

from __future__ import annotations

import pytest

from nnparity.cli import main
from nnparity.errors import InputError
from nnparity.models import check
from nnparity.models.port import port
from nnparity.models.source import load

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]


def _models(example, *targets):
    return [check.adapt(load(example(t))) for t in targets]


def test_a_keras_mlp_and_its_torch_port_agree_with_the_weights_transferred(example):
    keras_mlp, torch_mlp = _models(example, "keras_mlp.py:model", "torch_mlp.py:model")
    assert keras_mlp.params()["W1"].tolist() != torch_mlp.params()["W1"].tolist()
    result = port(keras_mlp, torch_mlp, ("keras", "torch"))
    assert result.passed, result.divergence
    assert torch_mlp.params()["W1"].tolist() == keras_mlp.params()["W1"].tolist()
    assert {c.stage for c in result.comparisons} == {"forward", "loss", "delta", "grad"}
    [note] = result.notes
    assert note.startswith("the optimisers differ (keras adam vs torch momentum)")
    assert "expected drift after 3 steps" in note


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
    a, b = (check.adapt(load(f"{f}:model")) for f in (keras_file, torch_file))
    with pytest.raises(InputError, match="PReLU slope sharing: Keras' PReLU"):
        port(a, b, ("keras", "torch"))


@pytest.mark.slow
def test_the_seed002_cnn_in_keras_and_its_torch_port(example, capsys):
    targets = [example("seed002_keras.py:model"), example("seed002_torch.py:model")]
    assert main(["check", "--model-file", targets[0], "--model-file", targets[1]]) == 0
    out = capsys.readouterr().out
    assert "3 passed, 0 failed" in out
    assert "adam differs by design (keras's vs torch's formulation)" in out
