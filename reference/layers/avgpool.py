"""``avgpool``: average pooling over ``size x size`` windows of an NHWC map, moved by
``stride`` (default ``size``), VALID padding only.

Forward: ``y[n, i, j, c] = mean_{p, q} x[n, s*i + p, s*j + q, c]`` over the ``k*k`` window.
Backward: each output's gradient spread equally over its window, overlapping windows adding::

    dx[n, s*i + p, s*j + q, c] += dy[n, i, j, c] / k^2

SAME is refused: the frameworks disagree on padded cells (torch's ``AvgPool2d`` counts them,
``count_include_pad=True``, and pads symmetrically; TensorFlow/Keras' ``AveragePooling2D``
divides by the real cells only), so no one convention would hold for all backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conv import output_size
from .base import Layer, Params, Run, Shape, positive_int, spatial


def _window_slices(k: int, stride: int, ho: int, wo: int) -> list[tuple[slice, slice]]:
    """Per window offset ``(p, q)``: the input rows and columns it reads for every output."""
    return [(slice(p, p + stride * (ho - 1) + 1, stride), slice(q, q + stride * (wo - 1) + 1,
                                                               stride))
            for p in range(k) for q in range(k)]


def avgpool2d(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """``x [N, H, W, C] -> y [N, Ho, Wo, C]``, the mean of each VALID ``k x k`` window."""
    ho, wo = (-(-(size - k + 1) // stride) for size in x.shape[1:3])
    total = sum(x[:, rows, cols, :] for rows, cols in _window_slices(k, stride, ho, wo))
    return total / k ** 2


def avgpool2d_backward(dy: np.ndarray, x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """``dL/dx [N, H, W, C]`` from ``dy [N, Ho, Wo, C]``: ``dy / k^2`` on every cell of each
    window, overlapping windows adding up."""
    share = dy / k ** 2
    dx = np.zeros(x.shape, dtype=dy.dtype)
    for rows, cols in _window_slices(k, stride, *dy.shape[1:3]):
        dx[:, rows, cols, :] += share
    return dx


@dataclass(frozen=True)
class AvgPool(Layer):
    """A ``size`` window moved by ``stride`` (default: ``size``), ``padding`` ``VALID``."""

    kind = "avgpool"
    size: int = 2
    stride: int = 0
    padding: str = "VALID"

    def __post_init__(self) -> None:
        positive_int(self.size, f"{self.name}: size")
        object.__setattr__(self, "stride", self.stride or self.size)
        positive_int(self.stride, f"{self.name}: stride")
        padding = str(self.padding).upper()
        if padding != "VALID":
            raise ValueError(f"{self.name}: avgpool takes padding 'valid' only, got "
                             f"{self.padding!r} (torch counts SAME's padded cells in the mean, "
                             "Keras does not)")
        object.__setattr__(self, "padding", padding)

    def output_shape(self, shape: Shape) -> Shape:
        h, w, c = spatial(shape, f"{self.name} (avgpool)")
        sizes = [output_size(s, self.size, self.stride, "VALID") for s in (h, w)]
        if min(sizes) <= 0:
            raise ValueError(f"{self.name}: avgpool {self.size} does not fit the {h}x{w} input")
        return (*sizes, c)

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return avgpool2d(x, self.size, self.stride), None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return avgpool2d_backward(dy, x, self.size, self.stride), {}
