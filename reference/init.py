"""Initialisation schemes named after their source; all draw from a seeded ``np.random.Generator``.

| scheme          | weights ``W [D_in, D_out]``            | biases | source                 |
|-----------------|----------------------------------------|--------|------------------------|
| seed000-sigmoid | ``0.2 * randn - 0.1``                  | 0.1    | seed 000, sigmoid nets |
| seed000-relu    | ``0.01 * randn``                       | 0.1    | seed 000, relu nets    |
| seed002         | ``0.01 * randn``                       | 0      | seed 002 TwoLayerNet   |
| seed003         | ``0.01 * randn``                       | 0      | seed 003 (same draws)  |
| seed004         | ``U(-1, 1)``                           | U(-1,1)| seed 004               |
| xavier          | ``U(-a, a)``, ``a = sqrt(6/(in+out))`` | 0      | Glorot & Bengio 2010   |
| he              | ``sqrt(2/in) * randn``                 | 0      | He et al. 2015         |
| torch-default   | ``U(-1/sqrt(in), 1/sqrt(in))``         | same   | ``nn.Linear``'s reset  |

PReLU slopes ``a{l}`` start at 0.25 under every scheme (``torch.nn.PReLU``'s default).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .activations import PRELU_INIT
from .spec import MLPSpec

# draw(rng, shape, fan_in) -> array of that shape; fan_in is the layer's input width.
Draw = Callable[[np.random.Generator, tuple[int, ...], int], np.ndarray]


def _xavier(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape)


def _he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)


def _constant(value: float) -> Draw:
    return lambda rng, shape, fan_in: np.full(shape, value)


def _fan_in_uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return rng.uniform(-1, 1, size=shape) / np.sqrt(fan_in)


SCHEMES: dict[str, tuple[Draw, Draw]] = {
    "seed000-sigmoid": (lambda rng, s, _: 0.2 * rng.standard_normal(s) - 0.1, _constant(0.1)),
    "seed000-relu": (lambda rng, s, _: 0.01 * rng.standard_normal(s), _constant(0.1)),
    "seed002": (lambda rng, s, _: 0.01 * rng.standard_normal(s), _constant(0.0)),
    "seed003": (lambda rng, s, _: 0.01 * rng.standard_normal(s), _constant(0.0)),
    "seed004": (lambda rng, s, _: rng.uniform(-1, 1, s), lambda rng, s, _: rng.uniform(-1, 1, s)),
    "xavier": (_xavier, _constant(0.0)),
    "he": (_he, _constant(0.0)),
    "torch-default": (_fan_in_uniform, _fan_in_uniform),
}


def init_params(spec: MLPSpec, scheme: str = "xavier", seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh parameters ``W1, b1, ...`` in the spec's dtype, reproducible for a given ``seed``."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    draw_w, draw_b = SCHEMES[scheme]
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in spec.param_shapes().items():
        if name.startswith("a"):
            params[name] = np.full(shape, PRELU_INIT, dtype=spec.dtype)
            continue
        draw = draw_w if spec.is_weight(name) else draw_b
        fan_in = spec.widths[int(name[1:]) - 1]
        params[name] = np.asarray(draw(rng, shape, fan_in), dtype=spec.dtype)
    return params
