"""``conv2d``: the 2-D convolution (cross-correlation, as every framework computes it), NHWC.

Shapes: ``x [N, H, W, C]``, ``W [k, k, C, F]`` (HWIO), ``b [F]``; ``y = z [N, Ho, Wo, F]``;
``padding`` ``SAME`` (TensorFlow's rule: the extra row/column bottom/right) or ``VALID``.
Forward and backward: :mod:`reference.conv` (im2col, one GEMM; the backward's ``dL/dx`` is the
transposed convolution, added back by col2im).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conv import PADDINGS, Padding, conv2d, conv2d_backward, conv2d_cols, im2col, output_size
from .base import Layer, Params, Run, Shape, as_param, bilinear_terms, positive_int, spatial


@dataclass(frozen=True)
class Conv2D(Layer):
    """``filters`` output channels, a square ``kernel``, ``stride``, ``padding`` (``SAME`` or
    ``VALID``, ``same``/``valid`` accepted, or a number ``p >= 0`` of zeros on every side,
    PyTorch's ``padding=p``: :mod:`reference.conv`), a bias unless ``use_bias`` is false (as
    before a batch normalisation, which removes it). Parameters ``<name>.W``, ``<name>.b``."""

    kind = "conv2d"
    role = "param"
    filters: int = 1
    kernel: int = 1
    stride: int = 1
    padding: Padding = "SAME"
    use_bias: bool = True
    weight: str = ""
    bias: str = ""

    def __post_init__(self) -> None:
        for field in ("filters", "kernel", "stride"):
            positive_int(getattr(self, field), f"{self.name}: {field}")
        if isinstance(self.padding, int) and not isinstance(self.padding, bool):
            if self.padding < 0:
                raise ValueError(f"{self.name}: padding must be same, valid or a number of "
                                 f"zeros >= 0, got {self.padding!r}")
        else:
            padding = str(self.padding).upper()
            if padding not in PADDINGS:
                raise ValueError(f"{self.name}: unknown padding {self.padding!r}; known: "
                                 f"{', '.join(p.lower() for p in PADDINGS)} or a number of "
                                 "zeros on every side")
            object.__setattr__(self, "padding", padding)
        object.__setattr__(self, "weight", self.weight or f"{self.name}.W")
        object.__setattr__(self, "bias", self.bias or f"{self.name}.b")

    def output_shape(self, shape: Shape) -> Shape:
        h, w, _ = spatial(shape, f"{self.name} (conv2d)")
        sizes = [output_size(s, self.kernel, self.stride, self.padding) for s in (h, w)]
        if min(sizes) <= 0:
            raise ValueError(f"{self.name}: kernel {self.kernel} with {self.padding} padding "
                             f"does not fit the {h}x{w} input")
        return (*sizes, self.filters)

    def param_specs(self, shape: Shape) -> dict[str, tuple[Shape, str]]:
        c = spatial(shape, f"{self.name} (conv2d)")[2]
        specs = {self.weight: ((self.kernel, self.kernel, c, self.filters), "conv")}
        if self.use_bias:
            specs[self.bias] = ((self.filters,), "bias")
        return specs

    def _bias(self, params: Params, run: Run) -> np.ndarray | None:
        return as_param(params, self.bias, run.dtype) if self.use_bias else None

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        cols = im2col(x, (self.kernel, self.kernel), self.stride, self.padding)
        z = conv2d_cols(cols, as_param(params, self.weight, run.dtype), self._bias(params, run))
        return z, cols if run.keep else None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        dx, dW, db = conv2d_backward(dy, x, as_param(params, self.weight, run.dtype),
                                     self.stride, self.padding, cols=cache, need_dx=need_dx)
        return dx, {self.weight: dW, self.bias: db} if self.use_bias else {self.weight: dW}

    gradient_terms = bilinear_terms

    def scale(self, x: np.ndarray, params: Params, run: Run) -> np.ndarray:
        """The convolution of ``|x|`` with ``|W|`` plus ``|b|``, per unit of ``z``."""
        b = self._bias(params, run)
        return conv2d(np.abs(x), np.abs(as_param(params, self.weight, run.dtype)),
                      None if b is None else np.abs(b), self.stride, self.padding)
