"""Initialisation schemes named after their source; all draw from a seeded ``np.random.Generator``.

Scheme names keep the short tags of the source documents (``seed000`` = the BP lecture,
``seed002`` = the three-framework notes' TwoLayerNet and CNN, ``seed003`` = the NumPy blog,
``seed004`` = the Fashion-MNIST report: see "Sources" in docs/index.md). Each family has its
own table.

MLP schemes (:data:`SCHEMES`):

| scheme          | weights ``W [D_in, D_out]``            | biases  | source                   |
|-----------------|----------------------------------------|---------|--------------------------|
| seed000-sigmoid | ``0.2 * randn - 0.1``                  | 0.1     | BP lecture, sigmoid nets |
| seed000-relu    | ``0.01 * randn``                       | 0.1     | BP lecture, relu nets    |
| seed002         | ``0.01 * randn``                       | 0       | notes' TwoLayerNet       |
| seed003         | ``0.01 * randn``                       | 0       | NumPy blog (same draws)  |
| seed004         | ``U(-1, 1)``                           | U(-1,1) | Fashion-MNIST report     |
| xavier          | ``U(-a, a)``, ``a = sqrt(6/(in+out))`` | 0       | Glorot & Bengio 2010     |
| he              | ``sqrt(2/in) * randn``                 | 0       | He et al. 2015           |
| torch-default   | ``U(-1/sqrt(in), 1/sqrt(in))``         | same    | ``nn.Linear``'s reset    |

PReLU slopes ``a{l}`` start at 0.25 under every scheme (``torch.nn.PReLU``'s default).

Schemes of a network written as a layer list (:data:`NET_SCHEMES`, :func:`init_net`):
``xavier``, ``he`` and ``torch-default`` as in the MLP table, with ``fan_in = in`` (dense) or
``k*k*cin`` (conv) and ``fan_out = out`` or ``k*k*cout``; biases 0 (``torch-default``: the
same uniform as the layer's weight), slopes 0.25; a layernorm's gamma 1 and beta 0 (as torch's
and Keras' own).

CNN schemes (:data:`CNN_SCHEMES`):

- ``seed002``: every weight truncated normal with std 0.1, every bias 0.1 (the TF tutorial).
- ``he``: weights ``N(0, 2 / fan_in)`` with ``fan_in = k*k*cin`` or ``in``, biases 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .activations import PRELU_INIT
from .cnn_spec import CNNSpec
from .netspec import NetSpec
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


CNN_SCHEMES = ("seed002", "he")
NET_SCHEMES = ("xavier", "he", "torch-default")


def _check_scheme(scheme: str, known: tuple[str, ...] | dict[str, object], family: str) -> None:
    if scheme not in known:
        raise ValueError(f"unknown {family} init scheme {scheme!r}; known: {', '.join(known)}")


def init_mlp(spec: MLPSpec, scheme: str = "xavier", seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh MLP parameters ``W1, b1, ...`` in the spec's dtype, reproducible for ``seed``."""
    _check_scheme(scheme, SCHEMES, "MLP")
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


def truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """``N(0, std^2)`` draws, each redrawn until it lies within 2 std (``tf.truncated_normal``)."""
    values = rng.standard_normal(shape)
    bad = np.abs(values) > 2
    while bad.any():
        values[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(values) > 2
    return std * values


def init_cnn(spec: CNNSpec, scheme: str = "seed002", seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh CNN parameters in the spec's dtype and canonical order, reproducible for ``seed``
    (schemes: module docstring)."""
    _check_scheme(scheme, CNN_SCHEMES, "CNN")
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for name, shape in spec.param_shapes().items():
        if not spec.is_weight(name):
            value = np.full(shape, 0.1 if scheme == "seed002" else 0.0)
        elif scheme == "seed002":
            value = truncated_normal(rng, shape, 0.1)
        else:
            fan_in = int(np.prod(shape[:-1]))
            value = np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)
        params[name] = value.astype(spec.dtype)
    return params


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a dense ``[in, out]`` or conv ``[k, k, cin, cout]`` weight."""
    field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return field * shape[-2], field * shape[-1]


NORMALISATION_INIT = {"scale": 1.0, "mean": 0.0, "variance": 1.0}
"""A normalisation's scale and a batch normalisation's running statistics at start, in every
framework (its shift is a ``bias`` after the scale: zeros, torch's default too)."""


def init_net(spec: NetSpec, scheme: str = "xavier", seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh parameters of a layer-list network in the spec's dtype and canonical order,
    reproducible for ``seed`` (schemes: module docstring)."""
    _check_scheme(scheme, NET_SCHEMES, "net")
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    fan_in = 1
    previous = ""
    for name, shape in spec.param_shapes().items():
        kind = spec.param_kind(name)
        if kind == "slope":
            value = np.full(shape, PRELU_INIT)
        elif kind in NORMALISATION_INIT:
            value = np.full(shape, NORMALISATION_INIT[kind])
        elif kind == "bias":  # a normalisation's beta (after its gamma) starts at 0 in torch too
            value = _fan_in_uniform(rng, shape, fan_in) \
                if scheme == "torch-default" and previous != "scale" else np.zeros(shape)
        else:
            fan_in, fan_out = _fans(shape)
            if scheme == "xavier":
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                value = rng.uniform(-limit, limit, size=shape)
            else:
                value = (_he if scheme == "he" else _fan_in_uniform)(rng, shape, fan_in)
        params[name] = np.asarray(value, dtype=spec.dtype)
        previous = kind
    return params
