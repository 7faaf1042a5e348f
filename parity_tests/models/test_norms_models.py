"""Users' torch and Keras files with layer normalisation, global and SAME average pooling and
the sigmoid-output BCE, checked layer for layer against a ``net`` list; the refusals (a detach
or ``tf.stop_gradient`` in the forward, BCELoss without a final sigmoid)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnparity.cli import main

TORCH_MLP = """
import torch
from torch import nn
def build():
    torch.manual_seed(0)
    net = nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 6), nn.Tanh(), nn.LayerNorm(6, eps=1e-3),
                        nn.Linear(6, 3))
    return {"model": net, "loss": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.Adam(net.parameters(), lr=0.01)}
"""
TORCH_CNN = """
import torch
from torch import nn
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(),
                         nn.AvgPool2d(3, 1, padding=1),
                         nn.AvgPool2d(3, 1, padding=1, count_include_pad=False),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
"""
TORCH_FUNCTIONS = """
import torch
import torch.nn.functional as F
from torch import nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(3, 3)
    def forward(self, x):
        h = F.avg_pool2d(torch.tanh(self.conv(x)), 3, 1, 1, count_include_pad=False)
        return self.fc(F.adaptive_avg_pool2d(h, 1).view(len(x), -1))
def model():
    torch.manual_seed(0)
    return Net()
"""
TORCH_BCE = """
import torch
from torch import nn
def build():
    torch.manual_seed(0)
    layers = [nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)]{sigmoid}
    return {{"model": nn.Sequential(*layers), "loss": nn.{loss}()}}
"""
TORCH_DETACH = """
import torch
from torch import nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 5), nn.Linear(5, 3)
    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)).detach())
def model():
    return Net()
"""
KERAS_NET = """
import keras
def model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((7, 6, 2)), L.Conv2D(3, 3, padding="same"),
                             L.Activation("tanh"), L.AveragePooling2D(2, padding="same"),
                             L.GlobalAveragePooling2D(), L.LayerNormalization(),
                             L.Dense(4, activation="tanh"), L.LayerNormalization(epsilon=1e-5),
                             L.Dense(3)])
"""
KERAS_BCE = """
import keras
def build():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                            keras.layers.Dense(1, activation="sigmoid")])
    return {"model": net, "loss": keras.losses.BinaryCrossentropy()}
"""
KERAS_STOP = """
import keras
import tensorflow as tf
def model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5),
                             keras.layers.Lambda(lambda h: {stop}(h)),
                             keras.layers.Dense(3)])
"""


def _file(folder: Path, text: str, entry: str = "model") -> str:
    path = folder / "model.py"
    path.write_text(text)
    return f"{path}:{entry}"


def _spec(target: str, folder: Path, *args: str) -> dict:
    """The mapped spec of a passing check (exit 0) of ``target``."""
    report = folder / "r.json"
    code = main(["check", "--model-file", target, *args, "--json", str(report)])
    (case,) = json.loads(report.read_text())["cases"].values()
    assert code == 0, case
    return case["spec"]


def _net(target: str, folder: Path, *args: str) -> list[dict]:
    """The mapped ``net`` list of a passing check (exit 0) of ``target``."""
    return _spec(target, folder, *args)["net"]


@pytest.mark.torch
def test_a_torch_mlp_with_layer_norms_passes(tmp_path: Path) -> None:
    net = _net(_file(tmp_path, TORCH_MLP, "build"), tmp_path, "--dtype", "float64")
    assert [layer for layer in net if layer["kind"] == "layernorm"] == [
        {"kind": "layernorm", "epsilon": 1e-5}, {"kind": "layernorm", "epsilon": 1e-3}]
    assert net[0]["kind"] == "layernorm"


@pytest.mark.torch
@pytest.mark.parametrize("text", [TORCH_CNN, TORCH_FUNCTIONS], ids=["modules", "functions"])
def test_torch_same_and_global_average_pools_pass(text: str, tmp_path: Path) -> None:
    net = _net(_file(tmp_path, text), tmp_path, "--input-shape", "5,5,2", "--loss", "ce",
               "--dtype", "float64")
    pools = [layer for layer in net if "avgpool" in layer["kind"]]
    counted = [{"count_include_pad": True}] if text == TORCH_CNN else []
    assert [(p["kind"], p.get("padding"), p.get("count_include_pad")) for p in pools] == [
        *[("avgpool", "SAME", True) for _ in counted], ("avgpool", "SAME", None),
        ("global_avgpool", None, None)]


@pytest.mark.tensorflow
def test_a_keras_model_with_the_new_layers_passes(tmp_path: Path) -> None:
    net = _net(_file(tmp_path, KERAS_NET), tmp_path, "--loss", "ce")
    assert [layer["kind"] for layer in net] == [
        "conv2d", "tanh", "avgpool", "global_avgpool", "layernorm", "dense", "tanh",
        "layernorm", "dense"]
    assert [layer["epsilon"] for layer in net if layer["kind"] == "layernorm"] == [1e-3, 1e-5]


@pytest.mark.torch
@pytest.mark.parametrize("loss", ["BCELoss", "BCEWithLogitsLoss"])
def test_torch_bce_on_a_sigmoid_or_on_logits_passes(loss: str, tmp_path: Path) -> None:
    sigmoid = "\n    layers.append(nn.Sigmoid())" if loss == "BCELoss" else ""
    spec = _spec(_file(tmp_path, TORCH_BCE.format(sigmoid=sigmoid, loss=loss), "build"),
                 tmp_path, "--dtype", "float64")
    assert (spec["loss"], spec["activations"]) == ("bce", ["tanh", "identity"]), spec


@pytest.mark.torch
def test_bce_loss_without_a_final_sigmoid_is_refused(tmp_path: Path, capsys) -> None:
    target = _file(tmp_path, TORCH_BCE.format(sigmoid="", loss="BCELoss"), "build")
    assert main(["check", "--model-file", target]) == 2
    err = capsys.readouterr().err
    assert "BCELoss takes probabilities, but the model's last layer is module 2 (Linear)" in err


@pytest.mark.tensorflow
def test_keras_bce_on_a_sigmoid_passes(tmp_path: Path) -> None:
    spec = _spec(_file(tmp_path, KERAS_BCE, "build"), tmp_path)
    assert (spec["loss"], spec["activations"]) == ("bce", ["tanh", "identity"]), spec


@pytest.mark.torch
def test_a_detach_in_the_forward_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["check", "--model-file", _file(tmp_path, TORCH_DETACH), "--loss", "ce"]) == 2
    err = capsys.readouterr().err
    assert "calls detach() in its forward" in err and "changes the gradients" in err
    assert "Traceback" not in err


@pytest.mark.tensorflow
@pytest.mark.parametrize("stop", ["tf.stop_gradient", "keras.ops.stop_gradient"])
def test_a_stop_gradient_in_the_forward_is_refused(stop: str, tmp_path: Path, capsys) -> None:
    target = _file(tmp_path, KERAS_STOP.format(stop=stop))
    assert main(["check", "--model-file", target, "--loss", "ce"]) == 2
    err = capsys.readouterr().err
    assert "calls tf.stop_gradient in its forward" in err and "changes the gradients" in err


TORCH_PADDED_POOL = """
import torch
from torch import nn
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.ZeroPad2d({pads}),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(27, 3))
"""
KERAS_PADDED_POOL = """
import keras
def model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((5, 5, 2)), L.Conv2D(3, 3, padding="same"),
                             L.Activation("tanh"), L.ZeroPadding2D({pads}),
                             L.AveragePooling2D(2), L.Flatten(), L.Dense(3)])
"""


@pytest.mark.torch
def test_a_torch_zero_pad_by_same_amounts_before_an_avg_pool_counts_them(tmp_path: Path) -> None:
    """5x5, window 2, stride 2: TensorFlow's SAME pads one row and column at the bottom/right;
    an explicit zero pad there and a VALID pool is SAME with the padded zeros counted."""
    net = _net(_file(tmp_path, TORCH_PADDED_POOL.format(pads="(0, 1, 0, 1)")), tmp_path,
               "--input-shape", "5,5,2", "--loss", "ce", "--dtype", "float64")
    assert net[2] == {"kind": "avgpool", "size": 2, "stride": 2, "padding": "SAME",
                      "count_include_pad": True}


@pytest.mark.torch
def test_a_zero_pad_by_other_amounts_is_refused(tmp_path: Path, capsys) -> None:
    target = _file(tmp_path, TORCH_PADDED_POOL.format(pads="(1, 0, 1, 0)"))
    assert main(["check", "--model-file", target, "--input-shape", "5,5,2", "--loss",
                 "ce"]) == 2
    assert "unsupported layer module 2 (ZeroPad2d)" in capsys.readouterr().err


@pytest.mark.tensorflow
def test_a_keras_zero_padding_before_a_valid_pool_is_a_counted_same_pool(tmp_path: Path) -> None:
    net = _net(_file(tmp_path, KERAS_PADDED_POOL.format(pads="((0, 1), (0, 1))")), tmp_path,
               "--loss", "ce")
    assert net[2] == {"kind": "avgpool", "size": 2, "stride": 2, "padding": "SAME",
                      "count_include_pad": True}
