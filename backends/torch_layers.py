"""The torch layer table: every layer kind of :data:`reference.layers.KINDS` as torch's own
module, and where each of the layer's canonical parameters lives in that module.

Modules work on torch's layouts: feature maps NCHW, flat inputs ``[N, D]``. A row builds its
module from the layer, the layer's per-sample canonical input shape (``(D,)`` or NHWC
``(H, W, C)``) and the spec:

- ``dense``: ``nn.Linear(D, units, bias=use_bias)`` (``weight [units, D] = W.T``);
- ``conv2d``: ``nn.Conv2d(C, filters, kernel, stride, bias=use_bias)`` (OIHW kernel) after
  :func:`tf_same_pad`, the pair named ``pad`` and ``conv`` in an ``nn.Sequential``;
- ``maxpool``: ``nn.MaxPool2d(size, stride)`` after :func:`tf_same_pad` with ``-inf``;
- ``avgpool``: ``nn.AvgPool2d(size, stride)``; SAME: its own symmetric ``padding`` with
  ``count_include_pad`` as the layer's, or for an asymmetric SAME (the extra pixel
  bottom/right) a zero ``nn.ConstantPad2d`` before it, the mean over real cells only then
  :class:`RealCellsAvgPool`;
- ``global_avgpool``: ``nn.AdaptiveAvgPool2d(1)`` then ``nn.Flatten()`` (``[N, C]``);
- ``layernorm``: ``nn.LayerNorm(D, eps=epsilon)`` (``weight`` gamma, ``bias`` beta);
- ``flatten``: ``nn.Flatten()`` (NCHW order: :mod:`.layout` permutes the next dense weight's
  rows);
- ``dropout``: :class:`MaskedDropout`, the given 0/1 mask times ``1 / keep_prob`` (no torch RNG);
- ``prelu``: ``nn.PReLU(num_parameters=1)`` shared, ``C``/``D`` per channel or unit;
- ``gelu``: ``nn.GELU(approximate='none' | 'tanh')``;
- ``residual``: :class:`ResidualBlock`, an ``nn.Module`` holding the sub-list's modules
  (``body``) and adding its input, through ``skip``: ``nn.Identity``, or the projection's
  ``nn.Linear`` (flat) / 1x1 ``nn.Conv2d`` (map) built by the dense/conv2d rows;
- ``batchnorm``: ``nn.BatchNorm1d`` (flat) or ``nn.BatchNorm2d`` (maps) with torch's
  ``momentum = 1 - momentum`` (torch weighs the new batch) and ``eps = epsilon``; gamma and beta
  are its ``weight`` and ``bias``, the running statistics its buffers ``running_mean`` and
  ``running_var`` (torch keeps the unbiased variance: a ``biased`` layer is refused);
- the parameter-free activations: ``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``, ``nn.Identity``,
  ``nn.LeakyReLU(0.01)`` and :class:`ReLU3`.

Parameter values are converted between the canonical layout and these modules' by
:mod:`.layout` (by ``spec.param_kind`` and ``spec.flat_params``), not here.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nnparity.reference.activations import PRELU_INIT
from nnparity.reference.conv import padding_amounts
from nnparity.reference.family import Spec
from nnparity.reference.layers import (
    AvgPool,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Gelu,
    Layer,
    LayerNorm,
    MaxPool,
    PReLU,
    Residual,
)

from .edges import ConventionRefused
from .layout import nchw_flatten_order

DTYPES = {"float64": torch.float64, "float32": torch.float32}

Shape = tuple[int, ...]


class ReLU3(nn.Module):
    """``relu(z)^3`` (the Fashion-MNIST report's RELU3); autograd gives ``3 relu(z)^2``."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r = torch.relu(z)
        return r * r * r


class MaskedDropout(nn.Module):
    """Inverted dropout with an explicit mask: ``h * (mask[:, index] / keep_prob)``.

    ``mask [N, units]`` is the whole network's canonical 0/1 mask; ``index`` (a buffer) picks
    this layer's columns in the order of ``h``'s features (permuted to NCHW flatten order when
    ``h`` is a torch flatten). No mask (evaluation): ``h`` itself.
    """

    index: torch.Tensor

    def __init__(self, keep_prob: float, index: np.ndarray) -> None:
        super().__init__()
        self.keep_prob = keep_prob
        self.register_buffer("index", torch.from_numpy(np.asarray(index, dtype=np.int64)))

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return h
        return h * (mask[:, self.index] / self.keep_prob)


def tf_same_pad(hw: tuple[int, int], window: int, stride: int, padding: str,
                value: float = 0.0) -> tuple[nn.Module, tuple[int, int] | int]:
    """TensorFlow's padding rule as torch modules: ``(pad module, padding for the conv/pool)``.

    A symmetric SAME padding (odd window, stride 1) goes to the layer's own ``padding``; an
    asymmetric one (stride 2 or even window: the extra pixel bottom/right, see
    :func:`reference.conv.padding_amounts`) is an explicit ``nn.ConstantPad2d`` with
    ``(left, right, top, bottom)`` and ``value`` (``-inf`` before a max-pool) before a layer
    with ``padding=0``. VALID: no padding.
    """
    (top, bottom), (left, right) = padding_amounts(hw, (window, window), stride, padding)
    if top == bottom and left == right:
        return nn.Identity(), (top, left)
    return nn.ConstantPad2d((left, right, top, bottom), value), 0


def _linear(layer: Dense, shape: Shape, spec: Spec) -> nn.Module:
    return nn.Linear(shape[0], layer.units, bias=layer.use_bias, dtype=DTYPES[spec.dtype])


def _conv2d(layer: Conv2D, shape: Shape, spec: Spec) -> nn.Module:
    pad, padding = tf_same_pad(shape[:2], layer.kernel, layer.stride, layer.padding)
    conv = nn.Conv2d(shape[2], layer.filters, layer.kernel, stride=layer.stride,
                     padding=padding, bias=layer.use_bias, dtype=DTYPES[spec.dtype])
    return nn.Sequential(OrderedDict(pad=pad, conv=conv))


def _maxpool(layer: MaxPool, shape: Shape, spec: Spec) -> nn.Module:
    pad, padding = tf_same_pad(shape[:2], layer.size, layer.stride, layer.padding,
                               value=-math.inf)
    return nn.Sequential(OrderedDict(pad=pad, pool=nn.MaxPool2d(layer.size, layer.stride,
                                                                padding=padding)))


class RealCellsAvgPool(nn.Module):
    """TensorFlow's SAME average pool where its padding is asymmetric (torch's own padding is
    symmetric): the window sums of the zero-padded map divided by each window's count of real
    cells, ``avg_pool(pad(x)) / avg_pool(pad(1))``."""

    def __init__(self, size: int, stride: int, pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.pad, self.pool = nn.ConstantPad2d(pads, 0.0), nn.AvgPool2d(size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(x[:1, :1])
        return self.pool(self.pad(x)) / self.pool(self.pad(ones))


def _avgpool(layer: AvgPool, shape: Shape, spec: Spec) -> nn.Module:
    (top, bottom), (left, right) = padding_amounts(shape[:2], (layer.size, layer.size),
                                                   layer.stride, layer.padding)
    if top == bottom and left == right:
        return nn.AvgPool2d(layer.size, layer.stride, padding=(top, left),
                            count_include_pad=layer.count_include_pad)
    pads = (left, right, top, bottom)
    if layer.count_include_pad:
        return nn.Sequential(nn.ConstantPad2d(pads, 0.0), nn.AvgPool2d(layer.size, layer.stride))
    return RealCellsAvgPool(layer.size, layer.stride, pads)


def _global_avgpool(layer: Layer, shape: Shape, spec: Spec) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _layernorm(layer: LayerNorm, shape: Shape, spec: Spec) -> nn.Module:
    return nn.LayerNorm(shape[0], eps=layer.epsilon, dtype=DTYPES[spec.dtype])


def _gelu(layer: Gelu, shape: Shape, spec: Spec) -> nn.Module:
    return nn.GELU(approximate=layer.approximate)


def _dropout(layer: Dropout, shape: Shape, spec: Spec) -> nn.Module:
    columns = spec.dropout_columns[layer.name]
    index = np.arange(columns.start, columns.stop)
    if layer.name in spec.flat_tensors:  # h is torch's NCHW flatten of spec.flat_map
        index = index[nchw_flatten_order(*spec.flat_map)]
    return MaskedDropout(layer.keep_prob, index)


def _prelu(layer: PReLU, shape: Shape, spec: Spec) -> nn.Module:
    slopes = 1 if layer.slopes == "shared" else shape[-1]  # D, or C of an NHWC map
    return nn.PReLU(num_parameters=slopes, init=PRELU_INIT, dtype=DTYPES[spec.dtype])


class ResidualBlock(nn.Module):
    """``skip(x) + body(x)``: the residual block's sub-list (its reference ``layers`` and their
    modules ``body``, run by :func:`run_chain`) plus the input through ``skip`` (identity or the
    projection)."""

    def __init__(self, layers: tuple[Layer, ...], body: nn.ModuleList, skip: nn.Module) -> None:
        super().__init__()
        self.layers, self.body, self.skip = layers, body, skip

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                traced: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.skip(x) + run_chain(self.layers, self.body, x, mask, traced)


def _residual(layer: Residual, shape: Shape, spec: Spec) -> nn.Module:
    body = nn.ModuleList(build(inner, inner_shape, spec) for inner, inner_shape
                         in zip(layer.net, layer.inner_shapes(shape), strict=False))
    skip = layer.skip(shape)
    return ResidualBlock(layer.net, body,
                         nn.Identity() if skip is None else build(skip, shape, spec))


def run_chain(layers: tuple[Layer, ...], modules: nn.ModuleList, h: torch.Tensor,
              mask: torch.Tensor | None, traced: dict[str, torch.Tensor] | None) -> torch.Tensor:
    """Run ``modules`` (built from ``layers``) on ``h`` in order; into ``traced`` (None: no
    trace) go the reference's keys: ``z.<name>`` of a dense/conv layer, ``h.<name>`` of every
    layer (a dropout's only with a ``mask`` or ``traced_without_mask``), a residual block's
    sub-list before the block's own ``h``."""
    for layer, module in zip(layers, modules, strict=True):
        dropout = isinstance(layer, Dropout)
        if dropout:
            h = module(h, mask)
        elif isinstance(layer, Residual):
            h = module(h, mask, traced)
        else:
            h = module(h)
        if traced is None:
            continue
        if layer.role == "param":
            traced[f"z.{layer.name}"] = h
        if not dropout or mask is not None or layer.traced_without_mask:
            traced[f"h.{layer.name}"] = h
    return h
def _batchnorm(layer: BatchNorm, shape: Shape, spec: Spec) -> nn.Module:
    if layer.variance != "unbiased":
        raise ConventionRefused(f"{layer.name}: torch's BatchNorm keeps the unbiased running "
                                f"variance (n/(n-1)); this layer asks for variance "
                                f"{layer.variance!r}")
    module = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return module(shape[-1], eps=layer.epsilon, momentum=1 - layer.momentum,
                  dtype=DTYPES[spec.dtype])


def _plain(module: Callable[[], nn.Module]) -> Callable[[Any, Shape, Spec], nn.Module]:
    """A row's builder for a module without parameters or settings from the layer."""
    return lambda layer, shape, spec: module()


@dataclass(frozen=True)
class TorchLayer:
    """One row: ``build(layer, shape, spec)`` the module for a per-sample canonical input
    ``shape``; ``variables``: ``(layer field, parameter path in the module)`` per parameter,
    the field holding the parameter's canonical name (``Dense.weight`` -> ``"weight"``)."""

    build: Callable[[Any, Shape, Spec], nn.Module]
    variables: tuple[tuple[str, str], ...] = ()


LAYERS: dict[str, TorchLayer] = {
    "dense": TorchLayer(_linear, (("weight", "weight"), ("bias", "bias"))),
    "conv2d": TorchLayer(_conv2d, (("weight", "conv.weight"), ("bias", "conv.bias"))),
    "maxpool": TorchLayer(_maxpool),
    "avgpool": TorchLayer(_avgpool),
    "flatten": TorchLayer(_plain(nn.Flatten)),
    "dropout": TorchLayer(_dropout),
    "prelu": TorchLayer(_prelu, (("slope", "weight"),)),
    "gelu": TorchLayer(_gelu),
    "residual": TorchLayer(_residual),  # parameters: its sub-list's and skip's (variables)
    "layernorm": TorchLayer(_layernorm, (("weight", "weight"), ("bias", "bias"))),
    "global_avgpool": TorchLayer(_global_avgpool),
    "batchnorm": TorchLayer(_batchnorm, (("gamma", "weight"), ("beta", "bias"),
                                         ("mean", "running_mean"), ("var", "running_var"))),
    "sigmoid": TorchLayer(_plain(nn.Sigmoid)),
    "tanh": TorchLayer(_plain(nn.Tanh)),
    "relu": TorchLayer(_plain(nn.ReLU)),
    "relu3": TorchLayer(_plain(ReLU3)),
    "leaky_relu": TorchLayer(_plain(lambda: nn.LeakyReLU(negative_slope=0.01))),
    "identity": TorchLayer(_plain(nn.Identity)),
}
"""Layer kind -> its torch row (a design test checks every kind of ``KINDS`` has one)."""


def build(layer: Layer, shape: Shape, spec: Spec) -> nn.Module:
    """The torch module of ``layer`` for per-sample input ``shape`` (``ValueError`` for a kind
    without a row)."""
    if layer.kind not in LAYERS:
        raise ValueError(f"the torch backend has no layer {layer.kind!r}")
    return LAYERS[layer.kind].build(layer, shape, spec)


def variables(layer: Layer, shape: Shape, module: nn.Module) -> dict[str, torch.Tensor]:
    """Canonical name -> the module's parameter (or buffer, for state such as running
    statistics), for every parameter ``layer`` declares (in the layer's order; a dense layer
    without bias declares none; a residual block's are its sub-list's, then its
    projection's)."""
    if isinstance(layer, Residual):
        named: dict[str, torch.Tensor] = {}
        for inner, inner_shape, inner_module in zip(layer.net, layer.inner_shapes(shape),
                                                    module.body, strict=False):
            named.update(variables(inner, inner_shape, inner_module))
        skip = layer.skip(shape)
        return named if skip is None else {**named, **variables(skip, shape, module.skip)}
    paths = {getattr(layer, field): path for field, path in LAYERS[layer.kind].variables}
    buffers = dict(module.named_buffers())
    return {name: buffers[paths[name]] if paths[name] in buffers
            else module.get_parameter(paths[name]) for name in layer.param_specs(shape)}
