"""The immutable description of an MLP, validated on construction and serialisable to JSON.

Parameter names are 1-based like the BP lecture's ``W^(1)``: ``W1, b1, W2, b2, ...``; layer
names are ``layer1, layer2, ...``. Canonical shapes (the BP lecture): ``W_l [D_{l-1}, D_l]``,
``b_l [1, D_l]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from .activations import ALIASES, KNOWN
from .serial import SpecSerial

LOSSES = ("l2", "ce", "bce", "mse")
REDUCTIONS = ("sum", "mean")
DTYPES = ("float64", "float32")
PRELU_SLOPES = ("shared", "unit")


@dataclass(frozen=True)
class MLPSpec(SpecSerial):
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
    family: str = field(default="mlp", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        acts = tuple(ALIASES.get(a, a) for a in self.activations)
        object.__setattr__(self, "activations", acts)
        _validate(self)

    @property
    def depth(self) -> int:
        """Number of layers."""
        return len(self.layers)

    @cached_property
    def layer_names(self) -> list[str]:
        """``['layer1', ..., 'layerL']`` (computed once: every training step asks)."""
        return [f"layer{i}" for i in range(1, self.depth + 1)]

    @property
    def layer_activations(self) -> dict[str, str]:
        """Layer name -> its activation's name."""
        return dict(zip(self.layer_names, self.activations, strict=True))

    @property
    def widths(self) -> list[int]:
        """``[input_dim, *layers]``."""
        return [self.input_dim, *self.layers]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape, in order ``W1, b1, [a1,] W2, ...`` (``a`` = prelu slope)."""
        return dict(self._param_shapes)

    @cached_property
    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        """:meth:`param_shapes`, computed once (every training step asks)."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i in range(1, self.depth + 1):
            shapes[f"W{i}"] = (self.widths[i - 1], self.widths[i])
            if self.bias:
                shapes[f"b{i}"] = (1, self.widths[i])
            if self.activations[i - 1] == "prelu":
                shapes[f"a{i}"] = (1,) if self.prelu_slopes == "shared" else (1, self.widths[i])
        return shapes

    def is_weight(self, name: str) -> bool:
        """True for the tensors weight decay applies to."""
        return name.startswith("W")

    def param_kind(self, name: str) -> str:
        """``dense`` (``W<i>``), ``bias`` (``b<i>``) or ``slope`` (a PReLU's ``a<i>``)."""
        return {"W": "dense", "b": "bias", "a": "slope"}[name[0]]

    # An MLP has no feature maps and no dropout; these keep the CNN's interface.
    input_shape = property(lambda self: (self.input_dim,), doc="``(input_dim,)``.")
    dropout_units = 0
    keep_prob = 1.0
    flat_map = None
    flat_params: ClassVar[tuple[str, ...]] = ()
    flat_tensors: ClassVar[tuple[str, ...]] = ()

    def as_input(self, x: Any) -> np.ndarray:
        """``x`` as ``[N, input_dim]`` in the spec's dtype; ``ValueError`` on another shape."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"input of shape {x.shape} does not fit input_dim {self.input_dim}")
        return x

    @property
    def output_dim(self) -> int:
        """Width of the last layer."""
        return self.layers[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists for tuples)."""
        data = asdict(self)
        data["layers"] = list(self.layers)
        data["activations"] = list(self.activations)
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
    if not 0 <= spec.weight_decay < float("inf"):
        raise ValueError(f"weight_decay must be >= 0 and finite, got {spec.weight_decay!r}")
    out = spec.layers[-1]
    if spec.loss == "ce" and out < 2:
        raise ValueError(f"loss 'ce' needs an output width >= 2 (softmax over classes), got {out}")
    if spec.loss == "bce" and out != 1:
        raise ValueError(f"loss 'bce' needs an output width of 1 (one logit), got {out}")
