"""The MLP of seed 000: forward pass, hand-derived backward pass, predictions.

Shapes: ``x [N, D_0]``, ``W_l [D_{l-1}, D_l]``, ``b_l [1, D_l]``, ``z_l, h_l [N, D_l]``.

Forward (seed 000):  ``z_l = h_{l-1} @ W_l + b_l``, ``h_l = f_l(z_l)``, ``h_0 = x``, ``o = h_L``.
Backward (seed 000, deltas are ``dL/dz``):
    ``delta_L = dE/do * f_L'(z_L, h_L)``
    ``delta_l = (delta_{l+1} @ W_{l+1}.T) * f_l'(z_l, h_l)``
    ``dW_l = h_{l-1}.T @ delta_l + lambda W_l``,  ``db_l = 1^T delta_l``
    (prelu layers: ``f_l'`` is ``1`` or ``a_l``, and ``da_l = sum(dL/dh_l * min(z_l, 0))``)
where ``dE/do`` already carries the ``1/N`` of the ``mean`` reduction.
"""

from __future__ import annotations

import numpy as np

from .activations import get_activation, prelu, prelu_grad, prelu_slope_grad
from .losses import as_targets, loss_and_grad, probabilities
from .results import Gradients, Trace
from .spec import MLPSpec


def check_params(spec: MLPSpec, params: dict[str, np.ndarray]) -> None:
    """Raise ``ValueError`` naming the first missing, extra or mis-shaped parameter."""
    shapes = spec.param_shapes()
    missing = [k for k in shapes if k not in params]
    extra = [k for k in params if k not in shapes]
    if missing or extra:
        raise ValueError(
            f"parameters do not match the spec: missing {missing or 'none'}, "
            f"extra {extra or 'none'}"
        )
    for name, shape in shapes.items():
        got = np.shape(params[name])
        if got != shape:
            raise ValueError(f"parameter {name} has shape {got}, the spec needs {shape}")


def _as_input(spec: MLPSpec, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=spec.dtype)
    if x.ndim != 2 or x.shape[1] != spec.input_dim:
        raise ValueError(f"input of shape {x.shape} does not fit input_dim {spec.input_dim}")
    return x


def forward(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray) -> Trace:
    """Run the network on ``x [N, D_0]``; record every layer's ``z`` and ``h``."""
    h = _as_input(spec, x)
    trace = Trace(output=h)
    for i, (name, act) in enumerate(zip(spec.layer_names, spec.activations, strict=True), 1):
        z = h @ params[f"W{i}"].astype(spec.dtype, copy=False)
        if spec.bias:
            z = z + params[f"b{i}"].astype(spec.dtype, copy=False)
        h = prelu(z, params[f"a{i}"]) if act == "prelu" else get_activation(act).f(z)
        trace.z[name], trace.h[name] = z, h
    trace.output = h
    return trace


def weight_decay_loss(spec: MLPSpec, params: dict[str, np.ndarray]) -> float:
    """``0.5 * lambda * sum_l sum(W_l^2)`` (seed 003), 0 when lambda is 0."""
    if not spec.weight_decay:
        return 0.0
    total = sum(np.sum(params[k].astype(spec.dtype) ** 2) for k in params if spec.is_weight(k))
    return 0.5 * spec.weight_decay * total


def backward(
    spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, trace: Trace, y: np.ndarray
) -> Gradients:
    """Deltas and gradients for the ``trace`` of ``x`` with labels ``y`` (indices or dense)."""
    x = _as_input(spec, x)
    n = x.shape[0]
    t = as_targets(spec.loss, y, n, spec.output_dim, np.dtype(spec.dtype))
    value, d_out = loss_and_grad(spec.loss, trace.output, t, spec.reduction)
    names = spec.layer_names
    inputs = [x] + [trace.h[name] for name in names[:-1]]
    deltas: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    upstream = d_out
    for i in range(spec.depth, 0, -1):
        name = names[i - 1]
        z = trace.z[name]
        if spec.activations[i - 1] == "prelu":
            grads[f"a{i}"] = prelu_slope_grad(z, upstream)
            delta = upstream * prelu_grad(z, params[f"a{i}"])
        else:
            delta = upstream * get_activation(spec.activations[i - 1]).df(z, trace.h[name])
        deltas[name] = delta
        W = params[f"W{i}"].astype(spec.dtype, copy=False)
        grads[f"W{i}"] = inputs[i - 1].T @ delta + spec.weight_decay * W
        if spec.bias:
            grads[f"b{i}"] = delta.sum(axis=0, keepdims=True)
        upstream = delta @ W.T
    ordered_grads = {k: grads[k] for k in spec.param_shapes()}
    ordered_deltas = {k: deltas[k] for k in names}
    loss = float(value) + float(weight_decay_loss(spec, params))
    return Gradients(loss=loss, grads=ordered_grads, deltas=ordered_deltas, output=trace.output)


def gradients(
    spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> Gradients:
    """Forward then backward: loss, ``dL/dparam`` for every parameter, ``dL/dz`` per layer."""
    check_params(spec, params)
    return backward(spec, params, x, forward(spec, params, x), y)


def loss(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """The reduced loss plus weight decay (what :func:`gradients` differentiates)."""
    trace = forward(spec, params, x)
    x = _as_input(spec, x)
    t = as_targets(spec.loss, y, x.shape[0], spec.output_dim, np.dtype(spec.dtype))
    value, _ = loss_and_grad(spec.loss, trace.output, t, spec.reduction)
    return float(value) + float(weight_decay_loss(spec, params))


def predict(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Softmax (``ce``), sigmoid (``bce``) or raw output (``l2``) of ``x``: ``[N, K]``."""
    return probabilities(spec.loss, forward(spec, params, x).output)
