"""``dense``: the fully connected layer (the BP lecture's ``z = h W + b``).

Shapes: ``x [N, D_in]``, ``W [D_in, D_out]``, ``b [D_out]`` (or ``[1, D_out]`` in an
:class:`~reference.spec.MLPSpec`, as the BP lecture stores it); ``y = z [N, D_out]``.
Forward and backward: :func:`reference.dense.dense`, :func:`reference.dense.dense_backward`
(``dL/dx = delta W^T``, ``dL/dW = x^T delta``, ``dL/db = 1^T delta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dense import dense, dense_backward
from .base import Layer, Params, Run, Shape, as_param, bilinear_terms, flat, positive_int


@dataclass(frozen=True)
class Dense(Layer):
    """``units`` outputs, a bias unless ``use_bias`` is false. Parameter names ``weight`` and
    ``bias`` (default ``<name>.W``, ``<name>.b``); ``flat_bias``: ``b [D]`` (else ``[1, D]``)."""

    kind = "dense"
    role = "param"
    units: int = 1
    use_bias: bool = True
    weight: str = ""
    bias: str = ""
    flat_bias: bool = True

    def __post_init__(self) -> None:
        positive_int(self.units, f"{self.name}: units")
        object.__setattr__(self, "weight", self.weight or f"{self.name}.W")
        object.__setattr__(self, "bias", self.bias or f"{self.name}.b")

    def output_shape(self, shape: Shape) -> Shape:
        flat(shape, f"{self.name} (dense)")
        return (self.units,)

    def param_specs(self, shape: Shape) -> dict[str, tuple[Shape, str]]:
        specs = {self.weight: ((flat(shape, f"{self.name} (dense)"), self.units), "dense")}
        if self.use_bias:
            specs[self.bias] = ((self.units,) if self.flat_bias else (1, self.units), "bias")
        return specs

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        b = as_param(params, self.bias, run.dtype) if self.use_bias else None
        return dense(x, as_param(params, self.weight, run.dtype), b), None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        bias_shape = ((self.units,) if self.flat_bias else (1, self.units)) \
            if self.use_bias else None
        dx, dW, db = dense_backward(dy, x, as_param(params, self.weight, run.dtype), bias_shape,
                                    need_dh=need_dx)
        return dx, {self.weight: dW} if db is None else {self.weight: dW, self.bias: db}

    gradient_terms = bilinear_terms

    def scale(self, x: np.ndarray, params: Params, run: Run) -> np.ndarray:
        """``|x| @ |W| + |b|``: the size of the terms rounding acts on, per unit of ``z``."""
        b = np.abs(as_param(params, self.bias, run.dtype)) if self.use_bias else None
        return dense(np.abs(x), np.abs(as_param(params, self.weight, run.dtype)), b)

    def working_values(self, shape: Shape) -> tuple[int, int]:
        """Per sample: ``(values kept through the step, values the backward adds)``."""
        return self.units, 3 * self.units
