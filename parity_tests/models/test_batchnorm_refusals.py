"""What ``batchnorm`` does not reach yet, refused with one line (exit 2, nothing written): the
export writers, and Flax NNX's ``BatchNorm`` in a user's model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnparity.cli import main

NET = {"input_shape": [4], "loss": "ce",
       "net": [{"kind": "dense", "units": 6, "use_bias": False}, {"kind": "batchnorm"},
               {"kind": "relu"}, {"kind": "dense", "units": 3}]}
FLAX = """
from flax import nnx
def model():
    rngs = nnx.Rngs(0)
    return nnx.Sequential(nnx.Linear(4, 6, rngs=rngs), nnx.BatchNorm(6, rngs=rngs), nnx.relu,
                          nnx.Linear(6, 3, rngs=rngs))
"""


@pytest.mark.parametrize("framework", ["torch", "keras", "jax", "numpy"])
def test_export_refuses_a_batchnorm_network(framework: str, tmp_path: Path, capsys) -> None:
    spec, out = tmp_path / "bn.json", tmp_path / "model.py"
    spec.write_text(json.dumps(NET))
    assert main(["export", str(spec), "--framework", framework, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "batchnorm1: export does not write batchnorm layers yet" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.jax
def test_a_flax_batchnorm_is_refused_naming_the_layer(tmp_path: Path, capsys) -> None:
    pytest.importorskip("flax", reason="Flax is not installed")
    path = tmp_path / "m.py"
    path.write_text(FLAX)
    assert main(["check", "--model-file", f"{path}:model", "--loss", "ce"]) == 2
    assert "unsupported layer layers[1] (BatchNorm)" in capsys.readouterr().err
