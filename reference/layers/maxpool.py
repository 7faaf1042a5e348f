"""``maxpool``: max-pooling over ``size x size`` windows of an NHWC map, the gradient routed to
the first arg-max of each window in row-major order (:mod:`reference.pool`, which states the tie
rule every backend follows). ``padding`` ``SAME`` (padded cells hold ``-inf``) or ``VALID``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conv import PADDINGS, output_size
from ..pool import maxpool2d_argmax, maxpool2d_backward, relu_maxpool2d, relu_maxpool2d_backward
from .base import Layer, Params, Run, Shape, positive_int, spatial


@dataclass(frozen=True)
class MaxPool(Layer):
    """A ``size`` window moved by ``stride`` (default: ``size``) with ``padding``."""

    kind = "maxpool"
    size: int = 2
    stride: int = 0
    padding: str = "SAME"

    def __post_init__(self) -> None:
        positive_int(self.size, f"{self.name}: size")
        object.__setattr__(self, "stride", self.stride or self.size)
        positive_int(self.stride, f"{self.name}: stride")
        padding = str(self.padding).upper()
        if padding not in PADDINGS:
            raise ValueError(f"{self.name}: unknown padding {self.padding!r}; known: "
                             f"{', '.join(p.lower() for p in PADDINGS)}")
        object.__setattr__(self, "padding", padding)

    def output_shape(self, shape: Shape) -> Shape:
        h, w, c = spatial(shape, f"{self.name} (maxpool)")
        sizes = [output_size(s, self.size, self.stride, self.padding) for s in (h, w)]
        if min(sizes) <= 0:
            raise ValueError(f"{self.name}: pool {self.size} with VALID padding does not fit "
                             f"the {h}x{w} input")
        return (*sizes, c)

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        y, arg = maxpool2d_argmax(x, self.size, self.stride, self.padding)
        return y, arg if run.keep else None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return maxpool2d_backward(dy, x, self.size, self.stride, self.padding, arg=cache), {}

    @property
    def fuses_relu(self) -> bool:
        """Whether a relu right before this pool can run on the pooled map instead (windows
        that do not overlap: :func:`reference.pool.relu_maxpool2d_backward`)."""
        return self.stride >= self.size

    def forward_after_relu(self, z: np.ndarray) -> tuple[np.ndarray, Any]:
        """``(pool(relu(z)), arg)``, pooled first (:func:`reference.pool.relu_maxpool2d`)."""
        return relu_maxpool2d(z, self.size, self.stride, self.padding)

    def backward_after_relu(self, dy: np.ndarray, z: np.ndarray, h: np.ndarray,
                            arg: np.ndarray) -> np.ndarray:
        """``dL/dz`` through relu and this pool (:func:`reference.pool.relu_maxpool2d_backward`)."""
        return relu_maxpool2d_backward(dy, z, h, arg, self.size, self.stride, self.padding)
