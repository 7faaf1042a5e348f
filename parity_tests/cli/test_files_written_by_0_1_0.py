"""Files written by nnparity 0.1.0 (before the family redesign) still load and mean the same.

``parity_tests/fixtures/written_by_0.1.0/`` holds, as that version wrote them: MLP weights and
an Adam checkpoint from ``nnparity train`` on iris, the weights of a tiny CNN
(``save_weights``), and a golden-vector folder from ``nnparity vectors export``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from nnparity.backends import registry
from nnparity.backends.compare import REORDERED_FLOAT64, compare_all
from nnparity.files.weights import load_weights
from nnparity.reference import CNNSpec, MLPSpec
from nnparity.verify.problem import reference_tensors
from nnparity.verify.vectors import load_vector

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "written_by_0.1.0"


def test_mlp_weights_and_checkpoint_load() -> None:
    weights = load_weights(OLD / "mlp_weights.npz")
    assert isinstance(weights.spec, MLPSpec) and weights.spec.layers == (5, 3)
    assert weights.params["b1"].shape == (1, 5)  # the MLP's canonical bias shape is unchanged
    checkpoint = load_weights(OLD / "mlp_checkpoint_adam.npz")
    assert checkpoint.meta["epoch"] == 2 and "t" in checkpoint.state
    assert set(checkpoint.state) == {"t", *(f"{s}.{k}" for k in checkpoint.params for s in "mv")}


def test_old_checkpoint_resumes(tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt.npz"
    shutil.copy(OLD / "mlp_checkpoint_adam.npz", checkpoint)
    out = subprocess.run(
        [sys.executable, "-m", "nnparity", "train", "--dataset", "iris", "--layers", "5,3",
         "--activations", "tanh,identity", "--epochs", "3", "--optimizer", "adam",
         "--resume", str(checkpoint), "--save", str(tmp_path / "w.npz")],
        capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert load_weights(tmp_path / "w.npz").params["W1"].shape == (4, 5)


def test_cnn_weights_load_and_run() -> None:
    weights = load_weights(OLD / "cnn_weights.npz")
    assert weights.spec == CNNSpec.tiny()
    x = np.random.default_rng(0).standard_normal((2, *weights.spec.input_shape))
    result = registry.get("numpy").gradients(weights.spec, weights.params, x, np.array([0, 2]))
    assert np.isfinite(result.loss)


def test_old_vectors_match_the_current_reference() -> None:
    vector = load_vector(OLD / "vectors", "tiny")
    current = reference_tensors(vector.problem)
    assert list(current) == list(vector.expected)
    failed = [c for c in compare_all(current, vector.expected, REORDERED_FLOAT64) if not c.passed]
    assert failed == []
