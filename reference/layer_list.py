"""What every spec derives from its layer list (``spec.net``), so that no caller asks which
kind of spec it holds: parameter names, shapes and kinds, layer (delta) names, each layer's
activation, the dropout mask's columns, and the flatten between maps and dense layers.

A spec class mixes in :class:`LayerList` and provides ``net`` (a tuple of
:class:`~reference.layers.Layer`), ``input_shape`` (per sample) and ``dtype``.
"""

from __future__ import annotations

import math
from functools import cached_property
from itertools import pairwise
from typing import Any

import numpy as np

from .layers import STATE_KINDS, Dropout, Flatten, Layer, Shape
from .layers.residual import each_layer, layer_lists


class LayerList:
    """Derived views of ``self.net``; each computed once (a training step asks)."""

    net: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    dtype: str

    @cached_property
    def layer_shapes(self) -> list[Shape]:
        """Per-sample shapes: the input's, then each layer's output (``ValueError`` naming the
        first layer that cannot take its input)."""
        shapes: list[Shape] = [tuple(self.input_shape)]
        for layer in self.net:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        return shapes

    @cached_property
    def placed_layers(self) -> list[tuple[Layer, Shape, Shape]]:
        """``(layer, per-sample input shape, output shape)`` of every layer, a residual block's
        sub-list before the block."""
        return _placed(self.net, self.layer_shapes)

    @cached_property
    def z_shapes(self) -> dict[str, Shape]:
        """Layer name -> per-sample shape of its ``z`` (its output, NHWC for a map), for every
        layer with parameters (:attr:`layer_names`, a residual block's inner layers too)."""
        shapes = {layer.name: out for layer, _, out in self.placed_layers
                  if layer.role == "param"}
        return {name: shapes[name] for name in self.layer_names}

    @cached_property
    def first_with_parameters(self) -> int:
        """Index in ``net`` of the first layer with parameters (or a residual block): the
        backward pass ends there, the data's own gradient being of no use."""
        return next(i for i, (layer, shape) in enumerate(zip(self.net, self.layer_shapes,
                                                             strict=False))
                    if layer.role in ("param", "block") or layer.param_specs(shape))

    @cached_property
    def _param_specs(self) -> dict[str, tuple[Shape, str]]:
        specs: dict[str, tuple[Shape, str]] = {}
        for layer, shape in zip(self.net, self.layer_shapes, strict=False):
            specs.update(layer.param_specs(shape))
        return specs

    @cached_property
    def trained_names(self) -> tuple[str, ...]:
        """The parameters with a gradient (all but state), in :meth:`param_shapes`' order."""
        return tuple(name for name, (_, kind) in self._param_specs.items()
                     if kind not in STATE_KINDS)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape, in the order of the layers (each layer's own order)."""
        return {name: shape for name, (shape, _) in self._param_specs.items()}

    def param_kind(self, name: str) -> str:
        """``dense``, ``conv`` (HWIO), ``bias``, ``slope`` (a PReLU's) or ``scale`` (a
        layernorm's gamma)."""
        return self._param_specs[name][1]

    def is_weight(self, name: str) -> bool:
        """True for the tensors weight decay applies to: dense and conv weights."""
        return self._param_specs[name][1] in ("dense", "conv")

    def is_state(self, name: str) -> bool:
        """True for state tensors (a batch normalisation's running statistics): no gradient,
        no weight decay, no optimiser; each training pass replaces them."""
        return self._param_specs[name][1] in STATE_KINDS

    @cached_property
    def layer_names(self) -> list[str]:
        """Names of the layers with parameters, in order: keys of ``Trace.z`` and of
        ``Gradients.deltas`` (a residual block's inner layers included, in forward order)."""
        return [layer.name for layer in each_layer(self.net) if layer.role == "param"]

    @property
    def layer_activations(self) -> dict[str, str]:
        """Layer name -> the kind of the activation that follows it (``identity`` when none)."""
        acts = dict.fromkeys(self.layer_names, "identity")
        for net in layer_lists(self.net):
            for before, layer in pairwise(net):
                if layer.role == "activation" and before.role == "param":
                    acts[before.name] = layer.kind
        return acts

    @cached_property
    def dropout_columns(self) -> dict[str, slice]:
        """Dropout layer name -> its columns of the mask ``[N, dropout_units]`` (the dropout
        layers' masks side by side, in layer order)."""
        columns, start = {}, 0
        for layer, shape in zip(self.net, self.layer_shapes, strict=False):
            if isinstance(layer, Dropout):
                columns[layer.name] = slice(start, start + math.prod(shape))
                start += math.prod(shape)
        return columns

    @property
    def dropout_units(self) -> int:
        """Width of the dropout mask ``[N, units]``."""
        return sum(s.stop - s.start for s in self.dropout_columns.values())

    @property
    def output_dim(self) -> int:
        """Width of the network's output."""
        return self.layer_shapes[-1][0]

    def _flatten_index(self) -> int | None:
        return next((i for i, layer in enumerate(self.net) if isinstance(layer, Flatten)), None)

    @property
    def flat_map(self) -> tuple[int, ...] | None:
        """``(H, W, C)`` of the map whose NHWC flatten feeds the dense layers (None: no
        flatten of a map)."""
        i = self._flatten_index()
        return None if i is None or len(self.layer_shapes[i]) != 3 else self.layer_shapes[i]

    @property
    def flat_params(self) -> tuple[str, ...]:
        """Parameters whose rows follow that flatten (the next dense layer's weight)."""
        i = self._flatten_index()
        if i is None or self.flat_map is None:
            return ()
        layer = next((x for x in self.net[i + 1:] if x.role == "param"), None)
        return tuple(n for n, (_, kind) in layer.param_specs(self.layer_shapes[i + 1]).items()
                     if kind == "dense") if layer is not None else ()

    @property
    def flat_tensors(self) -> tuple[str, ...]:
        """Traced ``h`` tensors laid out along that flatten: the flatten's own, and the dropout
        layers that follow it before a layer with parameters."""
        i = self._flatten_index()
        if i is None or self.flat_map is None:
            return ()
        names = [self.net[i].name]
        for layer in self.net[i + 1:]:
            if not isinstance(layer, Dropout):
                break
            names.append(layer.name)
        return tuple(names)

    def net_input(self, x: Any) -> np.ndarray:
        """``x`` as ``[N, *input_shape]`` in the spec's dtype; ``ValueError`` on another shape."""
        x = np.asarray(x, dtype=self.dtype)
        if x.shape[1:] != tuple(self.input_shape) or x.ndim != len(self.input_shape) + 1:
            shape = ", ".join(str(d) for d in self.input_shape)
            raise ValueError(f"input of shape {x.shape} does not fit [N, {shape}]")
        return x


def _placed(net: tuple[Layer, ...], shapes: list[Shape]) -> list[tuple[Layer, Shape, Shape]]:
    """``(layer, input shape, output shape)`` of every layer of ``net`` on ``shapes`` (its input
    and each layer's output), a block's sub-list before it."""
    found = []
    for layer, shape, out in zip(net, shapes[:-1], shapes[1:], strict=True):
        if layer.role == "block":
            found += _placed(layer.net, layer.inner_shapes(shape))
        found.append((layer, shape, out))
    return found
