"""Activation functions as value/derivative pairs, in the source documents' signature ``f'(z, h)``.

Every function takes and returns arrays of one shape (any shape). The derivative receives both the
pre-activation ``z`` and the activation ``h = f(z)`` and uses whichever is exact and cheapest:
sigmoid and tanh use ``h`` (the BP lecture: ``f' = h (1 - h)``), relu uses ``z`` (its revised
version).

``prelu`` (the three-framework notes' ``nn.PReLU()``: one learnable slope per layer, initial 0.25;
or one per unit) carries a parameter ``a{l}`` and has its own three functions below.

Conventions:
- relu'(0) = 0, as in the BP lecture, PyTorch and TensorFlow (the NumPy blog uses 1).
- sigmoid is evaluated without overflow for any finite ``z`` (no warnings for |z| up to 1e308).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """A named activation: ``f(z) -> h`` and ``df(z, h) -> dh/dz`` (elementwise)."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray, np.ndarray], np.ndarray]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` computed as ``exp(min(z,0)) / (1 + exp(-|z|))``: never overflows."""
    h = np.exp(np.minimum(z, 0))
    e = np.abs(z)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = exp(-|z|), in place
    e += 1.0
    h /= e
    return h


def sigmoid_grad(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``h (1 - h)`` (the BP lecture)."""
    return h * (1.0 - h)


def tanh(z: np.ndarray) -> np.ndarray:
    """``tanh(z)``."""
    return np.tanh(z)


def tanh_grad(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``1 - h^2`` (the NumPy basics lecture)."""
    return 1.0 - h * h


def relu(z: np.ndarray) -> np.ndarray:
    """``max(z, 0)``."""
    return np.maximum(z, 0)


def relu_grad(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``1 if z > 0 else 0``: relu'(0) = 0."""
    return (z > 0).astype(z.dtype)


def identity(z: np.ndarray) -> np.ndarray:
    """``z`` (the BP lecture's "no_active")."""
    return z


def identity_grad(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``1`` everywhere."""
    return np.ones_like(z)


def relu3(z: np.ndarray) -> np.ndarray:
    """``relu(z)^3`` (the Fashion-MNIST report's RELU3)."""
    r = np.maximum(z, 0)
    return r * r * r


def relu3_grad(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``3 relu(z)^2``."""
    r = np.maximum(z, 0)
    return 3 * r * r


def leaky_relu(z: np.ndarray) -> np.ndarray:
    """``z if z > 0 else 0.01 z`` (PyTorch's and Keras' default slope 0.01)."""
    return np.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_grad(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``1 if z > 0 else 0.01``: the derivative at 0 is the slope, as in the frameworks."""
    return np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype)


PRELU_INIT = 0.25  # torch.nn.PReLU's default slope
PRELU_SLOPES = ("shared", "unit")  # one slope per layer, or one per unit (channel)


def prelu(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``z if z > 0 else a z`` with one learnable slope ``a [1]`` per layer (``nn.PReLU()``)."""
    return np.where(z > 0, z, a * z)


def prelu_grad(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``dh/dz = 1 if z > 0 else a`` (the slope at 0, as the frameworks do)."""
    return np.where(z > 0, np.ones_like(z), a * np.ones_like(z))


def prelu_slope_grad(z: np.ndarray, upstream: np.ndarray,
                     shape: tuple[int, ...] = (1,)) -> np.ndarray:
    """``dL/da = sum(dL/dh * min(z, 0))``: over every entry for a shared slope (``shape``
    ``[1]``), over every axis but the last for one slope per unit or channel (``shape`` ``[D]``
    or ``[1, D]``)."""
    terms = upstream * np.where(z > 0, 0, z)
    if tuple(shape) == (1,):
        return np.sum(terms, keepdims=True).reshape(1)
    return np.sum(terms, axis=tuple(range(terms.ndim - 1))).reshape(shape)


PARAMETRIC = ("prelu",)

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, sigmoid_grad),
        Activation("tanh", tanh, tanh_grad),
        Activation("relu", relu, relu_grad),
        Activation("identity", identity, identity_grad),
        Activation("relu3", relu3, relu3_grad),
        Activation("leaky_relu", leaky_relu, leaky_relu_grad),
    )
}
# prelu has a parameter, so it is not an (f, df) pair: layers/activation.py's PReLU calls the
# three functions above.
KNOWN = (*ACTIVATIONS, *PARAMETRIC)
ALIASES = {"no_active": "identity", "linear": "identity", "none": "identity"}


def get_activation(name: str) -> Activation:
    """Look up an activation by name (or a seed alias such as ``no_active``)."""
    key = ALIASES.get(name, name)
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(KNOWN))}")
    return ACTIVATIONS[key]
