"""``batchnorm``: batch normalisation over the last axis (features of ``[N, D]``, channels of an
NHWC map ``[N, H, W, C]``), statistics over every other axis (``m`` values per feature: ``N``,
or ``N H W``).

Training (a pass with batch statistics, ``run.training``)::

    mu = mean(x),  var = mean((x - mu)^2)            (biased: the normalisation itself)
    xhat = (x - mu) / sqrt(var + epsilon),  y = gamma * xhat + beta

and the running statistics the pass leaves behind (``run.updates``)::

    mean' = momentum * mean + (1 - momentum) * mu
    var'  = momentum * var  + (1 - momentum) * var_batch

with ``var_batch = var`` (``variance: biased``, Keras and Flax) or ``var * m / (m - 1)``
(``unbiased``, torch). ``momentum`` weighs the *old* value (Keras' and Flax's convention; torch's
``momentum`` is ``1 - momentum``). Evaluation: ``y = gamma * (x - mean) / sqrt(var + epsilon)
+ beta`` with the running statistics.

Backward of the training pass (the batch statistics depend on ``x``)::

    dbeta = sum(dy),  dgamma = sum(dy * xhat)
    dx = gamma / (m sqrt(var + epsilon)) * (m dy - sum(dy) - xhat * sum(dy * xhat))

Parameters: ``<name>.gamma`` (kind ``scale``) and ``<name>.beta`` (``bias``), trained; the
running statistics ``<name>.mean`` and ``<name>.var`` (kinds ``mean``, ``variance``: state, no
gradient, never decayed or touched by an optimiser, replaced by each training step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Layer, Params, Run, Shape, as_param

VARIANCES = ("biased", "unbiased")
"""The estimators of the running variance: ``biased`` (Keras, Flax), ``unbiased`` (torch)."""


def _reduce_axes(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(x.ndim - 1))


def batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(mu [F], var [F], m)``: per feature (last axis) the batch mean, the biased variance
    ``mean((x - mu)^2)`` and the count ``m`` of values it averages."""
    axes = _reduce_axes(x)
    mu = np.mean(x, axis=axes)
    var = np.mean(np.square(x - mu), axis=axes)
    return mu, var, x.size // x.shape[-1]


def batchnorm_train(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float
                    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """``(y, (xhat, inv, mu, var, m))``: the training pass with the batch's statistics (``mu``,
    biased ``var``, over ``m`` values per feature), ``inv = 1 / sqrt(var + epsilon)``."""
    mu, var, m = batch_statistics(x)
    inv = 1 / np.sqrt(var + epsilon)
    xhat = (x - mu) * inv
    return gamma * xhat + beta, (xhat, inv, mu, var, m)


def batchnorm_eval(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                   var: np.ndarray, epsilon: float) -> np.ndarray:
    """The evaluation pass with the running statistics ``mean`` and ``var``."""
    return gamma * ((x - mean) / np.sqrt(var + epsilon)) + beta


def batchnorm_running(mean: np.ndarray, var: np.ndarray, mu: np.ndarray, batch_var: np.ndarray,
                      m: int, momentum: float, unbiased: bool) -> tuple[np.ndarray, np.ndarray]:
    """The running statistics after a batch with ``mu`` and biased ``batch_var`` over ``m``
    values; ``momentum`` weighs the old value, ``unbiased`` scales the batch's by m/(m - 1)."""
    if unbiased:
        if m < 2:
            raise ValueError("the unbiased running variance needs more than one value per "
                             "feature in a training batch")
        batch_var = batch_var * (m / (m - 1))
    return momentum * mean + (1 - momentum) * mu, momentum * var + (1 - momentum) * batch_var


def batchnorm_backward(dy: np.ndarray, xhat: np.ndarray, inv: np.ndarray, gamma: np.ndarray,
                       need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dgamma, dbeta)`` of the training pass (``dx`` None unless ``need_dx``)."""
    axes = _reduce_axes(dy)
    dbeta = np.sum(dy, axis=axes)
    dgamma = np.sum(dy * xhat, axis=axes)
    if not need_dx:
        return None, dgamma, dbeta
    m = dy.size // dy.shape[-1]
    return (gamma * inv / m) * (m * dy - dbeta - xhat * dgamma), dgamma, dbeta


@dataclass(frozen=True)
class BatchNorm(Layer):
    """``momentum`` in [0, 1) (weight of the old running value), ``epsilon > 0``, ``variance``
    (``biased`` or ``unbiased``: the estimator the running variance takes from each batch)."""

    kind = "batchnorm"
    role = "param"
    momentum: float = 0.99
    epsilon: float = 1e-5
    variance: str = "biased"

    def __post_init__(self) -> None:
        for what, value in (("momentum", self.momentum), ("epsilon", self.epsilon)):
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not np.isfinite(value):
                raise ValueError(f"{self.name}: {what} must be a number, got {value!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"{self.name}: momentum (the weight of the old running value) "
                             f"must be in [0, 1), got {self.momentum!r}")
        if not self.epsilon > 0:
            raise ValueError(f"{self.name}: epsilon must be positive, got {self.epsilon!r}")
        if self.variance not in VARIANCES:
            raise ValueError(f"{self.name}: variance must be one of {', '.join(VARIANCES)}, "
                             f"got {self.variance!r}")

    @property
    def gamma(self) -> str:
        """The scale's canonical name."""
        return f"{self.name}.gamma"

    @property
    def beta(self) -> str:
        """The shift's canonical name."""
        return f"{self.name}.beta"

    @property
    def mean(self) -> str:
        """The running mean's canonical name."""
        return f"{self.name}.mean"

    @property
    def var(self) -> str:
        """The running variance's canonical name."""
        return f"{self.name}.var"

    def param_specs(self, shape: Shape) -> dict[str, tuple[Shape, str]]:
        if len(shape) not in (1, 3):
            raise ValueError(f"{self.name} (batchnorm) needs a flat [D] or an (H, W, C) input, "
                             f"got shape {list(shape)}")
        f = (shape[-1],)
        return {self.gamma: (f, "scale"), self.beta: (f, "bias"),
                self.mean: (f, "mean"), self.var: (f, "variance")}

    def output_shape(self, shape: Shape) -> Shape:
        self.param_specs(shape)
        return shape

    def running_update(self, running_mean: np.ndarray, running_var: np.ndarray,
                       mu: np.ndarray, var: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The running statistics after a batch with ``mu``, biased ``var`` over ``m`` values."""
        try:
            return batchnorm_running(running_mean, running_var, mu, var, m, self.momentum,
                                     self.variance == "unbiased")
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        gamma, beta = (as_param(params, n, run.dtype) for n in (self.gamma, self.beta))
        running_mean, running_var = (as_param(params, n, run.dtype) for n in (self.mean, self.var))
        if not run.training:
            return batchnorm_eval(x, gamma, beta, running_mean, running_var, self.epsilon), None
        y, (xhat, inv, mu, var, m) = batchnorm_train(x, gamma, beta, self.epsilon)
        run.updates[self.mean], run.updates[self.var] = self.running_update(
            running_mean, running_var, mu, var, m)
        return y, (xhat, inv)

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        if cache is None:  # a backward from a recorded trace: recompute the batch statistics
            cache = batchnorm_train(x, 1, 0, self.epsilon)[1][:2]
        xhat, inv = cache
        gamma = as_param(params, self.gamma, run.dtype)
        dx, dgamma, dbeta = batchnorm_backward(dy, xhat, inv, gamma, need_dx)
        return dx, {self.gamma: dgamma, self.beta: dbeta}

    def gradient_terms(self, dy: np.ndarray, x: np.ndarray, params: Params,
                       run: Run) -> Params:
        """``sum |dy xhat|`` for ``gamma``, ``sum |dy|`` for ``beta`` (batch statistics)."""
        xhat, inv = batchnorm_train(x, 1, 0, self.epsilon)[1][:2]
        gamma = as_param(params, self.gamma, run.dtype)
        _, dgamma, dbeta = batchnorm_backward(np.abs(dy), np.abs(xhat), inv, gamma, False)
        return {self.gamma: dgamma, self.beta: dbeta}

    def scale(self, x: np.ndarray, params: Params, run: Run) -> np.ndarray:
        """``|gamma| (|x| + |mu|) / sqrt(var + epsilon) + |beta|`` with the batch statistics:
        the size of the terms rounding acts on, per value of the output."""
        mu, var, _ = batch_statistics(x)
        gamma, beta = (np.abs(as_param(params, n, run.dtype)) for n in (self.gamma, self.beta))
        return gamma * (np.abs(x) + np.abs(mu)) / np.sqrt(var + self.epsilon) + beta

