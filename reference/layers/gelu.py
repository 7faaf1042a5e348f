"""``gelu``: the Gaussian error linear unit ``h = z Phi(z)``, elementwise on any shape, in one
of two forms (``approximate``):

- ``none`` (exact; torch's ``nn.GELU()`` and Keras' ``gelu`` default):
  ``h = 0.5 z (1 + erf(z / sqrt 2))``, ``dh/dz = Phi(z) + z phi(z)`` with
  ``Phi(z) = 0.5 (1 + erf(z / sqrt 2))`` and ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)``;
- ``tanh`` (JAX's ``jax.nn.gelu`` default, torch's ``approximate='tanh'``):
  ``h = 0.5 z (1 + tanh u)``, ``u = sqrt(2/pi) (z + 0.044715 z^3)``,
  ``dh/dz = 0.5 (1 + tanh u) + 0.5 z (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 z^2)``.

``erf`` is :func:`reference.erf.erf` (NumPy only, float64 to 1e-15 relative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..erf import erf
from .base import Layer, Params, Run

GELU_FORMS = ("none", "tanh")
SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2/pi), correctly rounded
INV_SQRT_2 = 0.7071067811865476  # 1/sqrt(2), correctly rounded
INV_SQRT_2PI = 0.3989422804014327  # 1/sqrt(2 pi), correctly rounded
TANH_CUBIC = 0.044715


def gelu_inner(z: np.ndarray, approximate: str) -> np.ndarray:
    """``tanh u`` (``tanh``) or ``Phi(z)`` (``none``): what the forward and backward share."""
    if approximate == "tanh":
        return np.tanh(SQRT_2_OVER_PI * (z + TANH_CUBIC * z ** 3))
    return 0.5 * (1.0 + erf(z * INV_SQRT_2))


def gelu(z: np.ndarray, inner: np.ndarray, approximate: str) -> np.ndarray:
    """``h = gelu(z)`` given ``inner = gelu_inner(z, approximate)``."""
    return 0.5 * z * (1.0 + inner) if approximate == "tanh" else z * inner


def gelu_grad(z: np.ndarray, inner: np.ndarray, approximate: str) -> np.ndarray:
    """``dh/dz`` given ``inner = gelu_inner(z, approximate)`` (module docstring)."""
    if approximate == "tanh":
        du = SQRT_2_OVER_PI * (1.0 + 3.0 * TANH_CUBIC * z * z)
        return 0.5 * (1.0 + inner) + 0.5 * z * (1.0 - inner * inner) * du
    return inner + z * INV_SQRT_2PI * np.exp(-0.5 * z * z)


@dataclass(frozen=True)
class Gelu(Layer):
    """GELU in the form ``approximate`` (``none``: exact erf; ``tanh``); module docstring."""

    kind = "gelu"
    role = "activation"
    approximate: str = "none"

    def __post_init__(self) -> None:
        if self.approximate not in GELU_FORMS:
            raise ValueError(f"{self.name}: unknown gelu approximate {self.approximate!r}; "
                             f"known: {', '.join(GELU_FORMS)}")

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        inner = gelu_inner(x, self.approximate)
        return gelu(x, inner, self.approximate), inner if run.keep else None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        inner = cache if cache is not None else gelu_inner(x, self.approximate)
        return dy * gelu_grad(x, inner, self.approximate), {}
