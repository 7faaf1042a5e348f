"""A network written as a list of layers: the ``net`` key of a spec JSON.

```json
{"input_shape": [12, 12, 1], "loss": "ce", "reduction": "mean", "dtype": "float64",
 "net": [{"kind": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": "same"},
         {"kind": "relu"}, {"kind": "maxpool", "size": 2}, {"kind": "flatten"},
         {"kind": "dense", "units": 16}, {"kind": "sigmoid"},
         {"kind": "dropout", "keep_prob": 0.5}, {"kind": "dense", "units": 5}]}
```

**The naming rule.** A layer that is not an activation is named by its kind's prefix and its
rank among the layers of that prefix, from 1: ``conv1``, ``pool1``, ``avgpool1``, ``flatten1``,
``dense1``, ``dropout1``, ``res1``. A residual block's sub-list (``{"kind": "residual", "net":
[...], "projection": false}``) continues the same counters (``res1`` holding ``dense2``,
``dense3``), so every name stays unique; its projection's parameters are ``res1.W``, ``res1.b``.
An activation takes the name of the dense, conv, batchnorm or residual layer it follows (it must
follow one; after a residual block, ResNet's ``relu(x + f(x))``, its output replaces the block's
``h[res<i>]`` in the trace). Parameters are ``<layer>.W`` (dense ``[in, out]``, conv
``[k, k, cin, cout]`` HWIO), ``<layer>.b`` (``[out]``) and a PReLU's slope ``<layer>.a``
(``[1]`` shared, ``[D]``/``[C]`` per unit). Deltas and ``Trace.z`` are keyed by the dense/conv
layer names.

Inputs are NHWC maps ``[N, H, W, C]`` (``input_shape`` of three) or flat ``[N, D]`` (of one).
Every dropout layer shares one ``keep_prob`` (the mask is drawn with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .layer_list import LayerList
from .layers import KINDS, Dropout, Layer, make_layer
from .layers.base import NAME_FIELDS
from .serial import SpecSerial

LOSSES = ("l2", "ce", "bce", "mse")
REDUCTIONS = ("sum", "mean")
DTYPES = ("float64", "float32")
INITS = ("xavier", "he", "torch-default")
PREFIXES = {"dense": "dense", "conv2d": "conv", "maxpool": "pool", "avgpool": "avgpool",
            "flatten": "flatten", "dropout": "dropout", "residual": "res",
            "layernorm": "layernorm", "global_avgpool": "global_avgpool", "batchnorm": "batchnorm"}
"""Kind -> the prefix of its layers' names (activations are named after the layer they follow)."""


def build_net(layers: list[dict[str, Any]] | tuple[Any, ...]) -> tuple[Layer, ...]:
    """The named layer list from its JSON form (one object per layer, or :class:`Layer`
    objects, renamed by the rule); ``ValueError`` naming the first bad entry."""
    return _build(layers, {}, "net entry ")


def _build(layers: Any, counts: dict[str, int], where: str) -> tuple[Layer, ...]:
    """:func:`build_net` over one list with the network's name ``counts`` (a residual's
    sub-list continues them: entry ``where`` ``3.1`` is the first layer of entry 3's block)."""
    if not isinstance(layers, list | tuple) or not layers:
        raise ValueError("net must be a non-empty list of layers" if where == "net entry "
                         else f"{where.removesuffix('.')}: a residual needs a non-empty "
                         "\"net\" list of layers")
    owner = None
    net: list[Layer] = []
    for i, entry in enumerate(layers, 1):
        data = entry.to_dict() if isinstance(entry, Layer) else entry
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise ValueError(f"{where}{i}: a layer is an object with a \"kind\" string")
        data = dict(data)
        kind = data.pop("kind")
        given = sorted(set(data) & (NAME_FIELDS | {"function"}))
        if given:
            raise ValueError(f"{where}{i}: field(s) {', '.join(given)} are set by nnparity "
                             "(the naming rule), not by the spec")
        cls = KINDS.get(kind)
        if cls is not None and cls.role == "activation":
            if owner is None:
                raise ValueError(f"{where}{i}: activation {kind!r} must follow a dense, "
                                 "conv2d, batchnorm or residual layer")
            name, owner = owner, None
        else:
            prefix = PREFIXES.get(kind, kind)
            counts[prefix] = counts.get(prefix, 0) + 1
            name = f"{prefix}{counts[prefix]}"
        if cls is not None and cls.role == "block":
            data["net"] = _build(data.get("net"), counts, f"{where}{i}.")
        layer = make_layer(kind, name, **data)
        owner = name if layer.role in ("param", "block") else None
        net.append(layer)
    return tuple(net)


@dataclass(frozen=True)
class NetSpec(LayerList, SpecSerial):
    """A network given as its layer list (module docstring).

    - ``input_shape``: ``(H, W, C)`` of one NHWC image or ``(D,)`` of one flat input.
    - ``net``: the layers (dicts of the JSON form, or layers), named by the rule.
    - ``loss`` (``ce``, ``l2``, ``bce``, ``mse``), ``reduction`` (``sum``, ``mean``),
      ``weight_decay`` (lambda of ``0.5 lambda sum W^2`` over dense and conv weights),
      ``dtype``, ``init`` (the default scheme of :func:`reference.init.init_net`).
    """

    input_shape: tuple[int, ...]
    net: tuple[Layer, ...]
    loss: str = "ce"
    reduction: str = "mean"
    weight_decay: float = 0.0
    dtype: str = "float64"
    init: str = "xavier"
    family: str = field(default="net", init=False)

    def __post_init__(self) -> None:
        shape = self.input_shape
        if not isinstance(shape, list | tuple) or len(shape) not in (1, 3) or any(
                isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in shape):
            raise ValueError(f"input_shape must be [H, W, C] or [D] of positive integers, got "
                             f"{shape!r}")
        object.__setattr__(self, "input_shape", tuple(shape))
        object.__setattr__(self, "net", build_net(self.net))
        _validate(self)

    @cached_property
    def keep_prob(self) -> float:
        """The dropout layers' keep probability (1 without dropout)."""
        probs = {layer.keep_prob for layer in self.net if isinstance(layer, Dropout)}
        return probs.pop() if probs else 1.0

    def as_input(self, x: Any) -> np.ndarray:
        """``x`` as ``[N, *input_shape]`` in the spec's dtype; ``ValueError`` on another shape."""
        return self.net_input(x)

    def with_(self, **changes: Any) -> NetSpec:
        """A copy with some fields changed (validated again); ``keep_prob`` sets every dropout
        layer's, as the MLP's and the CNN's field does."""
        data = self.to_dict()
        if "keep_prob" in changes:
            keep = changes.pop("keep_prob")
            data["net"] = [{**entry, "keep_prob": keep} if entry["kind"] == "dropout" else entry
                           for entry in data["net"]]
        return type(self).from_dict({**data, **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the module docstring's form."""
        return {"family": "net", "input_shape": list(self.input_shape),
                "loss": self.loss, "reduction": self.reduction,
                "weight_decay": self.weight_decay, "dtype": self.dtype, "init": self.init,
                "net": [layer.to_dict() for layer in self.net]}


def _validate(spec: NetSpec) -> None:
    for what, value, known in (("loss", spec.loss, LOSSES),
                               ("reduction", spec.reduction, REDUCTIONS),
                               ("dtype", spec.dtype, DTYPES), ("init", spec.init, INITS)):
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")
    if isinstance(spec.weight_decay, bool) or not isinstance(spec.weight_decay, int | float) \
            or not 0 <= spec.weight_decay < float("inf"):
        raise ValueError(f"weight_decay must be >= 0 and finite, got {spec.weight_decay!r}")
    if not spec.layer_names:
        raise ValueError("net has no dense or conv2d layer: nothing to learn")
    spec.layer_shapes  # noqa: B018 - raises naming the first layer that does not fit
    if len(spec.layer_shapes[-1]) != 1:
        raise ValueError(f"the net's output has shape {list(spec.layer_shapes[-1])}: end with a "
                         "flatten and a dense layer")
    for before, layer in zip(spec.net, spec.net[1:], strict=False):
        if layer.role == "block" and before.name in spec.flat_tensors:
            raise ValueError(f"{layer.name}: a residual block cannot take a flattened map (the "
                             "frameworks flatten in another order): put a dense layer before it")
    keeps = {layer.keep_prob for layer in spec.net if isinstance(layer, Dropout)}
    if len(keeps) > 1:
        raise ValueError(f"dropout layers have keep_prob {sorted(keeps)}: give them one value")
    out = spec.output_dim
    if spec.loss == "ce" and out < 2:
        raise ValueError(f"loss 'ce' needs an output width >= 2 (softmax over classes), got {out}")
    if spec.loss == "bce" and out != 1:
        raise ValueError(f"loss 'bce' needs an output width of 1 (one logit), got {out}")
