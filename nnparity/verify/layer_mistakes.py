"""Classic mistakes in the layers without parameters that verify takes beside dense and conv
(GELU, the average pools), built into the reference on purpose: each function returns the
spec's layer list with the mistake in every layer of that kind (a
:class:`~nnparity.verify.mistakes.NetVariant`), or None when the spec has no such layer, so
that :mod:`nnparity.verify.diagnose` can confirm a diagnosis by re-running the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nnparity.reference.conv import padding_amounts
from nnparity.reference.family import Spec
from nnparity.reference.layers import AvgPool, Gelu, GlobalAvgPool, Layer, Run
from nnparity.reference.layers.avgpool import avgpool2d_backward, divisors
from nnparity.reference.layers.gelu import gelu_inner

from .mistakes import NetVariant, _init_fields, with_layers

Params = dict[str, np.ndarray]


def _changed(spec: Spec, kind: type[Layer], change: Any) -> NetVariant | None:
    """``spec`` with every top-level layer of ``kind`` passed through ``change`` (None: none)."""
    if not any(isinstance(layer, kind) for layer in spec.net):
        return None
    return with_layers(spec, lambda layer: change(layer) if isinstance(layer, kind) else layer)


@dataclass(frozen=True)
class GeluWithoutPdf(Gelu):
    """GELU whose derivative keeps only its first term: ``Phi(z)`` (exact) or
    ``0.5 (1 + tanh u)`` (tanh form), the ``z phi(z)`` term (the product rule's second half)
    left out."""

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        inner = gelu_inner(x, self.approximate)
        first = 0.5 * (1.0 + inner) if self.approximate == "tanh" else inner
        return dy * first, {}


def gelu_without_pdf(spec: Spec) -> NetVariant | None:
    """``spec`` whose GELUs' derivative lacks the ``z phi(z)`` term."""
    return _changed(spec, Gelu, lambda layer: GeluWithoutPdf(**_init_fields(layer)))


def gelu_other_form(spec: Spec) -> NetVariant | None:
    """``spec`` whose GELUs compute the other form (tanh where exact is declared, or the
    reverse), forward and backward."""
    return _changed(spec, Gelu, lambda layer: replace(
        layer, approximate="none" if layer.approximate == "tanh" else "tanh"))


@dataclass(frozen=True)
class AvgPoolUndivided(AvgPool):
    """An average pool whose backward hands each window's whole gradient to every cell, not
    divided by the window's divisor (its size, or its real cells under SAME)."""

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        hw = x.shape[1:3]
        pads = padding_amounts(hw, (self.size, self.size), self.stride, self.padding)
        divisor = divisors(hw, self.size, self.stride, pads, self.count_include_pad, dy.dtype)
        return avgpool2d_backward(dy * divisor, x, self.size, self.stride, self.padding,
                                  self.count_include_pad), {}


def avgpool_undivided(spec: Spec) -> NetVariant | None:
    """``spec`` whose average pools pass their gradient down undivided."""
    return _changed(spec, AvgPool, lambda layer: AvgPoolUndivided(**_init_fields(layer)))


def avgpool_other_count(spec: Spec) -> NetVariant | None:
    """``spec`` whose SAME average pools count the padded cells where the declaration does not,
    or the reverse (None: no SAME pool, where both counts agree)."""
    if not any(isinstance(layer, AvgPool) and layer.padding == "SAME" for layer in spec.net):
        return None
    return _changed(spec, AvgPool, lambda layer: replace(
        layer, count_include_pad=not layer.count_include_pad))


@dataclass(frozen=True)
class GlobalAvgPoolUndivided(GlobalAvgPool):
    """A global average pool whose backward copies ``dy`` to every cell, not divided by
    ``H W``."""

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return np.broadcast_to(dy[:, None, None, :], x.shape).copy(), {}


def global_avgpool_undivided(spec: Spec) -> NetVariant | None:
    """``spec`` whose global average pools pass their gradient down undivided by ``H W``."""
    return _changed(spec, GlobalAvgPool,
                    lambda layer: GlobalAvgPoolUndivided(**_init_fields(layer)))
