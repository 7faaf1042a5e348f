"""Nothing guessed, nothing taken from the path's spelling: a compiled Keras model's loss and
optimiser are used and stated, a torch model without a loss needs ``--loss``, the same file
from three spellings gives the same report, a model file imports a module beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.models.source import load

KERAS_REGRESSION = """
import keras


def build():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((3,), dtype="float64"),
                              keras.layers.Dense(4, activation="tanh", dtype="float64"),
                              keras.layers.Dense(1, dtype="float64")])
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(0.1))
    return model
"""

# a custom sigmoid whose backward forgets (1 - h): the check fails with numbers that depend on
# the data and the weights, which must come from --seed alone
TORCH_BUGS = """
import torch
from torch import nn


class Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        h = torch.sigmoid(z)
        ctx.save_for_backward(h)
        return h

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        return grad * h


class MySigmoid(nn.Module):
    def forward(self, z):
        return Sigmoid.apply(z)


NNPARITY_LAYERS = {"MySigmoid": "sigmoid"}


def build():
    net = nn.Sequential(nn.Linear(4, 6), MySigmoid(), nn.Linear(6, 3)).double()
    return {"model": net, "loss": "ce", "optimizer": torch.optim.SGD(net.parameters(), lr=0.1)}
"""

NO_LOSS = """
from torch import nn


def build():
    return nn.Sequential(nn.Linear(3, 2)).double()
"""


@pytest.mark.tensorflow
def test_a_compiled_keras_regression_model_uses_its_loss_and_optimiser(tmp_path, capsys):
    path = tmp_path / "regression.py"
    path.write_text(KERAS_REGRESSION)
    report = tmp_path / "r.json"
    assert main(["check", "--model-file", f"{path}:build", "--json", str(report)]) == 0
    setup = "loss mse (mean) from model.compile; optimiser keras sgd (lr 0.1) from model.compile"
    assert setup in capsys.readouterr().out
    [case] = json.loads(report.read_text())["cases"].values()
    entry = case["backends"]["keras-model"]
    assert entry["notes"] == [setup]
    assert {c["stage"] for c in entry["comparisons"]} >= {"loss", "update"}


@pytest.mark.tensorflow
def test_a_compiled_cross_entropy_by_name_is_refused_not_guessed(tmp_path, capsys):
    path = tmp_path / "classifier.py"
    path.write_text(KERAS_REGRESSION.replace('loss="mse"', 'loss="categorical_crossentropy"'))
    assert main(["check", "--model-file", f"{path}:build", "--loss", "ce"]) == 2
    assert (f"{path}:build: compiled loss 'categorical_crossentropy' has no exact counterpart"
            in capsys.readouterr().err)


@pytest.mark.torch
def test_a_torch_model_without_a_loss_exits_2_naming_the_flag(tmp_path, capsys):
    path = tmp_path / "no_loss.py"
    path.write_text(NO_LOSS)
    assert main(["check", "--model-file", f"{path}:build"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:build: no loss" in err and "give --loss (ce, l2, bce, mse)" in err
    assert main(["check", "--model-file", f"{path}:build", "--loss", "mse"]) == 0
    assert "loss mse (mean) from --loss; no optimiser" in capsys.readouterr().out


def _without_names_and_times(report: dict) -> list:
    """The report's cases' contents, without their names (the path as spelled) and timings."""
    entries = []
    for case in report["cases"].values():
        for entry in case["backends"].values():
            entries.append({k: v for k, v in entry.items() if k != "seconds"})
    return entries


@pytest.mark.torch
def test_the_same_file_from_three_spellings_and_folders_gives_the_same_report(tmp_path):
    models, other = tmp_path / "models", tmp_path / "other"
    models.mkdir()
    other.mkdir()
    (models / "my_torch_bugs.py").write_text(TORCH_BUGS)
    reports = []
    for cwd, spelling in ((models, "my_torch_bugs.py"), (models, "./my_torch_bugs.py"),
                          (other, "../models/my_torch_bugs.py")):
        report = tmp_path / f"r{len(reports)}.json"
        done = subprocess.run([sys.executable, "-m", "nnparity", "check", "--model-file",
                               f"{spelling}:build", "--json", str(report)], cwd=cwd,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr
        reports.append(_without_names_and_times(json.loads(report.read_text())))
    assert reports[0] == reports[1] == reports[2]
    assert reports[0][0]["first_divergence"].startswith("forward and loss match; delta")


SIBLING = "WIDTH = 3\n"
IMPORTER = """
from torch import nn
from ports_sibling import WIDTH


def build():
    return {"model": nn.Sequential(nn.Linear(WIDTH, 2)).double(), "loss": "ce"}
"""


@pytest.mark.torch
def test_a_model_file_imports_a_module_beside_it_from_any_folder(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "ports_sibling.py").write_text(SIBLING)
    (folder / "importer.py").write_text(IMPORTER)
    done = subprocess.run([sys.executable, "-m", "nnparity", "check", "--model-file",
                           "models/importer.py:build"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before = list(sys.path)
    try:
        assert load(f"{folder / 'importer.py'}:build").model[0].in_features == 3
        assert sys.path == before  # the folder is on sys.path only while the file loads
    finally:
        sys.modules.pop("ports_sibling", None)


def test_the_model_folder_leaves_sys_path_when_the_file_raises(tmp_path):
    path = tmp_path / "raises.py"
    path.write_text("raise RuntimeError('boom')\n")
    before = list(sys.path)
    with pytest.raises(Exception, match="boom"):
        load(f"{Path(path)}:build")
    assert sys.path == before
