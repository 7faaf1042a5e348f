"""PReLU in a learner's network: its learnable slope is handed to the learner's code like the
weights (``a1, a2, ...`` and the list ``a``, one per PReLU layer in order, numbered apart from
the ``W1, b1`` layers, in the reference's shape: ``[1]`` shared, ``[D]`` or ``[C]`` per unit or
channel, ``[1, D]`` in an MLP spec), written where the declaration's ``a`` says, and its
gradient read where ``da`` says and compared with the reference's ``dL/da``. The slope's update
is not read back (only its gradient).

The classic mistake, built in for :mod:`nnparity.verify.diagnose`: the slope's gradient
summed over the wrong axes (over every axis for a per-unit slope, or over the batch only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnparity.reference.activations import prelu_grad
from nnparity.reference.family import Spec
from nnparity.reference.layers import PReLU, Run

from .mistakes import NetVariant, _init_fields, with_layers

Params = dict[str, np.ndarray]
SLOPE_ROLES = ("a", "da")  # per PReLU layer: where the slope is kept, its gradient


@dataclass(frozen=True)
class SlopeLayer:
    """PReLU layer ``index`` (1-based, in order): its ``name`` and its slope's parameter name."""

    index: int
    name: str
    slope: str


def slope_layers(spec: Spec) -> list[SlopeLayer]:
    """The spec's PReLU layers, numbered from 1."""
    found = [layer for layer in spec.net if isinstance(layer, PReLU)]
    return [SlopeLayer(i, layer.name, layer.slope) for i, layer in enumerate(found, 1)]


@dataclass(frozen=True)
class SlopeSummedElsewhere(PReLU):
    """A PReLU whose slope gradient sums ``dy * min(z, 0)`` over ``axes`` (``every``: to one
    number; ``batch``: over the batch only, a value per cell)."""

    axes: str = "every"

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        terms = dy * np.where(x > 0, 0, x)
        grad = terms.sum() if self.axes == "every" else terms.sum(axis=0)
        return dy * prelu_grad(x, params[self.slope]), {self.slope: np.asarray(grad)}


def slope_summed_elsewhere(spec: Spec, axes: str) -> NetVariant | None:
    """``spec`` whose per-unit PReLU slopes get their gradient summed over ``axes`` (None: no
    per-unit PReLU, or a flat input summed over its batch, which is the right axis)."""
    def wrong(layer: Any) -> bool:
        return isinstance(layer, PReLU) and layer.slopes == "unit"

    if not any(wrong(layer) for layer in spec.net):
        return None
    return with_layers(spec, lambda layer: SlopeSummedElsewhere(**_init_fields(layer),
                                                                axes=axes)
                       if wrong(layer) else layer)
