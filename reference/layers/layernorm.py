"""``layernorm``: layer normalisation over the features of a flat input, with a learned scale
and shift (Ba et al. 2016; torch ``nn.LayerNorm(D)``, Keras ``LayerNormalization()``).

Shapes: ``x [N, D]``, ``gamma [D]``, ``beta [D]``; ``y [N, D]``. Per row::

    mu = mean(x),  var = mean((x - mu)^2)       (biased, as both frameworks)
    r = 1 / sqrt(var + epsilon),  xhat = (x - mu) r,  y = gamma xhat + beta

Backward, from ``dy`` (``g = dy gamma``, means over the row's ``D`` features)::

    dgamma = sum_n dy xhat,   dbeta = sum_n dy
    dx = r (g - mean(g) - xhat mean(g xhat))

``epsilon``: torch's default is ``1e-5``, Keras' ``1e-3`` (the spec's default is torch's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Layer, Params, Run, Shape, as_param, flat

TORCH_EPSILON = 1e-5
KERAS_EPSILON = 1e-3


def layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
              epsilon: float) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``(y, (xhat, r))`` for ``x [N, D]``: ``xhat [N, D]`` and ``r = 1/sqrt(var + eps) [N, 1]``
    are what the backward reuses."""
    centred = x - x.mean(axis=1, keepdims=True)
    r = 1.0 / np.sqrt((centred * centred).mean(axis=1, keepdims=True) + epsilon)
    xhat = centred * r
    return xhat * gamma + beta, (xhat, r)


def layernorm_backward(dy: np.ndarray, xhat: np.ndarray, r: np.ndarray, gamma: np.ndarray,
                       need_dx: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dL/dx or None, dL/dgamma [D], dL/dbeta [D])`` (module docstring)."""
    dgamma, dbeta = (dy * xhat).sum(axis=0), dy.sum(axis=0)
    if not need_dx:
        return None, dgamma, dbeta
    g = dy * gamma
    dx = r * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, dgamma, dbeta


@dataclass(frozen=True)
class LayerNorm(Layer):
    """Normalises each row of a flat input; parameters ``weight`` (gamma, default
    ``<name>.gamma``, ones at start) and ``bias`` (beta, ``<name>.beta``, zeros)."""

    kind = "layernorm"
    epsilon: float = TORCH_EPSILON
    weight: str = ""
    bias: str = ""

    def __post_init__(self) -> None:
        eps = self.epsilon
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < np.inf:
            raise ValueError(f"{self.name}: layernorm epsilon must be a positive number, "
                             f"got {eps!r}")
        object.__setattr__(self, "epsilon", float(eps))
        object.__setattr__(self, "weight", self.weight or f"{self.name}.gamma")
        object.__setattr__(self, "bias", self.bias or f"{self.name}.beta")

    def output_shape(self, shape: Shape) -> Shape:
        flat(shape, f"{self.name} (layernorm)")
        return shape

    def param_specs(self, shape: Shape) -> dict[str, tuple[Shape, str]]:
        d = flat(shape, f"{self.name} (layernorm)")
        return {self.weight: ((d,), "scale"), self.bias: ((d,), "bias")}

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        gamma = as_param(params, self.weight, run.dtype)
        y, cache = layernorm(x, gamma, as_param(params, self.bias, run.dtype), self.epsilon)
        return y, cache if run.keep else None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        gamma = as_param(params, self.weight, run.dtype)
        if cache is None:
            _, cache = layernorm(x, gamma, as_param(params, self.bias, run.dtype), self.epsilon)
        dx, dgamma, dbeta = layernorm_backward(dy, *cache, gamma, need_dx)
        return dx, {self.weight: dgamma, self.bias: dbeta}
