"""The MLP of the BP lecture: forward pass, hand-derived backward pass, predictions.

Shapes: ``x [N, D_0]``, ``W_l [D_{l-1}, D_l]``, ``b_l [1, D_l]``, ``z_l, h_l [N, D_l]``.

Forward (the BP lecture):
    ``z_l = h_{l-1} @ W_l + b_l``, ``h_l = f_l(z_l)``, ``h_0 = x``, ``o = h_L``.
Backward (the BP lecture; deltas are ``dL/dz``; the dense layer's part is
:mod:`.dense`):
    ``delta_L = dE/do * f_L'(z_L, h_L)``
    ``delta_l = (delta_{l+1} @ W_{l+1}.T) * f_l'(z_l, h_l)``
    ``dW_l = h_{l-1}.T @ delta_l + lambda W_l``,  ``db_l = 1^T delta_l``
    (prelu layers: ``f_l'`` is ``1`` or ``a_l``, and ``da_l = sum(dL/dh_l * min(z_l, 0))``,
    summed over the batch only for one slope per unit)
where ``dE/do`` already carries the ``1/N`` of the ``mean`` reduction.

The MLP has no dropout: every function takes ``dropout_mask`` (as the CNN's do) and refuses one
that is not None.
"""

from __future__ import annotations

import numpy as np

from .activations import get_activation, prelu, prelu_grad, prelu_slope_grad
from .dense import dense, dense_backward
from .losses import as_targets, loss_and_grad, probabilities
from .params import check_params, weight_decay_loss
from .results import Gradients, Trace
from .spec import MLPSpec

__all__ = [
    "backward",
    "check_params",
    "forward",
    "gradients",
    "logits",
    "loss",
    "pool_ties",
    "preactivation_scale",
    "predict",
    "working_values",
]


def _no_dropout(mask: np.ndarray | None) -> None:
    if mask is not None:
        raise ValueError("the MLP has no dropout: dropout_mask must be None")


def _param(spec: MLPSpec, params: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    """``params[name]`` in the spec's dtype, or None for a bias the spec does not have."""
    p = params.get(name)
    return p if p is None or p.dtype == spec.dtype else p.astype(spec.dtype)


def forward(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, *,
            dropout_mask: np.ndarray | None = None) -> Trace:
    """Run the network on ``x [N, D_0]``; record every layer's ``z`` and ``h``."""
    _no_dropout(dropout_mask)
    h = spec.as_input(x)
    trace = Trace(output=h)
    for i, (name, act) in enumerate(zip(spec.layer_names, spec.activations, strict=True), 1):
        z = dense(h, _param(spec, params, f"W{i}"), _param(spec, params, f"b{i}"))
        h = prelu(z, params[f"a{i}"]) if act == "prelu" else get_activation(act).f(z)
        trace.z[name], trace.h[name] = z, h
    trace.output = h
    return trace


def backward(
    spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, trace: Trace, y: np.ndarray
) -> Gradients:
    """Deltas and gradients for the ``trace`` of ``x`` with labels ``y`` (indices or dense)."""
    x = spec.as_input(x)
    n = x.shape[0]
    t = as_targets(spec.loss, y, n, spec.output_dim, np.dtype(spec.dtype))
    value, d_out = loss_and_grad(spec.loss, trace.output, t, spec.reduction)
    names = spec.layer_names
    shapes = spec.param_shapes()
    inputs = [x] + [trace.h[name] for name in names[:-1]]
    deltas: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    upstream = d_out
    for i in range(spec.depth, 0, -1):
        name = names[i - 1]
        z = trace.z[name]
        if spec.activations[i - 1] == "prelu":
            grads[f"a{i}"] = prelu_slope_grad(z, upstream, shapes[f"a{i}"])
            delta = upstream * prelu_grad(z, params[f"a{i}"])
        elif spec.activations[i - 1] == "identity":
            delta = upstream  # f' = 1
        else:
            delta = upstream * get_activation(spec.activations[i - 1]).df(z, trace.h[name])
        deltas[name] = delta
        W = _param(spec, params, f"W{i}")
        upstream, dW, db = dense_backward(delta, inputs[i - 1], W, shapes.get(f"b{i}"),
                                          need_dh=i > 1)
        grads[f"W{i}"] = dW + spec.weight_decay * W if spec.weight_decay else dW
        if db is not None:
            grads[f"b{i}"] = db
    ordered_grads = {k: grads[k] for k in shapes}
    ordered_deltas = {k: deltas[k] for k in names}
    loss = float(value) + weight_decay_loss(spec, params)
    return Gradients(loss=loss, grads=ordered_grads, deltas=ordered_deltas, output=trace.output)


def gradients(
    spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, *,
    dropout_mask: np.ndarray | None = None, checked: bool = False,
) -> Gradients:
    """Forward then backward: loss, ``dL/dparam`` for every parameter, ``dL/dz`` per layer.
    ``checked``: the caller has checked ``params`` against the spec (a trainer does, once)."""
    _no_dropout(dropout_mask)
    if not checked:
        check_params(spec, params)
    return backward(spec, params, x, forward(spec, params, x), y)


def loss(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, *,
         dropout_mask: np.ndarray | None = None) -> float:
    """The reduced loss plus weight decay (what :func:`gradients` differentiates)."""
    trace = forward(spec, params, x, dropout_mask=dropout_mask)
    x = spec.as_input(x)
    t = as_targets(spec.loss, y, x.shape[0], spec.output_dim, np.dtype(spec.dtype))
    value, _ = loss_and_grad(spec.loss, trace.output, t, spec.reduction)
    return float(value) + weight_decay_loss(spec, params)


def preactivation_scale(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray,
                        trace: Trace) -> dict[str, np.ndarray]:
    """Per layer, ``sum_i |h_i W_ij| + |b_j|`` for every unit of ``z`` (the size of the terms
    that rounding acts on): ``|h_{l-1}| @ |W_l| + |b_l|``."""
    inputs = [spec.as_input(x)] + [trace.h[name] for name in spec.layer_names[:-1]]
    scale = {}
    for i, (name, h) in enumerate(zip(spec.layer_names, inputs, strict=True), 1):
        b = _param(spec, params, f"b{i}")
        scale[name] = dense(np.abs(h), np.abs(_param(spec, params, f"W{i}")),
                            None if b is None else np.abs(b))
    return scale


def pool_ties(spec: MLPSpec, trace: Trace, scales: dict[str, np.ndarray],
              tol: float) -> dict[str, np.ndarray]:
    """The MLP has no pools: no ties (the CNN's interface)."""
    return {}


def logits(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The output ``o [N, K]`` at evaluation (what a trainer's ``predict`` returns)."""
    return forward(spec, params, x).output


def predict(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Softmax (``ce``), sigmoid (``bce``) or raw output (``l2``) of ``x``: ``[N, K]``."""
    return probabilities(spec.loss, forward(spec, params, x).output)


def working_values(spec: MLPSpec, rows: int, *, training: bool = True) -> int:
    """Values held at the peak of a training step on ``rows`` samples (``training``) or of
    :func:`logits` on them, besides the input (the caller's) and the parameters, for memory
    estimates: per sample every layer's ``z`` and ``h``, and for the widest layer the
    activation's temporaries (two) or, in training, the backward pass's delta, upstream gradient
    and activation derivative (three)."""
    return rows * (2 * sum(spec.layers) + (3 if training else 2) * max(spec.layers))
