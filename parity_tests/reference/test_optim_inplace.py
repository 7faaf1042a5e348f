"""Adam's chunked in-place update equals its formulas evaluated on whole arrays, to the bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnparity.reference import optim
from nnparity.reference.optim import Optimizer, init_state, update


def _whole_array_adam(opt: Optimizer, p, m, v, g, t: int):
    """The module docstring's formulas on whole arrays (new arrays for every intermediate)."""
    b1, b2 = opt.beta1, opt.beta2
    if opt.variant == "torch":
        m = m + (1 - b1) * (g - m)
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v) / math.sqrt(1 - b2**t) + opt.eps
        return p - opt.lr / (1 - b1**t) * m / denom, m, v
    m = m + (g - m) * (1 - b1)
    v = v + (g * g - v) * (1 - b2)
    b1k, b2k = float(np.float32(b1)), float(np.float32(b2))
    alpha = float(np.float32(opt.lr)) * math.sqrt(1 - b2k**t) / (1 - b1k**t)
    return p - m * alpha / (np.sqrt(v) + opt.eps), m, v


@pytest.mark.parametrize("variant", ["torch", "keras"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_adam_in_place_equals_whole_array_formulas(variant, dtype, layout, monkeypatch):
    monkeypatch.setattr(optim, "ADAM_CHUNK", 1000)  # several chunks and a ragged last one
    rng = np.random.default_rng(3)
    shapes = {"W": (37, 91), "b": (91,), "s": ()}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    if layout == "transposed":  # not C-contiguous: updated as one whole-array chunk
        params["W"] = np.asarray(rng.standard_normal((91, 37)).astype(dtype)).T
    opt = Optimizer("adam", lr=3e-3, variant=variant)
    state = init_state(opt, params)
    expected = {k: (p.copy(), np.zeros_like(p), np.zeros_like(p)) for k, p in params.items()}
    for t in range(1, 4):
        grads = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
        update(opt, params, grads, state)
        expected = {k: _whole_array_adam(opt, *expected[k], grads[k], t) for k in params}
    assert int(state["t"]) == 3
    for k, (p, m, v) in expected.items():
        assert params[k].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(params[k], p, strict=True)
        np.testing.assert_array_equal(state[f"m.{k}"], m, strict=True)
        np.testing.assert_array_equal(state[f"v.{k}"], v, strict=True)
