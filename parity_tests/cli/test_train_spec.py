"""``nnparity train --spec FILE``: a spec file's network (here a ``net`` list) trained on a
dataset whose rows it takes; one that does not fit is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from nnparity.cli import main

IRIS_NET = {"input_shape": [4], "loss": "ce", "reduction": "sum", "init": "he",
            "net": [{"kind": "dense", "units": 8}, {"kind": "prelu", "slopes": "unit"},
                    {"kind": "dropout", "keep_prob": 0.8}, {"kind": "dense", "units": 3}]}


def test_train_takes_a_net_spec(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps(IRIS_NET))
    metrics = tmp_path / "m.json"
    assert main(["train", "--spec", str(spec), "--dataset", "iris", "--epochs", "3",
                 "--lr", "0.01", "--metrics", str(metrics), "--save",
                 str(tmp_path / "w.npz")]) == 0
    out = capsys.readouterr().out
    assert f"the net of {spec}" in out and "ce/sum" in out
    epochs = json.loads(metrics.read_text())
    assert len(epochs["epochs"] if isinstance(epochs, dict) else epochs) == 3


def test_a_spec_that_does_not_take_the_rows_is_refused(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps({**IRIS_NET, "input_shape": [5]}))
    assert main(["train", "--spec", str(spec), "--dataset", "iris", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "input_shape [5] does not fit the rows of iris" in err
