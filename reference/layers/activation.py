"""The activation layers, one per name of :mod:`reference.activations`: ``sigmoid``, ``tanh``,
``relu``, ``relu3``, ``leaky_relu``, ``identity`` (elementwise ``h = f(z)``, any shape), and
``prelu`` with its learnable slope.

Backward: ``dL/dz = dL/dh * f'(z, h)`` (``identity``: ``dL/dh`` itself). ``prelu``:
``dL/dz = dL/dh * (1 if z > 0 else a)`` and ``dL/da = sum(dL/dh * min(z, 0))`` over every entry
for one shared slope ``a [1]``, over every axis but the last for one slope per unit or channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..activations import ACTIVATIONS, PRELU_SLOPES, prelu, prelu_grad, prelu_slope_grad
from .base import Layer, Params, Run, Shape


@dataclass(frozen=True)
class Activation(Layer):
    """An elementwise activation without parameters; ``kind`` is its name."""

    role = "activation"
    function: str = "identity"

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.function

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return ACTIVATIONS[self.function].f(x), None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        if self.function == "identity":
            return dy, {}  # f' = 1
        return dy * ACTIVATIONS[self.function].df(x, y), {}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.function}


@dataclass(frozen=True)
class PReLU(Layer):
    """``h = z if z > 0 else a z``; ``slopes``: ``shared`` (one, ``nn.PReLU()``) or ``unit``
    (one per unit of a flat input or per channel of a map, Keras' ``PReLU(shared_axes=[1, 2])``).
    Parameter ``slope`` (default ``<name>.a``); ``row_slopes``: per-unit slopes as ``[1, D]``
    (an :class:`~reference.spec.MLPSpec`'s layout)."""

    kind = "prelu"
    role = "activation"
    slopes: str = "shared"
    slope: str = ""
    row_slopes: bool = False

    def __post_init__(self) -> None:
        if self.slopes not in PRELU_SLOPES:
            raise ValueError(f"{self.name}: unknown prelu slopes {self.slopes!r}; known: "
                             f"{', '.join(PRELU_SLOPES)}")
        object.__setattr__(self, "slope", self.slope or f"{self.name}.a")

    def slope_shape(self, shape: Shape) -> Shape:
        """``(1,)`` shared; ``(D,)``/``(C,)`` per unit (``(1, D)`` with ``row_slopes``)."""
        if self.slopes == "shared":
            return (1,)
        return (1, shape[-1]) if self.row_slopes else (shape[-1],)

    def param_specs(self, shape: Shape) -> dict[str, tuple[Shape, str]]:
        return {self.slope: (self.slope_shape(shape), "slope")}

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return prelu(x, params[self.slope]), None  # the slope as given

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        a = params[self.slope]
        grad = prelu_slope_grad(x, dy, self.slope_shape(x.shape[1:]))
        return dy * prelu_grad(x, a), {self.slope: grad}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "prelu", "slopes": self.slopes}
