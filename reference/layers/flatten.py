"""``flatten``: an NHWC map ``[N, H, W, C]`` to ``[N, H*W*C]`` in NHWC order (index
``(h * W + w) * C + c``); backward reshapes the gradient back. Frameworks that flatten NCHW
(torch) permute the rows of the next dense weight instead (:mod:`backends.layout`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Layer, Params, Run, Shape


@dataclass(frozen=True)
class Flatten(Layer):
    """No fields."""

    kind = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return x.reshape(x.shape[0], -1), None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return dy.reshape(x.shape), {}
