"""The immutable description of a CNN (the three-framework notes' net), validated and
JSON-serialisable.

The network, in order::

    x [N, H, W, C]
    -> for each conv block i: conv_i (HWIO kernel, stride, SAME|VALID) -> activation
                              -> optional max-pool (window, stride, SAME|VALID)
    -> flatten in NHWC order  [N, Ho * Wo * Cout]
    -> for each hidden dense layer j: fc_j -> activation
    -> dropout (inverted, keep probability ``keep_prob``) on the input of the output layer
    -> output dense layer (identity: logits) -> softmax cross-entropy

Names (1-based, like the MLP's ``W1``): parameters ``conv1.W [kh, kw, cin, cout]``,
``conv1.b [cout]``, ..., ``fc1.W [in, out]``, ``fc1.b [out]``, ...; the output layer is the last
``fc``. Layer names (keys of ``Trace.z`` and ``Gradients.deltas``): ``conv1, ..., fc1, ...``.
The rows of ``fc1.W`` follow the NHWC flatten order of the last feature map (index
``(h * Wo + w) * C + c``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .activations import ALIASES, get_activation
from .conv import PADDINGS, output_size
from .layer_list import LayerList
from .layers import Activation, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool
from .serial import SpecSerial

LOSSES = ("ce",)
REDUCTIONS = ("sum", "mean")
DTYPES = ("float64", "float32")


def _positive_int(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ConvBlock:
    """One convolution, its activation and an optional max-pool.

    - ``filters``: output channels ``cout``.
    - ``kernel``: square kernel size ``k`` (kernel ``[k, k, cin, cout]``).
    - ``stride``, ``padding`` (``SAME`` | ``VALID``) of the convolution.
    - ``activation``: any name of :mod:`activations` (the notes' CNN: ``relu``).
    - ``pool``: max-pool window size (``0`` = no pool); ``pool_stride`` defaults to ``pool``;
      ``pool_padding`` ``SAME`` (the notes' CNN) or ``VALID``.
    """

    filters: int
    kernel: int
    stride: int = 1
    padding: str = "SAME"
    activation: str = "relu"
    pool: int = 2
    pool_stride: int | None = None
    pool_padding: str = "SAME"

    def __post_init__(self) -> None:
        object.__setattr__(self, "activation", ALIASES.get(self.activation, self.activation))
        if self.pool_stride is None:
            object.__setattr__(self, "pool_stride", self.pool if self.pool else 0)
        for name in ("filters", "kernel", "stride"):
            _positive_int(getattr(self, name), name)
        if self.padding not in PADDINGS:
            raise ValueError(f"unknown padding {self.padding!r}; known: {', '.join(PADDINGS)}")
        get_activation(self.activation)
        if isinstance(self.pool, bool) or not isinstance(self.pool, int) or self.pool < 0:
            raise ValueError(f"pool must be a window size >= 0 (0 = no pool), got {self.pool!r}")
        if self.pool:
            _positive_int(self.pool_stride, "pool_stride")
            if self.pool_padding not in PADDINGS:
                raise ValueError(f"unknown pool_padding {self.pool_padding!r}; "
                                 f"known: {', '.join(PADDINGS)}")
        elif self.pool_stride:
            raise ValueError(f"pool_stride {self.pool_stride} given without a pool (pool=0)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvBlock:
        """Inverse of ``dataclasses.asdict``; unknown keys are an error."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown conv block field(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class CNNSpec(LayerList, SpecSerial):
    """A convolutional network (the three-framework notes' CNN and its generalisations).

    - ``input_shape``: ``(H, W, C)`` of one NHWC image.
    - ``conv``: the conv blocks, in order (:class:`ConvBlock`, or dicts of its fields).
    - ``dense``: widths of the hidden dense layers (the notes' CNN: ``(1024,)``).
    - ``dense_activations``: one name per hidden dense layer; empty means ``relu`` for all.
    - ``keep_prob``: dropout keep probability used in training, applied to the input of the output
      layer (the notes' CNN: 0.5 after ``fc1``); 1 means no dropout. The mask is always explicit.
    - ``classes``: width of the output (logits) layer.
    - ``loss``: ``ce`` (softmax cross-entropy on logits).
    - ``reduction``: ``mean`` over the batch (the notes' CNN) or ``sum``.
    - ``weight_decay``: lambda in ``0.5 * lambda * sum(W^2)`` over ``*.W`` (not biases).
    - ``dtype``: ``float64`` or ``float32``.
    """

    input_shape: tuple[int, int, int]
    conv: tuple[ConvBlock, ...]
    dense: tuple[int, ...] = ()
    dense_activations: tuple[str, ...] = ()
    keep_prob: float = 1.0
    classes: int = 10
    loss: str = "ce"
    reduction: str = "mean"
    weight_decay: float = 0.0
    dtype: str = "float64"
    family: str = field(default="cnn", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        blocks = tuple(b if isinstance(b, ConvBlock) else ConvBlock.from_dict(dict(b))
                       for b in self.conv)
        object.__setattr__(self, "conv", blocks)
        object.__setattr__(self, "dense", tuple(self.dense))
        acts = tuple(self.dense_activations) or ("relu",) * len(self.dense)
        object.__setattr__(self, "dense_activations", tuple(ALIASES.get(a, a) for a in acts))
        _validate(self)

    # ----------------------------------------------------------------------------- shapes
    def feature_shapes(self) -> list[tuple[int, int, int]]:
        """``(H, W, C)`` after each conv block (after its pool), first entry the input's."""
        h, w, c = self.input_shape
        shapes = [(h, w, c)]
        for block in self.conv:
            h = output_size(h, block.kernel, block.stride, block.padding)
            w = output_size(w, block.kernel, block.stride, block.padding)
            c = block.filters
            if block.pool:
                h = output_size(h, block.pool, block.pool_stride, block.pool_padding)
                w = output_size(w, block.pool, block.pool_stride, block.pool_padding)
            shapes.append((h, w, c))
        return shapes

    @property
    def flat_dim(self) -> int:
        """Width of the flattened last feature map (the notes' CNN: ``7 * 7 * 64 = 3136``)."""
        return math.prod(self.feature_shapes()[-1])

    @property
    def dense_widths(self) -> list[int]:
        """``[flat_dim, *dense, classes]``: inputs and outputs of the dense layers."""
        return [self.flat_dim, *self.dense, self.classes]

    @property
    def conv_names(self) -> list[str]:
        """``['conv1', ..., 'convK']``."""
        return [f"conv{i}" for i in range(1, len(self.conv) + 1)]

    @property
    def fc_names(self) -> list[str]:
        """``['fc1', ..., 'fcM']``; the last is the output layer."""
        return [f"fc{j}" for j in range(1, len(self.dense) + 2)]

    @cached_property
    def net(self) -> tuple[Layer, ...]:
        """The layer list: per block ``conv<i>`` and its activation (and ``pool<i>``), then
        ``flatten``, per hidden dense layer ``fc<j>`` and its activation, ``dropout`` (traced at
        evaluation too) and the output layer ``fc<M>`` (logits: no activation)."""
        net: list[Layer] = []
        for i, block in enumerate(self.conv, 1):
            net += [Conv2D(name=f"conv{i}", filters=block.filters, kernel=block.kernel,
                           stride=block.stride, padding=block.padding),
                    Activation(name=f"conv{i}", function=block.activation)]
            if block.pool:
                net.append(MaxPool(name=f"pool{i}", size=block.pool, stride=block.pool_stride,
                                   padding=block.pool_padding))
        net.append(Flatten(name="flatten"))
        for name, width, act in zip(self.fc_names, self.dense, self.dense_activations,
                                    strict=False):
            net += [Dense(name=name, units=width), Activation(name=name, function=act)]
        net += [Dropout(name="dropout", keep_prob=self.keep_prob, traced_without_mask=True),
                Dense(name=self.fc_names[-1], units=self.classes)]
        return tuple(net)

    def as_input(self, x: Any) -> np.ndarray:
        """``x`` as ``[N, H, W, C]`` in the spec's dtype; ``ValueError`` on another shape."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            h, w, c = self.input_shape
            raise ValueError(f"input of shape {x.shape} does not fit [N, {h}, {w}, {c}] (NHWC)")
        return x

    # ----------------------------------------------------------------------- constructors
    @classmethod
    def seed002(cls, dtype: str = "float32", **changes: Any) -> CNNSpec:
        """The three-framework notes' CNN: 28x28x1 -> conv5x5x32 SAME relu -> pool 2x2 SAME ->
        conv5x5x64 SAME relu -> pool 2x2 SAME -> 3136 -> dense 1024 relu -> dropout 0.5 ->
        dense 10, CE mean."""
        return cls(**{"input_shape": (28, 28, 1), "conv": (ConvBlock(32, 5), ConvBlock(64, 5)),
                      "dense": (1024,), "keep_prob": 0.5, "classes": 10, "reduction": "mean",
                      "dtype": dtype, **changes})

    @classmethod
    def tiny(cls, dtype: str = "float64", **changes: Any) -> CNNSpec:
        """The notes' CNN in miniature, small enough for finite differences: 8x8x2 -> conv3x3x3
        SAME relu -> pool -> conv3x3x4 SAME relu -> pool -> 16 -> dense 6 relu -> dropout 0.5 ->
        dense 3."""
        return cls(**{"input_shape": (8, 8, 2), "conv": (ConvBlock(3, 3), ConvBlock(4, 3)),
                      "dense": (6,), "keep_prob": 0.5, "classes": 3, "reduction": "mean",
                      "dtype": dtype, **changes})

    @classmethod
    def from_training(cls, row_shape: tuple[int, ...], *, conv: tuple[int, ...], kernel: int,
                      layers: tuple[int, ...], activations: tuple[str, ...], keep_prob: float,
                      **fields: Any) -> CNNSpec:
        """The three-framework notes' CNN a training run describes, on images of
        ``row_shape`` (``[H, W]`` or ``[H, W, C]``): a conv block (``kernel``, SAME, relu,
        2x2 max-pool) per entry of ``conv``, the hidden dense ``layers[:-1]`` (their
        ``activations`` when one per layer is given, else relu), dropout ``keep_prob``, the
        output ``layers[-1]``; ``fields``: ``loss``, ``reduction``, ``weight_decay``, ``dtype``."""
        if len(row_shape) not in (2, 3):
            raise ValueError(f"a CNN needs image data, but rows of this dataset have shape "
                             f"{tuple(row_shape)}")
        shape = (row_shape[0], row_shape[1], row_shape[2] if len(row_shape) == 3 else 1)
        hidden = tuple(activations[:-1]) if len(activations) == len(layers) else ()
        own = ("loss", "reduction", "weight_decay", "dtype")
        return cls(shape, tuple(ConvBlock(f, kernel) for f in conv), dense=tuple(layers[:-1]),
                   dense_activations=hidden, keep_prob=keep_prob, classes=layers[-1],
                   **{k: v for k, v in fields.items() if k in own})

    # ------------------------------------------------------------------------ serialising
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists for tuples, a list of dicts for the conv blocks)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["conv"] = [asdict(b) for b in self.conv]
        data["dense"] = list(self.dense)
        data["dense_activations"] = list(self.dense_activations)
        return data


def _validate(spec: CNNSpec) -> None:
    if len(spec.input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {spec.input_shape!r}")
    for what, value in zip(("height", "width", "channels"), spec.input_shape, strict=True):
        _positive_int(value, f"input {what}")
    if not spec.conv:
        raise ValueError("conv is empty: a CNN needs at least one conv block (use MLPSpec)")
    for i, width in enumerate(spec.dense, 1):
        _positive_int(width, f"dense layer {i} width")
    if len(spec.dense_activations) != len(spec.dense):
        raise ValueError(f"{len(spec.dense)} dense layers but {len(spec.dense_activations)} "
                         "dense_activations: give one per hidden dense layer (or none for relu)")
    for name in spec.dense_activations:
        get_activation(name)
    _positive_int(spec.classes, "classes")
    if spec.loss not in LOSSES:
        raise ValueError(f"unknown loss {spec.loss!r}; known: {', '.join(LOSSES)}")
    if spec.loss == "ce" and spec.classes < 2:
        raise ValueError(f"loss 'ce' needs classes >= 2 (softmax over classes), got {spec.classes}")
    if spec.reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {spec.reduction!r}; known: {', '.join(REDUCTIONS)}")
    if spec.dtype not in DTYPES:
        raise ValueError(f"unknown dtype {spec.dtype!r}; known: {', '.join(DTYPES)}")
    if isinstance(spec.keep_prob, bool) or not 0 < spec.keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {spec.keep_prob!r}")
    if not 0 <= spec.weight_decay < float("inf"):
        raise ValueError(f"weight_decay must be >= 0 and finite, got {spec.weight_decay!r}")
    # Every feature map must stay non-empty; name the block that empties it.
    h, w, _ = spec.input_shape
    for i, block in enumerate(spec.conv, 1):
        sizes = []
        for size in (h, w):
            size = output_size(size, block.kernel, block.stride, block.padding)
            if size <= 0:
                raise ValueError(f"conv{i}: kernel {block.kernel} with VALID padding does not fit "
                                 f"the {h}x{w} input")
            if block.pool:
                pooled = output_size(size, block.pool, block.pool_stride, block.pool_padding)
                if pooled <= 0:
                    raise ValueError(f"conv{i}: pool {block.pool} with VALID padding does not fit "
                                     f"the conv output of size {size}")
                size = pooled
            sizes.append(size)
        h, w = sizes
