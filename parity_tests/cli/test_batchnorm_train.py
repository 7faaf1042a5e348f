"""``nnparity train --spec`` on a network with batch normalisation: its running statistics are
saved with the weights, evaluation uses them, and a checkpoint resumes (the optimiser state
holds no slot for them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnparity.cli import main
from nnparity.files.npz import read_npz

IRIS_BN = {"input_shape": [4], "loss": "ce", "reduction": "mean", "init": "he",
           "net": [{"kind": "dense", "units": 8, "use_bias": False},
                   {"kind": "batchnorm", "momentum": 0.9}, {"kind": "relu"},
                   {"kind": "dense", "units": 3}]}


def test_train_and_resume_a_batchnorm_net(tmp_path: Path, capsys) -> None:
    spec, checkpoint, saved = tmp_path / "net.json", tmp_path / "ck.npz", tmp_path / "w.npz"
    spec.write_text(json.dumps(IRIS_BN))
    common = ["train", "--spec", str(spec), "--dataset", "iris", "--optimizer", "adam",
              "--lr", "0.01", "--batch", "10"]
    assert main([*common, "--epochs", "2", "--checkpoint", str(checkpoint)]) == 0
    assert main([*common, "--epochs", "3", "--resume", str(checkpoint), "--save",
                 str(saved)]) == 0, capsys.readouterr().err
    assert "epoch     3/3" in capsys.readouterr().out
    weights = read_npz(saved)
    var = next(v for k, v in weights.items() if k.endswith("batchnorm1.var"))
    assert np.all(var > 0) and not np.allclose(var, 1.0)  # moved away from their start
