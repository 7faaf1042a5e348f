"""Known optimiser mistakes are parameters of the one formula (``reference.optim.Formula``):
each, and the default, against the formula written out plainly here (float64, max rel 1e-12:
the same math in another order)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnparity.backends.compare import REORDERED_FLOAT64
from nnparity.reference.optim import Formula, Optimizer, init_state, step

RTOL = REORDERED_FLOAT64


def _problem(name: str) -> tuple[Optimizer, dict, dict, dict]:
    opt = Optimizer(name, lr=0.05, eps=1e-3)
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    state = init_state(opt, params)
    params, state = step(opt, params, {k: rng.standard_normal(v.shape)
                                       for k, v in params.items()}, state)
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    return opt, params, grads, state


def _adam(opt: Optimizer, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
          correct: bool = True, inside: bool = False) -> np.ndarray:
    m = opt.beta1 * m + (1 - opt.beta1) * g
    v = opt.beta2 * v + (1 - opt.beta2) * g * g
    m_hat = m / (1 - opt.beta1**t) if correct else m
    v_hat = v / (1 - opt.beta2**t) if correct else v
    denom = np.sqrt(v_hat + opt.eps) if inside else np.sqrt(v_hat) + opt.eps
    return p - opt.lr * m_hat / denom


@pytest.mark.parametrize(("formula", "correct", "inside"), [
    (Formula(), True, False),
    (Formula(bias_correction=False), False, False),
    (Formula(eps_inside_root=True), True, True),
])
def test_adam_and_its_mistakes(formula: Formula, correct: bool, inside: bool) -> None:
    opt, params, grads, state = _problem("adam")
    got, _ = step(opt, params, grads, state, formula)
    for k, p in params.items():
        want = _adam(opt, p, grads[k], state[f"m.{k}"], state[f"v.{k}"], 2, correct, inside)
        np.testing.assert_allclose(got[k], want, rtol=RTOL)


def test_adam_with_the_other_epsilon_placement() -> None:
    opt, params, grads, state = _problem("adam")
    got, _ = step(opt, params, grads, state, Formula(form="keras", rounded=False))
    alpha = opt.lr * math.sqrt(1 - opt.beta2**2) / (1 - opt.beta1**2)
    for k, p in params.items():
        m = opt.beta1 * state[f"m.{k}"] + (1 - opt.beta1) * grads[k]
        v = opt.beta2 * state[f"v.{k}"] + (1 - opt.beta2) * grads[k] ** 2
        np.testing.assert_allclose(got[k], p - alpha * m / (np.sqrt(v) + opt.eps), rtol=RTOL)


@pytest.mark.parametrize("form", ["heavy-ball", "late", "average"])
def test_momentum_and_its_mistakes(form: str) -> None:
    opt, params, grads, state = _problem("momentum")
    got, new = step(opt, params, grads, state, Formula(momentum=form))
    mu, lr = opt.momentum, opt.lr
    for k, p in params.items():
        v, g = state[f"v.{k}"], grads[k]
        want_v = mu * v + (1 - mu) * g if form == "average" else mu * v + g
        want_p = p - lr * v if form == "late" else p - lr * want_v
        np.testing.assert_allclose(new[f"v.{k}"], want_v, rtol=RTOL)
        np.testing.assert_allclose(got[k], want_p, rtol=RTOL)


def test_an_unknown_form_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown momentum form"):
        Formula(momentum="nesterov")
