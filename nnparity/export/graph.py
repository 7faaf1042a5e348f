"""A spec as a flat list of layers, the one description every export writer renders.

Layers carry the canonical parameter names (``W1``/``b1`` for the MLP, ``conv1.W``/``fc1.b`` for
the CNN) and every shape, so a writer never looks at the spec's family: the family is looked up
once, in :data:`LAYERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnparity.reference.cnn_spec import CNNSpec
from nnparity.reference.conv import output_hw, padding_amounts
from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer
from nnparity.reference.spec import MLPSpec

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
    """An activation by reference name; ``slope`` is the PReLU parameter's name."""

    name: str
    kind: str
    slope: str | None = None


@dataclass(frozen=True)
class Conv:
    """A convolution ``W [k, k, c_in, c_out]`` (HWIO) on NHWC, TensorFlow padding ``pads``."""

    name: str
    k: int
    c_in: int
    c_out: int
    stride: int
    padding: str
    pads: Pads
    weight: str
    bias: str


@dataclass(frozen=True)
class Pool:
    """A ``k x k`` max-pool; padded cells hold ``-inf``."""

    name: str
    k: int
    stride: int
    padding: str
    pads: Pads


@dataclass(frozen=True)
class Flatten:
    """``[N, h, w, c]`` -> ``[N, h * w * c]`` in NHWC order (the canonical one)."""

    h: int
    w: int
    c: int


@dataclass(frozen=True)
class Dropout:
    """Inverted dropout with keep probability ``keep_prob``."""

    keep_prob: float


Layer = Dense | Act | Conv | Pool | Flatten | Dropout


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
    def weights(self) -> list[str]:
        """Names of the tensors weight decay applies to."""
        return [layer.weight for layer in self.layers if isinstance(layer, Dense | Conv)]


def _mlp_layers(spec: MLPSpec) -> list[Layer]:
    layers: list[Layer] = []
    for i, act in enumerate(spec.activations, 1):
        layers.append(Dense(f"layer{i}", spec.widths[i - 1], spec.widths[i], f"W{i}",
                            f"b{i}" if spec.bias else None))
        layers.append(Act(f"act{i}", act, f"a{i}" if act == "prelu" else None))
    return layers


def _cnn_layers(spec: CNNSpec) -> list[Layer]:
    layers: list[Layer] = []
    hw, c = spec.input_shape[:2], spec.input_shape[2]
    for i, block in enumerate(spec.conv, 1):
        k = (block.kernel, block.kernel)
        layers.append(Conv(f"conv{i}", block.kernel, c, block.filters, block.stride,
                           block.padding, padding_amounts(hw, k, block.stride, block.padding),
                           f"conv{i}.W", f"conv{i}.b"))
        layers.append(Act(f"act_conv{i}", block.activation))
        hw, c = output_hw(hw, k, block.stride, block.padding), block.filters
        if block.pool:
            window = (block.pool, block.pool)
            layers.append(Pool(f"pool{i}", block.pool, block.pool_stride, block.pool_padding,
                               padding_amounts(hw, window, block.pool_stride, block.pool_padding)))
            hw = output_hw(hw, window, block.pool_stride, block.pool_padding)
    layers.append(Flatten(hw[0], hw[1], c))
    widths = [spec.flat_dim, *spec.dense, spec.classes]
    acts = (*spec.dense_activations, "identity")
    for j, act in enumerate(acts, 1):
        if j == len(acts) and spec.keep_prob < 1:
            layers.append(Dropout(spec.keep_prob))
        layers.append(Dense(f"fc{j}", widths[j - 1], widths[j], f"fc{j}.W", f"fc{j}.b"))
        layers.append(Act(f"act_fc{j}", act))
    return layers


LAYERS: dict[str, Callable[[Any], list[Layer]]] = {"mlp": _mlp_layers, "cnn": _cnn_layers}


def network(spec: Spec, optimizer: Optimizer, title: str) -> Network:
    """The export description of ``spec`` trained with ``optimizer``."""
    return Network(title, tuple(LAYERS[spec.family](spec)), tuple(spec.input_shape),
                   spec.output_dim, spec.loss, spec.reduction, spec.weight_decay, spec.dtype,
                   spec.param_shapes(), optimizer)
