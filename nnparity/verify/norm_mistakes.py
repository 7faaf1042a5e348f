"""Known mistakes of hand-written normalisation layers, built into the reference's layer list so
that :mod:`nnparity.verify.norm_diagnose` can confirm each numerically (as
:mod:`nnparity.verify.mistakes` does for the other layers).

The backward of a normalisation, from ``dy`` (per feature for a batchnorm, over the ``m`` values
normalised together; per row for a layernorm)::

    dx = gamma / (m sqrt(var + eps)) * (m dy - sum(dy) - xhat * sum(dy * xhat))

The ``sum(dy)`` term is the path through the mean (``dmu`` of the computational graph), the
``xhat * sum(dy * xhat)`` term the path through the variance (``dvar``); a backward that treats
the statistics as constants drops both. The running statistics can take the other variance
estimator (biased ``mean((x - mu)^2)`` vs unbiased ``* m / (m - 1)``) or the momentum of the
other convention (``momentum`` on the batch's value instead of the old one).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nnparity.reference.family import Spec
from nnparity.reference.layers import BatchNorm, Layer, LayerNorm, Params, Run
from nnparity.reference.layers.base import as_param
from nnparity.reference.layers.batchnorm import batchnorm_train
from nnparity.reference.layers.layernorm import layernorm

from .mistakes import NetVariant, _init_fields, with_layers

DROPS = ("mean", "variance", "both")
"""The paths a backward may leave out: through the mean, through the variance, or both."""


def dx_without(dy: np.ndarray, xhat: np.ndarray, scale: np.ndarray, axes: tuple[int, ...],
                drop: str) -> np.ndarray:
    """``scale / m * (m dy - [sum(dy)] - [xhat sum(dy xhat)])`` over ``axes`` (``m`` values),
    the bracketed terms left out as ``drop`` says."""
    m = int(np.prod([dy.shape[a] for a in axes]))
    dx = m * dy
    if drop not in ("mean", "both"):
        dx = dx - np.sum(dy, axis=axes, keepdims=True)
    if drop not in ("variance", "both"):
        dx = dx - xhat * np.sum(dy * xhat, axis=axes, keepdims=True)
    return scale / m * dx


@dataclass(frozen=True)
class BatchNormWithout(BatchNorm):
    """A batchnorm whose backward leaves out the path through the batch mean, the variance or
    both (``drop``); ``dgamma`` and ``dbeta`` are right."""

    drop: str = "mean"

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        _, grads = super().backward(dy, x, y, cache, params, run, False)
        if not need_dx:
            return None, grads
        xhat, inv = cache if cache is not None else batchnorm_train(x, 1, 0, self.epsilon)[1][:2]
        gamma = as_param(params, self.gamma, run.dtype)
        return dx_without(dy, xhat, gamma * inv, tuple(range(dy.ndim - 1)), self.drop), grads


@dataclass(frozen=True)
class LayerNormWithout(LayerNorm):
    """A layernorm whose backward leaves out the path through the row's mean, variance or
    both (``drop``)."""

    drop: str = "mean"

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        _, grads = super().backward(dy, x, y, cache, params, run, False)
        if not need_dx:
            return None, grads
        gamma = as_param(params, self.weight, run.dtype)
        xhat, r = cache if cache is not None else \
            layernorm(x, gamma, as_param(params, self.bias, run.dtype), self.epsilon)[1]
        return dx_without(dy * gamma, xhat, r, (1,), self.drop), grads


def without_path(spec: Spec, kind: str, drop: str) -> NetVariant:
    """``spec`` whose ``kind`` layers (``batchnorm`` or ``layernorm``) leave ``drop`` out of
    their backward."""
    made = {"batchnorm": BatchNormWithout, "layernorm": LayerNormWithout}[kind]

    def change(layer: Layer) -> Layer:
        return made(**_init_fields(layer), drop=drop) if layer.kind == kind else layer

    return with_layers(spec, change)


def other_variance(spec: Spec) -> NetVariant:
    """``spec`` whose batchnorms take the other estimator for the running variance."""
    return with_layers(spec, lambda layer: replace(
        layer, variance="unbiased" if layer.variance == "biased" else "biased")
        if isinstance(layer, BatchNorm) else layer)


def inverted_momentum(spec: Spec) -> NetVariant | None:
    """``spec`` whose batchnorms weigh the batch's value by ``momentum`` (``1 - momentum`` on
    the old one; None when some momentum is 0, whose inverse is no momentum)."""
    if any(isinstance(layer, BatchNorm) and layer.momentum == 0 for layer in spec.net):
        return None
    return with_layers(spec, lambda layer: replace(layer, momentum=1 - layer.momentum)
                       if isinstance(layer, BatchNorm) else layer)
