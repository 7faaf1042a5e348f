"""A spec's layer list (``spec.net``) placed with its shapes: what every export writer renders.

Each layer of the reference list becomes the record a writer needs (its parameter names as the
spec gives them, ``W1``/``b1``, ``conv1.W``/``fc1.b``, ``dense1.W``, and every shape and
padding), through one table keyed by layer kind, :data:`PLACERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnparity.files.escape import python_string
from nnparity.reference.activations import ACTIVATIONS
from nnparity.reference.conv import Padding, padding_amounts
from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer

Pads = tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))


@dataclass(frozen=True)
class Dense:
    """``z = h @ W + b``: ``W [d_in, d_out]``; ``bias`` None for a layer without one."""

    name: str
    d_in: int
    d_out: int
    weight: str
    bias: str | None


@dataclass(frozen=True)
class Act:
    """An activation by reference name; ``slope`` is the PReLU parameter's name,
    ``approximate`` GELU's form (``none``: exact erf, ``tanh``)."""

    name: str
    kind: str
    slope: str | None = None
    approximate: str | None = None


@dataclass(frozen=True)
class Conv:
    """A convolution ``W [k, k, c_in, c_out]`` (HWIO) on NHWC: ``padding`` TensorFlow's rule
    or a number of zeros on every side, its amounts ``pads``; ``bias`` None: none."""

    name: str
    k: int
    c_in: int
    c_out: int
    stride: int
    padding: Padding
    pads: Pads
    weight: str
    bias: str | None


@dataclass(frozen=True)
class Pool:
    """A ``k x k`` pool, ``mode`` ``max`` (padded cells hold ``-inf``) or ``avg`` (the mean of
    each window's real cells; of all ``k * k`` with ``count_include_pad``, torch's default)."""

    name: str
    k: int
    stride: int
    padding: str
    pads: Pads
    mode: str = "max"
    count_include_pad: bool = False


@dataclass(frozen=True)
class Norm:
    """Layer normalisation of ``[N, d]`` rows: ``(h - mean) / sqrt(var + epsilon) * gamma +
    beta``, ``weight`` naming gamma and ``bias`` beta."""

    name: str
    d: int
    epsilon: float
    weight: str
    bias: str


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalisation of the last axis (``c`` features of ``[N, c]``, or channels of an
    NHWC map when ``spatial``): batch statistics in training, the running ones (``mean``,
    ``var``, state) at evaluation; ``momentum`` weighs the old running value, ``variance``
    (``biased``/``unbiased``) is the running variance's estimator."""

    name: str
    c: int
    spatial: bool
    momentum: float
    epsilon: float
    variance: str
    gamma: str
    beta: str
    mean: str
    var: str


@dataclass(frozen=True)
class GlobalPool:
    """Each channel's mean over an ``h x w`` map: ``[N, h, w, c] -> [N, c]``."""

    name: str
    h: int
    w: int
    c: int


@dataclass(frozen=True)
class Flatten:
    """``[N, h, w, c]`` -> ``[N, h * w * c]`` in NHWC order (the canonical one)."""

    h: int
    w: int
    c: int


@dataclass(frozen=True)
class Dropout:
    """Inverted dropout with keep probability ``keep_prob`` on its ``columns`` ``(start,
    stop)`` of the dropout mask ``[N, units]``."""

    name: str
    keep_prob: float
    columns: tuple[int, int]


@dataclass(frozen=True)
class Residual:
    """``y = skip(x) + body(x)``: the ``body`` layers placed in order, ``skip`` None (the
    identity) or the projection (a :class:`Dense`, or a 1x1 VALID :class:`Conv`) named like
    the block, its parameters ``<name>.W``, ``<name>.b``."""

    name: str
    body: tuple[Dense | Act | Conv | Pool | Norm | BatchNorm | GlobalPool, ...]
    skip: Dense | Conv | None


Layer = Dense | Act | Conv | Pool | Flatten | Dropout | Norm | BatchNorm | GlobalPool | Residual


def each_layer(layers: tuple[Layer, ...]) -> list[Any]:
    """Every placed layer, a block's body and projection after the block itself."""
    found: list[Any] = []
    for layer in layers:
        found.append(layer)
        if isinstance(layer, Residual):
            found += each_layer(layer.body) + ([layer.skip] if layer.skip else [])
    return found


@dataclass(frozen=True)
class Network:
    """Everything a writer needs: ``layers`` in order, input shape (without N), loss,
    reduction, weight decay, dtype, the parameter shapes and the optimiser."""

    title: str
    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    outputs: int
    loss: str
    reduction: str
    weight_decay: float
    dtype: str
    shapes: dict[str, tuple[int, ...]]
    optimizer: Optimizer

    @property
    def state(self) -> list[str]:
        """Names of the running statistics: state, never trained."""
        return [name for layer in each_layer(self.layers) if isinstance(layer, BatchNorm)
                for name in (layer.mean, layer.var)]

    @property
    def trainable(self) -> list[str]:
        """Names of the parameters an optimiser updates: every one but the state."""
        return [name for name in self.shapes if name not in self.state]

    @property
    def weights(self) -> list[str]:
        """Names of the tensors weight decay applies to."""
        return [layer.weight for layer in each_layer(self.layers)
                if isinstance(layer, Dense | Conv)]


Placer = Callable[[Any, tuple[int, ...], tuple[int, ...], Spec], list[Layer]]


def _dense(layer: Any, shape: tuple[int, ...], out: tuple[int, ...], spec: Spec) -> list[Layer]:
    return [Dense(layer.name, shape[0], layer.units, layer.weight,
                  layer.bias if layer.use_bias else None)]


def _activation(layer: Any, shape: tuple[int, ...], out: tuple[int, ...],
                spec: Spec) -> list[Layer]:
    return [Act(f"act_{layer.name}", layer.kind, getattr(layer, "slope", None),
                getattr(layer, "approximate", None))]


def _conv(layer: Any, shape: tuple[int, ...], out: tuple[int, ...], spec: Spec) -> list[Layer]:
    k = (layer.kernel, layer.kernel)
    return [Conv(layer.name, layer.kernel, shape[2], layer.filters, layer.stride, layer.padding,
                 padding_amounts(shape[:2], k, layer.stride, layer.padding), layer.weight,
                 layer.bias if layer.use_bias else None)]


def _pool(layer: Any, shape: tuple[int, ...], out: tuple[int, ...], spec: Spec) -> list[Layer]:
    window = (layer.size, layer.size)
    return [Pool(layer.name, layer.size, layer.stride, layer.padding,
                 padding_amounts(shape[:2], window, layer.stride, layer.padding),
                 "avg" if layer.kind == "avgpool" else "max",
                 getattr(layer, "count_include_pad", False))]


def _layernorm(layer: Any, shape: tuple[int, ...], out: tuple[int, ...],
               spec: Spec) -> list[Layer]:
    return [Norm(layer.name, shape[0], layer.epsilon, layer.weight, layer.bias)]


def _global_avgpool(layer: Any, shape: tuple[int, ...], out: tuple[int, ...],
                    spec: Spec) -> list[Layer]:
    return [GlobalPool(layer.name, *shape)]


def _flatten(layer: Any, shape: tuple[int, ...], out: tuple[int, ...],
             spec: Spec) -> list[Layer]:
    return [Flatten(*shape)] if len(shape) == 3 else []


def _dropout(layer: Any, shape: tuple[int, ...], out: tuple[int, ...],
             spec: Spec) -> list[Layer]:
    """Written where it drops something (``keep_prob < 1``): keep 1 is the identity."""
    columns = spec.dropout_columns[layer.name]
    return [Dropout(layer.name, layer.keep_prob, (columns.start, columns.stop))] \
        if layer.keep_prob < 1 else []


def _residual(layer: Any, shape: tuple[int, ...], out: tuple[int, ...],
              spec: Spec) -> list[Layer]:
    shapes = layer.inner_shapes(shape)
    body = [placed for inner, a, b in zip(layer.net, shapes, shapes[1:], strict=False)
            for placed in PLACERS[inner.kind](inner, a, b, spec)]
    skip = layer.skip(shape)
    placed = None if skip is None else PLACERS[skip.kind](skip, shape, out, spec)[0]
    return [Residual(layer.name, tuple(body), placed)]


def _batchnorm(layer: Any, shape: tuple[int, ...], out: tuple[int, ...],
               spec: Spec) -> list[Layer]:
    return [BatchNorm(layer.name, shape[-1], len(shape) == 3, layer.momentum, layer.epsilon,
                      layer.variance, layer.gamma, layer.beta, layer.mean, layer.var)]


def batchnorms(net: Network) -> list[BatchNorm]:
    """The network's batch normalisations, blocks' bodies included."""
    return [layer for layer in each_layer(net.layers) if isinstance(layer, BatchNorm)]


def refuse_variance(net: Network, framework: str, keeps: str) -> None:
    """``ValueError`` (one line, naming the layer) when a batchnorm's running variance is not
    the estimator ``keeps`` that ``framework`` maintains: its file would train another model."""
    for layer in batchnorms(net):
        if layer.variance != keeps:
            raise ValueError(
                f"{layer.name}: {framework} keeps the {keeps} running variance, the layer asks "
                f"for variance {layer.variance!r}; export it with variance {keeps!r}, or to "
                "another framework")


PLACERS: dict[str, Placer] = {
    "dense": _dense, "conv2d": _conv, "maxpool": _pool, "avgpool": _pool, "flatten": _flatten,
    "dropout": _dropout, **dict.fromkeys((*ACTIVATIONS, "prelu", "gelu"), _activation),
    "residual": _residual, "layernorm": _layernorm, "global_avgpool": _global_avgpool,
    "batchnorm": _batchnorm,
}
"""Layer kind -> the export layers it becomes, given its per-sample input and output shapes."""


def network(spec: Spec, optimizer: Optimizer, title: str) -> Network:
    """The export description of ``spec`` trained with ``optimizer``: its layer list, each
    layer placed with its shapes."""
    shapes = spec.layer_shapes
    layers = [placed for layer, shape, out in zip(spec.net, shapes, shapes[1:], strict=False)
              for placed in PLACERS[layer.kind](layer, shape, out, spec)]
    return Network(title, tuple(layers), tuple(spec.input_shape), spec.output_dim, spec.loss,
                   spec.reduction, spec.weight_decay, spec.dtype, spec.param_shapes(), optimizer)


def padding_literal(padding: Padding, pairs: bool = False) -> str:
    """``padding`` as Python source: a rule's name as a string literal, a number of zeros as
    itself (``pairs``: ``((p, p), (p, p))``, as ``jax.lax`` takes explicit amounts)."""
    if isinstance(padding, int):
        return f"(({padding}, {padding}), ({padding}, {padding}))" if pairs else str(padding)
    return python_string(padding)
