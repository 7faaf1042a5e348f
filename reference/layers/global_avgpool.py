"""``global_avgpool``: the mean of each channel of an NHWC map over its ``H x W`` cells (torch
``nn.AdaptiveAvgPool2d(1)`` then a flatten, Keras ``GlobalAveragePooling2D()``).

Shapes: ``x [N, H, W, C] -> y [N, C]`` (flat: a dense layer may follow without a flatten).
Forward ``y[n, c] = mean_{i, j} x[n, i, j, c]``; backward ``dx[n, i, j, c] = dy[n, c] / (H W)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Layer, Params, Run, Shape, spatial


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Each channel's mean over the map; no fields."""

    kind = "global_avgpool"

    def output_shape(self, shape: Shape) -> Shape:
        return (spatial(shape, f"{self.name} (global_avgpool)")[2],)

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return x.mean(axis=(1, 2)), None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        h, w = x.shape[1:3]
        return np.broadcast_to((dy / (h * w))[:, None, None, :], x.shape).copy(), {}
