"""Finite differences agree with the hand-derived gradients for every combination (float64)."""

import itertools

import numpy as np
import pytest

from nnparity.backends.compare import GRADCHECK_TOLERANCE
from nnparity.reference import MLPSpec, forward, gradients, init_params, loss
from nnparity.reference.activations import KNOWN
from nnparity.reference.gradcheck import gradcheck

# (input width, hidden widths, batch): a batch of one, a hidden layer of width 1, three layers.
ARCHITECTURES = [(4, (5,), 3), (3, (1,), 1), (5, (6, 4), 4)]
LOSSES = {"l2": 3, "ce": 3, "bce": 1}  # loss -> output width


def _labels(loss_name: str, rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    if loss_name == "ce":
        return rng.integers(0, k, size=n)
    if loss_name == "bce":
        return rng.integers(0, 2, size=n).astype(float)
    return rng.standard_normal((n, k))


def _away_from_kinks(spec: MLPSpec, arch: int, n: int, d_in: int, k: int):
    """Weights and data whose pre-activations all lie >= 1e-3 from 0: finite differences are
    meaningless across relu's kink (and relu3's jump in the third derivative)."""
    for seed in range(100):
        params = init_params(spec, "xavier", seed=100 * arch + seed)
        rng = np.random.default_rng([arch, seed])
        x = rng.standard_normal((n, d_in))
        if min(np.abs(z).min() for z in forward(spec, params, x).z.values()) >= 1e-3:
            return params, x, _labels(spec.loss, rng, n, k)
    raise AssertionError("no draw keeps every pre-activation away from 0")


CASES = list(itertools.product(sorted(KNOWN), LOSSES, ("sum", "mean"), (0.0, 1e-3),
                               range(len(ARCHITECTURES))))


@pytest.mark.parametrize(("act", "loss_name", "reduction", "wd", "arch"), CASES)
def test_finite_differences_match(act, loss_name, reduction, wd, arch):
    d_in, hidden, n = ARCHITECTURES[arch]
    k = LOSSES[loss_name]
    spec = MLPSpec(d_in, (*hidden, k), (act,) * len(hidden) + ("identity",), loss=loss_name,
                   reduction=reduction, weight_decay=wd)
    # The output activation varies too, where the loss allows any (l2).
    if loss_name == "l2":
        spec = spec.with_(activations=[act] * (len(hidden) + 1))
    params, x, y = _away_from_kinks(spec, arch, n, d_in, k)
    analytic = gradients(spec, params, x, y).grads
    results = gradcheck(lambda p: loss(spec, p, x, y), params, analytic)
    worst = max(results, key=lambda r: r.max_rel)
    assert worst.max_rel <= GRADCHECK_TOLERANCE, f"{worst.name}: rel {worst.max_rel:.2e}"


def test_gradcheck_catches_a_wrong_gradient():
    spec = MLPSpec(3, (4, 2), ("sigmoid", "identity"))
    params = init_params(spec, "xavier")
    x, y = np.ones((2, 3)), np.array([0, 1])
    grads = dict(gradients(spec, params, x, y).grads)
    grads["W1"] = grads["W1"] * 2
    results = {r.name: r for r in gradcheck(lambda p: loss(spec, p, x, y), params, grads)}
    assert results["W1"].max_rel > 0.1
    assert results["W2"].max_rel <= GRADCHECK_TOLERANCE


def test_gradcheck_samples_big_tensors_and_refuses_float32():
    spec = MLPSpec(30, (20, 3), ("tanh", "identity"))
    params = init_params(spec, "xavier")
    x, y = np.ones((2, 30)), np.array([0, 1])
    grads = gradients(spec, params, x, y).grads
    results = gradcheck(lambda p: loss(spec, p, x, y), params, grads, max_entries=50)
    assert results[0].checked == 50 and results[0].total == 600
    f32 = {k: v.astype(np.float32) for k, v in params.items()}
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda p: 0.0, f32, grads)
