"""``batchnorm`` in users' models: a torch MLP with BatchNorm1d and a Keras CNN with
BatchNormalization pass ``check --model-file`` (running statistics after each step included);
a torch -> Keras port with the conventions mapped passes (the variance estimator stated as a
difference by design), with torch's momentum copied verbatim or Keras' default epsilon it fails
with the diagnosis naming the convention; a model left in training mode for evaluation is
diagnosed; settings the reference lacks are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.parity.rounding_judge import CANCELLING, NOTE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"
TORCH = """
import torch
from torch import nn
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6{settings}), nn.ReLU(),
                         nn.Linear(6, 3))
"""
KERAS = """
import keras
def model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((4,)), L.Dense(6, use_bias=False),
                             L.BatchNormalization({settings}), L.ReLU(), L.Dense(3)])
"""
TORCH_TRAINING_AT_EVAL = """
import torch
from torch import nn
class AlwaysTraining(nn.BatchNorm1d):
    def forward(self, x):
        self.training = True  # the mistake: batch statistics at evaluation too
        return super().forward(x)
def model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6, bias=False), AlwaysTraining(6), nn.ReLU(),
                        nn.Linear(6, 3)).double()
    return {"model": net, "loss": nn.CrossEntropyLoss(),
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1)}
"""


def _file(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return f"{path}:model"


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.torch
@pytest.mark.tensorflow
@pytest.mark.parametrize("example", ["torch_batchnorm.py", "keras_batchnorm_cnn.py"])
def test_the_examples_pass_with_running_statistics_compared(example: str, tmp_path: Path,
                                                            capsys) -> None:
    report = tmp_path / "r.json"
    code = main(["check", "--model-file", f"{EXAMPLES / example}:model", "--json",
                 str(report)])
    assert code == 0, capsys.readouterr().out
    (case,) = _report(report)["cases"].values()
    (result,) = case["backends"].values()
    names = {c["tensor"] for c in result["comparisons"]}
    assert {"step1.batchnorm1.mean", "step3.batchnorm1.var", "eval.output"} <= names
    (layer,) = [entry for entry in case["spec"]["net"] if entry["kind"] == "batchnorm"]
    expected = ({"momentum": 0.9, "epsilon": 1e-5, "variance": "unbiased"}
                if example.startswith("torch") else
                {"momentum": 0.9, "epsilon": 1e-3, "variance": "biased"})
    assert layer == {"kind": "batchnorm", **expected}


@pytest.mark.torch
@pytest.mark.tensorflow
@pytest.mark.parametrize(("settings", "code", "diagnosis"), [
    ("momentum=0.9, epsilon=1e-5", 0, None),  # torch's conventions mapped
    ("momentum=0.1, epsilon=1e-5", 1, "batchnorm-momentum"),  # torch's momentum verbatim
    ("momentum=0.9", 1, "batchnorm-epsilon"),  # Keras' default epsilon 1e-3
])
def test_a_torch_to_keras_port(settings: str, code: int, diagnosis: str | None, tmp_path: Path,
                               capsys) -> None:
    first = _file(tmp_path, "t.py", TORCH.format(settings=""))
    second = _file(tmp_path, "k.py", KERAS.format(settings=settings))
    report = tmp_path / "r.json"
    assert main(["check", "--port", first, second, "--transfer-weights", "--loss", "ce",
                 "--json", str(report)]) == code, capsys.readouterr().out
    case = next(c for c in _report(report)["cases"].values() if "port" in c["backends"])
    port = case["backends"]["port"]
    assert any("running variance estimators differ by design" in note
               for note in port["notes"])
    names = {c["tensor"] for c in port["comparisons"]}
    assert {"train.batchnorm1.mean", "train.batchnorm1.var"} <= names
    codes = [d["code"] for d in port["diagnosis"]]
    assert codes == ([diagnosis] if diagnosis else [])
    if diagnosis == "batchnorm-momentum":
        message = port["diagnosis"][0]["message"]
        assert "keeps 0.1 of the old running value" in message
        assert "torch momentum m is Keras/Flax momentum 1 - m" in message
        assert "reference re-run with momentum 0.1 reproduces" in message


@pytest.mark.torch
def test_a_model_left_in_training_mode_for_evaluation_is_diagnosed(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    target = _file(tmp_path, "m.py", TORCH_TRAINING_AT_EVAL)
    assert main(["check", "--model-file", target, "--json", str(report)]) == 1
    (case,) = _report(report)["cases"].values()
    (result,) = case["backends"].values()
    failed = [c["tensor"] for c in result["comparisons"] if not c["passed"]]
    # the evaluation pass on batch statistics also moved the running ones the steps start from
    assert "eval.output" in failed and all(name.startswith(("eval", "step")) for name in failed)
    assert [d["code"] for d in result["diagnosis"]] == ["batchnorm-training-mode"]


@pytest.mark.torch
@pytest.mark.parametrize("settings", [", affine=False", ", momentum=None",
                                      ", track_running_stats=False"])
def test_settings_the_reference_lacks_are_refused(settings: str, tmp_path: Path,
                                                  capsys) -> None:
    target = _file(tmp_path, "m.py", TORCH.format(settings=settings))
    assert main(["check", "--model-file", target, "--loss", "ce"]) == 2
    assert "the reference's batchnorm has gamma, beta" in capsys.readouterr().err


TORCH_CNN = """
import torch
from torch import nn
def model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(3, momentum=0.2),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 3)).double()
    return {"model": net, "loss": nn.CrossEntropyLoss(),
            "optimizer": lambda p: torch.optim.Adam(p, lr=0.01)}
"""


@pytest.mark.torch
def test_a_torch_cnn_with_batchnorm2d_passes(tmp_path: Path, capsys) -> None:
    """Channels of an NCHW map: torch's running buffers [C] in the canonical NHWC layout."""
    report = tmp_path / "r.json"
    target = _file(tmp_path, "m.py", TORCH_CNN)
    assert main(["check", "--model-file", target, "--input-shape", "6,6,2", "--timeout", "600",
                 "--json", str(report)]) == 0, capsys.readouterr().out
    (case,) = _report(report)["cases"].values()
    (layer,) = [entry for entry in case["spec"]["net"] if entry["kind"] == "batchnorm"]
    assert layer["momentum"] == pytest.approx(0.8) and layer["variance"] == "unbiased"


@pytest.mark.tensorflow
def test_a_bias_right_before_a_batchnorm_passes_judged_against_its_terms(tmp_path: Path) -> None:
    """Conv2D (with its bias) straight into BatchNormalization: the bias's gradient is zero in
    exact arithmetic, rounding noise on both sides, judged against its terms (the rounding
    judge) and said so in a note."""
    report = tmp_path / "r.json"
    target = _file(tmp_path, "m.py", """
import keras
def model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3), L.BatchNormalization(),
                             L.ReLU(), L.Flatten(), L.Dense(3)])
""")
    assert main(["check", "--model-file", target, "--loss", "ce", "--json", str(report)]) == 0
    (case,) = _report(report)["cases"].values()
    (result,) = case["backends"].values()
    assert CANCELLING in result["notes"]
    (bias,) = [c for c in result["comparisons"] if (c["stage"], c["name"]) == ("grad", "conv1.b")]
    assert bias["note"].startswith(NOTE)
