"""``nnparity check --port FIRST SECOND``: a torch CNN and its hand-written Keras port, whose
builder copies the torch weights (importing the torch file beside it), each run with its own
weights; the classic conversion mistakes fail with their diagnosis, a correct conversion passes,
``--write-weights`` repairs the conversion, ``--transfer-weights`` compares the architectures."""

from __future__ import annotations

import json
import sys

import pytest

from nnparity.cli import main

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]

TORCH_CNN = """
import torch
from torch import nn


def build():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(12, 4)).double()
    return {"model": net, "loss": "ce", "input_shape": (6, 6, 2)}
"""

# the port's builder converts the torch weights by hand, as an engineer porting a model does
KERAS_PORT = """
import keras
from ports_torch_cnn import build as torch_build


def build():
    net = torch_build()["model"]
    conv, fc = net[0], net[4]
    kernel = conv.weight.detach().numpy().transpose(KERNEL_AXES)
    dense = fc.weight.detach().numpy()
    if PERMUTE_ROWS:  # torch flattens NCHW, Keras NHWC
        dense = dense.reshape(4, 3, 2, 2).transpose(0, 2, 3, 1).reshape(4, 12)
    L = keras.layers
    model = keras.Sequential([keras.Input((6, 6, 2), dtype="float64"),
                              L.Conv2D(3, 3, activation="relu", dtype="float64"),
                              L.MaxPooling2D(2, dtype="float64"), L.Flatten(dtype="float64"),
                              L.Dense(4, dtype="float64")])
    model.layers[0].set_weights([kernel, conv.bias.detach().numpy()])
    model.layers[3].set_weights([dense.T, fc.bias.detach().numpy()])
    return {"model": model, "loss": "ce"}
"""

PORTS = {
    "correct": ("2, 3, 1, 0", True),
    "naive_flatten": ("2, 3, 1, 0", False),
    "transposed_kernel": ("3, 2, 1, 0", True),
}


@pytest.fixture
def files(tmp_path):
    """``files(port) -> (torch target, Keras port target)`` in ``tmp_path``."""
    (tmp_path / "ports_torch_cnn.py").write_text(TORCH_CNN)

    def write(port: str) -> tuple[str, str]:
        axes, permute = PORTS[port]
        path = tmp_path / f"{port}.py"
        path.write_text(KERAS_PORT.replace("KERNEL_AXES", f"({axes})")
                        .replace("PERMUTE_ROWS", str(permute)))
        return f"{tmp_path / 'ports_torch_cnn.py'}:build", f"{path}:build"
    yield write
    sys.modules.pop("ports_torch_cnn", None)


def _port(capsys, tmp_path, *argv: str) -> tuple[int, dict, str]:
    report = tmp_path / "r.json"
    code = main(["check", *argv, "--json", str(report)])
    out = capsys.readouterr().out
    return code, json.loads(report.read_text()), out


def _port_entry(report: dict) -> dict:
    [case] = [v for k, v in report["cases"].items() if " -> " in k]
    return case["backends"]["port"]


@pytest.mark.parametrize(("port", "divergence", "diagnosis"), [
    ("naive_flatten", "forward of z.fc1 differs",
     "fc1.W: flatten order: the rows of fc1.W are in the other flatten order (NCHW vs NHWC)"),
    ("transposed_kernel", "forward of z.conv1 differs",
     "conv1.W: kernel spatially transposed (H and W swapped in the copy)"),
])
def test_a_wrong_hand_conversion_fails_at_the_first_diverging_layer_with_its_diagnosis(
        files, capsys, tmp_path, port, divergence, diagnosis):
    code, report, out = _port(capsys, tmp_path, "--port", *files(port))
    assert code == 1
    entry = _port_entry(report)
    assert entry["status"] == "fail"
    assert entry["first_divergence"].startswith(divergence)
    [found] = entry["diagnosis"]
    assert found["code"] == "weights-conversion"
    assert found["message"].startswith("the architectures are equivalent; your weights are "
                                       f"not: {diagnosis}")
    assert "(confirmed: re-run with the first model's weights converted" in found["message"]
    assert found["evidence"].startswith("re-run with the first model's weights converted")
    assert "2 passed, 1 failed" in out  # each model on its own agrees with the reference


def test_a_correct_hand_conversion_passes(files, capsys, tmp_path):
    code, report, _ = _port(capsys, tmp_path, "--port", *files("correct"))
    assert code == 0
    entry = _port_entry(report)
    assert entry["status"] == "pass" and entry["diagnosis"] == []
    assert {c["stage"] for c in entry["comparisons"]} == {"forward", "loss", "delta", "grad"}


def test_write_weights_gives_the_repaired_conversion_that_makes_the_naive_port_pass(
        files, capsys, tmp_path):
    torch_file, keras_file = files("naive_flatten")
    fixed = tmp_path / "fixed.weights.h5"
    code, _, _ = _port(capsys, tmp_path, "--port", torch_file, keras_file,
                       "--write-weights", str(fixed))
    assert code == 1 and fixed.is_file()
    code, report, _ = _port(capsys, tmp_path, "--port", torch_file, keras_file,
                            "--weights", "-", "--weights", str(fixed))
    assert code == 0, _port_entry(report)["first_divergence"]


def test_write_weights_of_a_torch_port_is_a_safetensors_state_dict(files, capsys, tmp_path):
    torch_file, keras_file = files("correct")
    written = tmp_path / "torch.safetensors"
    code, _, _ = _port(capsys, tmp_path, "--port", keras_file, torch_file,
                       "--write-weights", str(written))
    assert code == 0
    from safetensors.numpy import load_file

    assert sorted(load_file(str(written))) == ["0.bias", "0.weight", "4.bias", "4.weight"]


def test_transfer_weights_compares_the_architectures_and_says_the_weights_are_not_equivalent(
        files, capsys, tmp_path):
    code, report, out = _port(capsys, tmp_path, "--port", *files("naive_flatten"),
                              "--transfer-weights")
    assert code == 0
    [own] = _port_entry(report)["notes"]
    assert own.startswith("with each model's own weights: forward of z.fc1 differs")
    assert "the architectures are equivalent; your weights are not: fc1.W: flatten order" in own
    assert "the architectures are equivalent; your weights are not" in out


def test_two_model_files_are_two_checks_and_the_output_says_how_to_ask_for_a_port(
        files, capsys, tmp_path):
    torch_file, keras_file = files("naive_flatten")
    code, report, out = _port(capsys, tmp_path, "--model-file", torch_file,
                              "--model-file", keras_file)
    assert code == 0
    assert sorted(report["cases"]) == sorted([torch_file, keras_file])
    assert "each model was checked on its own; to compare a port with its original: --port" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--model-file", "a.py:m", "--transfer-weights"], "--transfer-weights applies to a port"),
    (["--model-file", "a.py:m", "--write-weights", "w.npz"], "--write-weights applies to a port"),
    (["--port", "PORTS", "--weights", "w.npz"], "--weights given 1 time for 2 models"),
    (["--port", "PORTS", "--write-weights", "w.npz"], "a keras model's weights are written as "
                                                      ".weights.h5"),
])
def test_port_options_misused_exit_2_naming_them(files, capsys, tmp_path, argv, message):
    targets, weights = list(files("correct")), str(tmp_path / "w.npz")
    argv = [a for arg in argv
            for a in (targets if arg == "PORTS" else [weights] if arg == "w.npz" else [arg])]
    assert main(["check", *argv]) == 2
    assert message in capsys.readouterr().err
