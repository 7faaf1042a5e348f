"""``residual``: the residual block ``y = x + f(x)``, ``f`` a sub-list of layers (``net``).

Shapes: ``x [N, *s]``, ``f(x) [N, *t]``. With ``s == t`` the skip path is the identity; with
``projection`` (required when ``s != t``: a mismatch without it is refused naming both shapes)
the skip path is a projection ``P(x)`` with its own parameters, so ``y = P(x) + f(x)``:

- flat input ``x [N, D]``: a dense ``P(x) = x W + b``, ``W [D, D_out]`` (``<name>.W``),
  ``b [D_out]`` (``<name>.b``);
- map input ``x [N, H, W, C]``: a 1x1 convolution ``W [1, 1, C, C_out]`` (HWIO), ``b [C_out]``,
  VALID, of stride ``projection_stride`` (ResNet's downsampling shortcut: ``f`` then maps
  ``H x W`` to ``ceil(H / s) x ceil(W / s)``, as a SAME convolution of stride ``s`` does;
  stride 1: ``f`` keeps ``H`` and ``W``).

``projection_bias`` false: the projection has no ``b`` (as before a batch normalisation).

Backward (``dy = dL/dy``): the sub-list's walk in reverse from ``dy`` gives ``dL/dx`` through
``f`` and the sub-list's gradients and deltas; the skip path adds ``dy`` (identity) or the
projection's ``dy W^T`` (``dL/dW = x^T dy``, ``dL/db = 1^T dy``; the 1x1 conv likewise per
pixel), so ``dL/dx = dL/dx|_f + dL/dx|_skip``.

The sub-list is named by the spec's rule (:mod:`reference.netspec`: its layers continue the
network's counters, so names stay unique), and its layers record their own tensors and deltas
in the trace as they would in the outer list; the block records its output as ``h[<name>]``.
A sub-list holds no dropout, flatten or residual layer, and starts with a dense or conv layer
(an activation follows a dense or conv layer, as everywhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Layer, Params, Run, Shape, positive_int
from .conv2d import Conv2D
from .dense import Dense

NOT_IN_A_BLOCK = ("dropout", "flatten", "residual")
"""Kinds a residual's sub-list refuses (a mask column layout, a map flattened under the skip
path, nesting)."""

Passed = list[tuple[np.ndarray, np.ndarray, Any]]
"""Per inner layer: ``(input, output, cache)`` of a forward pass."""


@dataclass(frozen=True)
class Residual(Layer):
    """``y = x + f(x)`` over the sub-list ``net`` (module docstring); ``projection``: a dense
    or 1x1 conv on the skip path (parameters ``<name>.W``, ``<name>.b``), of stride
    ``projection_stride`` on a map, with a bias unless ``projection_bias`` is false."""

    kind = "residual"
    role = "block"
    net: tuple[Layer, ...] = ()
    projection: bool = False
    projection_stride: int = 1
    projection_bias: bool = True
    weight: str = ""
    bias: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.net, tuple) or not self.net \
                or not all(isinstance(layer, Layer) for layer in self.net):
            raise ValueError(f"{self.name}: a residual block needs a non-empty \"net\" list")
        refused = sorted({layer.kind for layer in self.net if layer.kind in NOT_IN_A_BLOCK})
        if refused:
            raise ValueError(f"{self.name}: a residual block's net cannot hold "
                             f"{', '.join(refused)} layers")
        for what in ("projection", "projection_bias"):
            if not isinstance(getattr(self, what), bool):
                raise ValueError(f"{self.name}: {what} must be true or false, got "
                                 f"{getattr(self, what)!r}")
        positive_int(self.projection_stride, f"{self.name}: projection_stride")
        if self.projection_stride != 1 and not self.projection:
            raise ValueError(f"{self.name}: projection_stride needs \"projection\": true")
        object.__setattr__(self, "weight", self.weight or f"{self.name}.W")
        object.__setattr__(self, "bias", self.bias or f"{self.name}.b")

    def inner_shapes(self, shape: Shape) -> list[Shape]:
        """The input's per-sample shape, then each inner layer's output shape."""
        shapes = [tuple(shape)]
        for layer in self.net:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        return shapes

    def skip(self, shape: Shape) -> Dense | Conv2D | None:
        """The projection on the skip path as a layer named like the block (None: identity)."""
        if not self.projection:
            return None
        out = self.inner_shapes(shape)[-1]
        if len(shape) == 1:
            return Dense(self.name, units=out[0], use_bias=self.projection_bias,
                         weight=self.weight, bias=self.bias)
        return Conv2D(self.name, filters=out[-1], kernel=1, stride=self.projection_stride,
                      padding="VALID", use_bias=self.projection_bias, weight=self.weight,
                      bias=self.bias)

    def output_shape(self, shape: Shape) -> Shape:
        out = self.inner_shapes(shape)[-1]
        s = self.projection_stride
        if s != 1 and len(shape) != 3:
            raise ValueError(f"{self.name}: projection_stride {s} needs a map input, got "
                             f"shape {list(shape)}")
        strided = tuple(-(-size // s) for size in tuple(shape)[:-1])
        same_kind = len(out) == len(shape) and out[:-1] == strided
        if out == tuple(shape) or (self.projection and same_kind):
            return out
        if self.projection:
            raise ValueError(f"{self.name}: the block's net maps shape {list(shape)} to "
                             f"{list(out)}; its projection (dense, or 1x1 conv of stride {s}) "
                             f"gives {[*strided, out[-1]]}")
        raise ValueError(f"{self.name}: the block's net maps shape {list(shape)} to "
                         f"{list(out)}: set \"projection\": true to project the input")

    def param_specs(self, shape: Shape) -> dict[str, tuple[Shape, str]]:
        """The inner layers' parameters in order, then the projection's."""
        specs: dict[str, tuple[Shape, str]] = {}
        for layer, inner in zip(self.net, self.inner_shapes(shape), strict=False):
            specs.update(layer.param_specs(inner))
        skip = self.skip(tuple(shape))
        if skip is not None:
            specs.update(skip.param_specs(tuple(shape)))
        return specs

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        """``(y, (passed, skip cache))``: ``passed`` holds each inner layer's input, output and
        cache (the walk records the inner tensors from it)."""
        passed: Passed = []
        h = x
        for layer in self.net:
            y, cache = layer.forward(h, params, run)
            passed.append((h, y, cache))
            h = y
        skip = self.skip(x.shape[1:])
        if skip is None:
            return x + h, (passed, None)
        projected, skip_cache = skip.forward(x, params, run)
        return projected + h, (passed, skip_cache)

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        dx, grads, _ = self.backward_with_deltas(dy, x, y, cache, params, run, need_dx)
        return dx, grads

    def backward_with_deltas(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                             params: Params, run: Run, need_dx: bool
                             ) -> tuple[np.ndarray | None, Params, dict[str, np.ndarray]]:
        """``(dL/dx, gradients, deltas)``: :meth:`backward` plus the inner dense/conv layers'
        deltas ``dL/dz`` by name."""
        passed, skip_cache = cache
        deltas: dict[str, np.ndarray] = {}
        grads: Params = {}
        owners = [i for i, layer in enumerate(self.net) if layer.role == "param"]
        stop = 0 if need_dx else (owners[0] if owners else len(self.net))
        upstream: np.ndarray | None = dy
        for i in range(len(self.net) - 1, stop - 1, -1):
            layer = self.net[i]
            if layer.role == "param":
                deltas[layer.name] = upstream
            x_in, y_out, inner_cache = passed[i]
            upstream, layer_grads = layer.backward(upstream, x_in, y_out, inner_cache, params,
                                                   run, need_dx or i > stop)
            grads.update(layer_grads)
        skip = self.skip(x.shape[1:])
        if skip is None:
            return (upstream + dy if need_dx else None), grads, deltas
        dskip, skip_grads = skip.backward(dy, x, y, skip_cache, params, run, need_dx)
        grads.update(skip_grads)
        return (upstream + dskip if need_dx else None), grads, deltas

    def to_dict(self) -> dict[str, Any]:
        options = {key: value for key, value in (("projection_stride", self.projection_stride),
                                                 ("projection_bias", self.projection_bias))
                   if value != type(self).__dataclass_fields__[key].default}
        return {"kind": self.kind, "net": [layer.to_dict() for layer in self.net],
                "projection": self.projection, **options}


def each_layer(net: tuple[Layer, ...]) -> Iterator[Layer]:
    """Every layer of ``net`` in forward order, a block followed by its sub-list's layers."""
    for layer in net:
        yield layer
        if isinstance(layer, Residual):
            yield from each_layer(layer.net)


def layer_lists(net: tuple[Layer, ...]) -> Iterator[tuple[Layer, ...]]:
    """``net`` and every block's sub-list in it (depth first)."""
    yield net
    for layer in net:
        if isinstance(layer, Residual):
            yield from layer_lists(layer.net)
