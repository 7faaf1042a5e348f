"""``avgpool``: average pooling over ``size x size`` windows of an NHWC map, moved by
``stride`` (default ``size``), ``padding`` ``VALID`` or ``SAME`` (TensorFlow's amounts: an odd
total puts the extra row/column at the bottom/right).

With SAME, windows reach over the map's edge; the mean is over the **valid cells only**
(Keras' ``AveragePooling2D(padding="same")``, TensorFlow's ``avg_pool``; torch's
``AvgPool2d(..., count_include_pad=False)``). ``count_include_pad`` true divides by ``k^2``
whatever the window covers, the padded zeros counted (torch's default,
``count_include_pad=True``, so a torch port of a Keras SAME pool computes another layer).

Forward, with ``xp`` the input zero-padded by SAME's amounts and ``d[i, j]`` the window's
divisor (its count of real cells, or ``k^2``)::

    y[n, i, j, c] = sum_{p, q} xp[n, s*i + p, s*j + q, c] / d[i, j]

Backward: each output's gradient spread over its window, ``dy / d``, overlapping windows
adding, the padded border cropped off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conv import output_size, pad, padding_amounts
from .base import Layer, Params, Run, Shape, positive_int, spatial


def _window_slices(k: int, stride: int, ho: int, wo: int) -> list[tuple[slice, slice]]:
    """Per window offset ``(p, q)``: the input rows and columns it reads for every output."""
    return [(slice(p, p + stride * (ho - 1) + 1, stride), slice(q, q + stride * (wo - 1) + 1,
                                                               stride))
            for p in range(k) for q in range(k)]


def _window_sums(xp: np.ndarray, k: int, stride: int, ho: int, wo: int) -> np.ndarray:
    return sum(xp[:, rows, cols, :] for rows, cols in _window_slices(k, stride, ho, wo))


def divisors(hw: tuple[int, int], k: int, stride: int,
             pads: tuple[tuple[int, int], tuple[int, int]], count_include_pad: bool,
             dtype: np.dtype) -> np.ndarray | float:
    """Each output cell's divisor ``[1, Ho, Wo, 1]`` in ``dtype``: its window's real cells
    (``k^2`` when ``count_include_pad`` or nothing is padded)."""
    if count_include_pad or pads == ((0, 0), (0, 0)):
        return float(k * k)
    ho, wo = (output_size(n, k, stride, "SAME") for n in hw)
    ones = pad(np.ones((1, *hw, 1), dtype=dtype), pads)
    return _window_sums(ones, k, stride, ho, wo)


def avgpool2d(x: np.ndarray, k: int, stride: int, padding: str = "VALID",
              count_include_pad: bool = False) -> np.ndarray:
    """``x [N, H, W, C] -> y [N, Ho, Wo, C]``, the mean of each ``k x k`` window (module
    docstring)."""
    hw = x.shape[1:3]
    pads = padding_amounts(hw, (k, k), stride, padding)
    ho, wo = (output_size(n, k, stride, padding) for n in hw)
    total = _window_sums(pad(x, pads) if padding == "SAME" else x, k, stride, ho, wo)
    return total / divisors(hw, k, stride, pads, count_include_pad, x.dtype)


def avgpool2d_backward(dy: np.ndarray, x: np.ndarray, k: int, stride: int,
                       padding: str = "VALID", count_include_pad: bool = False) -> np.ndarray:
    """``dL/dx [N, H, W, C]`` from ``dy [N, Ho, Wo, C]``: ``dy / d`` on every cell of each
    window, overlapping windows adding up, the padding cropped."""
    hw = x.shape[1:3]
    (top, bottom), (left, right) = pads = padding_amounts(hw, (k, k), stride, padding)
    share = dy / divisors(hw, k, stride, pads, count_include_pad, dy.dtype)
    n, h, w, c = x.shape
    dxp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    for rows, cols in _window_slices(k, stride, *dy.shape[1:3]):
        dxp[:, rows, cols, :] += share
    return dxp[:, top:top + h, left:left + w, :]


@dataclass(frozen=True)
class AvgPool(Layer):
    """A ``size`` window moved by ``stride`` (default: ``size``), ``padding`` ``VALID`` or
    ``SAME``; ``count_include_pad``: SAME's padded cells counted in the mean (torch's
    default; Keras' SAME, and the default here, counts the real cells only)."""

    kind = "avgpool"
    size: int = 2
    stride: int = 0
    padding: str = "VALID"
    count_include_pad: bool = False

    def __post_init__(self) -> None:
        positive_int(self.size, f"{self.name}: size")
        object.__setattr__(self, "stride", self.stride or self.size)
        positive_int(self.stride, f"{self.name}: stride")
        padding = str(self.padding).upper()
        if padding not in ("VALID", "SAME"):
            raise ValueError(f"{self.name}: avgpool padding must be 'valid' or 'same', got "
                             f"{self.padding!r}")
        if not isinstance(self.count_include_pad, bool):
            raise ValueError(f"{self.name}: count_include_pad must be true or false, got "
                             f"{self.count_include_pad!r}")
        object.__setattr__(self, "padding", padding)

    def output_shape(self, shape: Shape) -> Shape:
        h, w, c = spatial(shape, f"{self.name} (avgpool)")
        sizes = [output_size(s, self.size, self.stride, self.padding) for s in (h, w)]
        if min(sizes) <= 0:
            raise ValueError(f"{self.name}: avgpool {self.size} does not fit the {h}x{w} input")
        return (*sizes, c)

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return avgpool2d(x, self.size, self.stride, self.padding, self.count_include_pad), None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return avgpool2d_backward(dy, x, self.size, self.stride, self.padding,
                                  self.count_include_pad), {}

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if not self.count_include_pad:  # the default: specs written before it stay the same
            del data["count_include_pad"]
        return data
