"""What ``batchnorm`` does not reach, refused with one line (exit 2): Flax NNX's ``BatchNorm``
without its scale (the reference's has gamma and beta). (The export writers' refusals of the
estimator a framework does not keep: ``parity_tests/teach/test_bnexport_frameworks.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from nnparity.cli import main

FLAX = """
from flax import nnx
def model():
    rngs = nnx.Rngs(0)
    return nnx.Sequential(nnx.Linear(4, 6, rngs=rngs),
                          nnx.BatchNorm(6, use_scale=False, rngs=rngs), nnx.relu,
                          nnx.Linear(6, 3, rngs=rngs))
"""


@pytest.mark.jax
def test_a_flax_batchnorm_without_scale_is_refused_naming_the_layer(tmp_path: Path, capsys) -> None:
    pytest.importorskip("flax", reason="Flax is not installed")
    path = tmp_path / "m.py"
    path.write_text(FLAX)
    assert main(["check", "--model-file", f"{path}:model", "--loss", "ce"]) == 2
    err = capsys.readouterr().err
    assert "unsupported layer layers[1] (BatchNorm) (axis -1" in err
    assert "use_scale False" in err
