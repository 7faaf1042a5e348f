"""The benchmark's floor (bare NumPy, in place) computes what the reference trainer computes."""

import numpy as np
import pytest

from nnparity.backends.compare import REORDERED_FLOAT64, compare_tensor, tolerance
from nnparity.bench.floor import floor_trainer
from nnparity.reference import MLPSpec, Optimizer, init_params
from nnparity.reference.train import NumpyTrainer


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("layers", "hidden", "batch"),
                         [((7, 5, 4), "sigmoid", 6), ((9, 4), "relu", 5)])
def test_floor_steps_match_the_reference_trainer(layers, hidden, batch, dtype):
    spec = MLPSpec(12, layers, (hidden,) * (len(layers) - 1) + ("identity",), loss="ce",
                   reduction="mean", dtype=dtype)
    params = init_params(spec, "xavier", 3)
    reference = NumpyTrainer(spec, params, Optimizer("sgd", lr=0.5))
    weights = [params[f"W{i}"].astype(dtype) for i in range(1, len(layers) + 1)]
    biases = [params[f"b{i}"].astype(dtype) for i in range(1, len(layers) + 1)]
    step = floor_trainer(weights, biases, hidden, batch, lr=0.5)
    rng = np.random.default_rng(0)
    tol = REORDERED_FLOAT64 if dtype == "float64" else tolerance(dtype)
    for _ in range(4):
        x = rng.standard_normal((batch, 12)).astype(dtype)
        y = rng.integers(0, layers[-1], size=batch)
        expected_loss = reference.step(x, y)
        assert compare_tensor("loss", "loss", np.array(step(x, y)), np.array(expected_loss),
                              tol).passed
    after = reference.params()
    for i in range(1, len(layers) + 1):
        for name, mine in ((f"W{i}", weights[i - 1]), (f"b{i}", biases[i - 1])):
            result = compare_tensor("update", name, mine, after[name], tol)
            assert result.passed, result


def test_floor_refuses_other_activations():
    with pytest.raises(ValueError, match="not 'tanh'"):
        floor_trainer([np.zeros((2, 2))], [np.zeros((1, 2))], "tanh", 1, 0.1)
