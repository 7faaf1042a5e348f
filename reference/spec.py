"""The immutable description of an MLP, validated on construction and serialisable to JSON.

Parameter names are 1-based like the BP lecture's ``W^(1)``: ``W1, b1, W2, b2, ...``; layer
names are ``layer1, layer2, ...``. Canonical shapes (the BP lecture): ``W_l [D_{l-1}, D_l]``,
``b_l [1, D_l]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .activations import ALIASES, KNOWN, PRELU_SLOPES
from .layer_list import LayerList
from .layers import Activation, Dense, Dropout, Layer, PReLU
from .serial import SpecSerial

LOSSES = ("l2", "ce", "bce", "mse")
REDUCTIONS = ("sum", "mean")
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class MLPSpec(LayerList, SpecSerial):
    """A fully connected network.

    - ``input_dim``: width of ``x [N, input_dim]``.
    - ``layers``: output width of each layer, e.g. ``(20, 20, 3)``.
    - ``activations``: one name per layer (``sigmoid``, ``tanh``, ``relu``, ``identity``, ...;
      ``prelu`` adds a learnable slope ``a{l}``: ``[1]`` shared by the layer, as
      ``nn.PReLU()``, or ``[1, D_l]`` one per unit, as Keras' default ``PReLU()``:
      ``prelu_slopes``).
    - ``loss``: ``l2`` (``0.5 sum (o - L)^2``), ``ce`` (softmax cross-entropy on logits ``o``),
      ``bce`` (sigmoid log-loss on a single logit), ``mse`` (the frameworks' ``sum (o - L)^2``,
      no ½; its ``mean`` divides by N·K).
    - ``reduction``: ``sum`` over the batch (the BP lecture) or ``mean`` over samples (the
      three-framework notes, the NumPy blog).
    - ``weight_decay``: lambda in ``0.5 * lambda * sum(W^2)`` over weights (not biases).
    - ``bias``: whether layers have biases (the NumPy basics lecture's known-answer net has none).
    - ``dtype``: ``float64`` or ``float32``.
    - ``prelu_slopes``: ``shared`` (one slope per prelu layer) or ``unit`` (one per unit).
    - ``dropout_after``: 1-based hidden layers whose ``h`` is dropped out in training (inverted
      dropout, keep probability ``keep_prob``, :mod:`.dropout`); the mask ``[N, dropout_units]``
      is their masks side by side, in layer order. Empty (the default): no dropout.
    """

    input_dim: int
    layers: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str = "ce"
    reduction: str = "sum"
    weight_decay: float = 0.0
    bias: bool = True
    dtype: str = "float64"
    prelu_slopes: str = "shared"
    keep_prob: float = 1.0
    dropout_after: tuple[int, ...] = ()
    family: str = field(default="mlp", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "dropout_after", tuple(self.dropout_after))
        acts = tuple(ALIASES.get(a, a) for a in self.activations)
        object.__setattr__(self, "activations", acts)
        _validate(self)

    @property
    def depth(self) -> int:
        """Number of layers."""
        return len(self.layers)

    @property
    def widths(self) -> list[int]:
        """``[input_dim, *layers]``."""
        return [self.input_dim, *self.layers]

    @cached_property
    def net(self) -> tuple[Layer, ...]:
        """The layer list: per layer ``l`` a dense layer ``layer<l>`` (``W<l> [D_{l-1}, D_l]``,
        ``b<l> [1, D_l]``), its activation (a PReLU's slope ``a<l>``), and ``dropout<l>`` for
        the layers of ``dropout_after``."""
        net: list[Layer] = []
        for i, (width, act) in enumerate(zip(self.layers, self.activations, strict=True), 1):
            name = f"layer{i}"
            net.append(Dense(name=name, units=width, use_bias=self.bias, weight=f"W{i}",
                             bias=f"b{i}", flat_bias=False))
            if act == "prelu":
                net.append(PReLU(name=name, slopes=self.prelu_slopes, slope=f"a{i}",
                                 row_slopes=True))
            else:
                net.append(Activation(name=name, function=act))
            if i in self.dropout_after:
                net.append(Dropout(name=f"dropout{i}", keep_prob=self.keep_prob))
        return tuple(net)

    @classmethod
    def from_training(cls, row_shape: tuple[int, ...], *, layers: tuple[int, ...],
                      activations: tuple[str, ...], **fields: Any) -> MLPSpec:
        """The MLP a training run describes: rows of ``row_shape`` flattened to the input,
        ``layers`` and ``activations`` (one per layer); ``fields``: ``loss``, ``reduction``,
        ``weight_decay``, ``bias``, ``dtype`` (others are the CNN's, ignored)."""
        if len(activations) != len(layers):
            raise ValueError(f"{len(layers)} layers but {len(activations)} activations")
        own = ("loss", "reduction", "weight_decay", "bias", "dtype")
        return cls(math.prod(row_shape), tuple(layers), tuple(activations),
                   **{k: v for k, v in fields.items() if k in own})

    # An MLP has no feature maps: its input shape is its width.
    input_shape = property(lambda self: (self.input_dim,), doc="``(input_dim,)``.")

    def as_input(self, x: Any) -> np.ndarray:
        """``x`` as ``[N, input_dim]`` in the spec's dtype; ``ValueError`` on another shape."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"input of shape {x.shape} does not fit input_dim {self.input_dim}")
        return x

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists for tuples)."""
        data = asdict(self)
        data["layers"] = list(self.layers)
        data["activations"] = list(self.activations)
        if not self.dropout_after:  # specs without dropout keep their recorded form
            del data["keep_prob"], data["dropout_after"]
        else:
            data["dropout_after"] = list(self.dropout_after)
        return data


def _validate(spec: MLPSpec) -> None:
    if isinstance(spec.input_dim, bool) or not isinstance(spec.input_dim, int) \
            or spec.input_dim <= 0:
        raise ValueError(f"input_dim must be a positive integer, got {spec.input_dim!r}")
    if not spec.layers:
        raise ValueError("layers is empty: an MLP needs at least one layer")
    for i, width in enumerate(spec.layers, 1):
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise ValueError(f"layer {i} width must be a positive integer, got {width!r}")
    if len(spec.activations) != len(spec.layers):
        raise ValueError(
            f"{len(spec.layers)} layers but {len(spec.activations)} activations: give one per layer"
        )
    for name in spec.activations:
        if name not in KNOWN:
            raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(KNOWN))}")
    if spec.loss not in LOSSES:
        raise ValueError(f"unknown loss {spec.loss!r}; known: {', '.join(LOSSES)}")
    if spec.reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {spec.reduction!r}; known: {', '.join(REDUCTIONS)}")
    if spec.dtype not in DTYPES:
        raise ValueError(f"unknown dtype {spec.dtype!r}; known: {', '.join(DTYPES)}")
    if spec.prelu_slopes not in PRELU_SLOPES:
        raise ValueError(f"unknown prelu_slopes {spec.prelu_slopes!r}; known: "
                         f"{', '.join(PRELU_SLOPES)}")
    if isinstance(spec.keep_prob, bool) or not 0 < spec.keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {spec.keep_prob!r}")
    after = spec.dropout_after
    if list(after) != sorted(set(after)) or any(
            isinstance(i, bool) or not isinstance(i, int) or not 1 <= i < len(spec.layers)
            for i in after):
        raise ValueError(f"dropout_after must list hidden layers 1..{len(spec.layers) - 1} in "
                         f"increasing order, got {list(after)!r}")
    if spec.keep_prob < 1 and not after:
        raise ValueError("keep_prob < 1 needs dropout_after: the hidden layers to drop out")
    if not 0 <= spec.weight_decay < float("inf"):
        raise ValueError(f"weight_decay must be >= 0 and finite, got {spec.weight_decay!r}")
    out = spec.layers[-1]
    if spec.loss == "ce" and out < 2:
        raise ValueError(f"loss 'ce' needs an output width >= 2 (softmax over classes), got {out}")
    if spec.loss == "bce" and out != 1:
        raise ValueError(f"loss 'bce' needs an output width of 1 (one logit), got {out}")
