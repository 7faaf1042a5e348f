"""The layer kinds, one module each, and the one table from a kind's name to its class.

Kinds: ``dense``, ``conv2d``, ``maxpool``, ``avgpool``, ``flatten``, ``dropout``, ``prelu``,
``gelu``, ``residual`` (a block over a sub-list), ``layernorm``, ``global_avgpool``,
``batchnorm`` and every
parameter-free activation of :mod:`reference.activations` by its name (``sigmoid``, ``tanh``,
``relu``, ``relu3``, ``leaky_relu``, ``identity``). Adding a kind: its module here, one row in
:data:`KINDS`, and one row in every backend's table (``backends/*_layers.py``).
"""

from __future__ import annotations

from typing import Any

from ..activations import ACTIVATIONS, ALIASES
from .activation import Activation, PReLU
from .avgpool import AvgPool
from .base import STATE_KINDS, Layer, Params, Run, Shape
from .batchnorm import BatchNorm
from .conv2d import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .gelu import Gelu
from .global_avgpool import GlobalAvgPool
from .layernorm import LayerNorm
from .maxpool import MaxPool
from .residual import Residual

KINDS: dict[str, type[Layer]] = {
    "dense": Dense,
    "conv2d": Conv2D,
    "maxpool": MaxPool,
    "avgpool": AvgPool,
    "flatten": Flatten,
    "dropout": Dropout,
    "prelu": PReLU,
    "gelu": Gelu,
    "residual": Residual,
    "layernorm": LayerNorm,
    "global_avgpool": GlobalAvgPool,
    "batchnorm": BatchNorm,
    **dict.fromkeys(ACTIVATIONS, Activation),
}
"""Kind name -> layer class (every parameter-free activation shares :class:`Activation`)."""


def make_layer(kind: str, name: str, **fields: Any) -> Layer:
    """A layer of ``kind`` named ``name`` with its ``fields`` (``ValueError`` naming an unknown
    kind or field)."""
    kind = ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ValueError(f"unknown layer kind {kind!r}; known: {', '.join(KINDS)}")
    cls = KINDS[kind]
    if cls is Activation:
        fields = {**fields, "function": kind}
    allowed = set(cls.__dataclass_fields__) - {"name"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"{name}: unknown field(s) of a {kind} layer: {', '.join(unknown)}")
    return cls(name=name, **fields)


__all__ = ["KINDS", "STATE_KINDS", "Activation", "AvgPool", "BatchNorm", "Conv2D", "Dense",
           "Dropout", "Flatten", "Gelu", "GlobalAvgPool", "Layer", "LayerNorm", "MaxPool", "PReLU",
           "Params", "Residual", "Run", "Shape", "make_layer"]
