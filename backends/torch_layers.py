"""The torch layer table: every layer kind of :data:`reference.layers.KINDS` as torch's own
module, and where each of the layer's canonical parameters lives in that module.

Modules work on torch's layouts: feature maps NCHW, flat inputs ``[N, D]``. A row builds its
module from the layer, the layer's per-sample canonical input shape (``(D,)`` or NHWC
``(H, W, C)``) and the spec:

- ``dense``: ``nn.Linear(D, units, bias=use_bias)`` (``weight [units, D] = W.T``);
- ``conv2d``: ``nn.Conv2d(C, filters, kernel, stride)`` (OIHW kernel) after
  :func:`tf_same_pad`, the pair named ``pad`` and ``conv`` in an ``nn.Sequential``;
- ``maxpool``: ``nn.MaxPool2d(size, stride)`` after :func:`tf_same_pad` with ``-inf``;
- ``avgpool``: ``nn.AvgPool2d(size, stride)`` (VALID only, so no padded cell is counted);
- ``flatten``: ``nn.Flatten()`` (NCHW order: :mod:`.layout` permutes the next dense weight's
  rows);
- ``dropout``: :class:`MaskedDropout`, the given 0/1 mask times ``1 / keep_prob`` (no torch RNG);
- ``prelu``: ``nn.PReLU(num_parameters=1)`` shared, ``C``/``D`` per channel or unit;
- ``gelu``: ``nn.GELU(approximate='none' | 'tanh')``;
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
    MaxPool,
    PReLU,
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
                     padding=padding, dtype=DTYPES[spec.dtype])
    return nn.Sequential(OrderedDict(pad=pad, conv=conv))


def _maxpool(layer: MaxPool, shape: Shape, spec: Spec) -> nn.Module:
    pad, padding = tf_same_pad(shape[:2], layer.size, layer.stride, layer.padding,
                               value=-math.inf)
    return nn.Sequential(OrderedDict(pad=pad, pool=nn.MaxPool2d(layer.size, layer.stride,
                                                                padding=padding)))


def _avgpool(layer: AvgPool, shape: Shape, spec: Spec) -> nn.Module:
    return nn.AvgPool2d(layer.size, layer.stride)


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
    without bias declares none)."""
    paths = {getattr(layer, field): path for field, path in LAYERS[layer.kind].variables}
    buffers = dict(module.named_buffers())
    return {name: buffers[paths[name]] if paths[name] in buffers
            else module.get_parameter(paths[name]) for name in layer.param_specs(shape)}
