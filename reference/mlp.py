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

Dropout (``spec.dropout_after``, :mod:`.dropout`): in training the ``h_l`` of those layers is
replaced by ``d_l = h_l * mask_l / keep_prob`` as the next layer's input (``trace.h['dropout<l>']``;
``mask_l`` is the layer's columns of ``dropout_mask [N, spec.dropout_units]``), and backward
``dL/dh_l = dL/dd_l * mask_l / keep_prob`` before ``f_l'``. No mask: evaluation, ``d_l = h_l``.
"""

from __future__ import annotations

import numpy as np

from .activations import ACTIVATIONS, prelu, prelu_grad, prelu_slope_grad
from .dense import dense, dense_backward
from .dropout import check_mask, dropout, dropout_backward
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


def _as_mask(spec: MLPSpec, mask: np.ndarray | None, n: int) -> np.ndarray | None:
    """A checked ``[n, spec.dropout_units]`` 0/1 mask in the spec's dtype, or None."""
    if mask is None:
        return None
    if not spec.dropout_units:
        raise ValueError("this MLP has no dropout: dropout_mask must be None")
    return check_mask(mask, (n, spec.dropout_units)).astype(spec.dtype, copy=False)


def _inputs(spec: MLPSpec, x: np.ndarray, trace: Trace) -> list[np.ndarray]:
    """Each layer's input: ``x``, then every hidden ``h_l`` after its dropout."""
    return [x] + [trace.h.get(f"dropout{i}", trace.h[name])
                  for i, name in enumerate(spec.layer_names[:-1], 1)]


def _in_dtype(spec: MLPSpec, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``params`` with every weight and bias in the spec's dtype (converted only where needed;
    PReLU slopes as given)."""
    return {k: p if k.startswith("a") or p.dtype == spec.dtype else p.astype(spec.dtype)
            for k, p in params.items()}


def forward(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, *,
            dropout_mask: np.ndarray | None = None) -> Trace:
    """Run the network on ``x [N, D_0]``; record every layer's ``z`` and ``h`` (and ``d_l`` as
    ``h['dropout<l>']`` for a layer of ``dropout_after`` given a mask)."""
    x = spec.as_input(x)
    return _forward(spec, _in_dtype(spec, params), x, _as_mask(spec, dropout_mask, x.shape[0]))


def _forward(spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray,
             mask: np.ndarray | None) -> Trace:
    """:func:`forward` of a checked input ``x`` and mask (:func:`_as_mask`), ``params`` in the
    spec's dtype (:func:`_in_dtype`)."""
    columns = spec.dropout_columns
    trace = Trace(output=x)
    h = x
    for i, (name, act) in enumerate(zip(spec.layer_names, spec.activations, strict=True), 1):
        z = dense(h, params[f"W{i}"], params.get(f"b{i}"))
        h = prelu(z, params[f"a{i}"]) if act == "prelu" else ACTIVATIONS[act].f(z)
        trace.z[name], trace.h[name] = z, h
        if mask is not None and name in columns:
            h = trace.h[f"dropout{i}"] = dropout(h, mask[:, columns[name]], spec.keep_prob)
    trace.output = h
    return trace


def backward(
    spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, trace: Trace, y: np.ndarray,
    *, dropout_mask: np.ndarray | None = None,
) -> Gradients:
    """Deltas and gradients for the ``trace`` of ``x`` (with the same ``dropout_mask``) and
    labels ``y`` (indices or dense)."""
    x = spec.as_input(x)
    return _backward(spec, _in_dtype(spec, params), x, trace, y,
                     _as_mask(spec, dropout_mask, x.shape[0]))


def _backward(
    spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, trace: Trace, y: np.ndarray,
    mask: np.ndarray | None,
) -> Gradients:
    """:func:`backward` of a checked input ``x`` and mask (:func:`_as_mask`), ``params`` in the
    spec's dtype (:func:`_in_dtype`)."""
    n = x.shape[0]
    columns = spec.dropout_columns
    t = as_targets(spec.loss, y, n, spec.output_dim, np.dtype(spec.dtype))
    value, d_out = loss_and_grad(spec.loss, trace.output, t, spec.reduction)
    names = spec.layer_names
    shapes = spec.param_shapes()
    inputs = _inputs(spec, x, trace)
    # filled from the last layer back; created in the canonical order callers read them in
    deltas: dict[str, np.ndarray] = dict.fromkeys(names)
    grads: dict[str, np.ndarray] = dict.fromkeys(shapes)
    upstream = d_out
    for i in range(spec.depth, 0, -1):
        name, act = names[i - 1], spec.activations[i - 1]
        z = trace.z[name]
        if mask is not None and name in columns:
            upstream = dropout_backward(upstream, mask[:, columns[name]], spec.keep_prob)
        if act == "prelu":
            grads[f"a{i}"] = prelu_slope_grad(z, upstream, shapes[f"a{i}"])
            delta = upstream * prelu_grad(z, params[f"a{i}"])
        elif act == "identity":
            delta = upstream  # f' = 1
        else:
            delta = upstream * ACTIVATIONS[act].df(z, trace.h[name])
        deltas[name] = delta
        W = params[f"W{i}"]
        upstream, dW, db = dense_backward(delta, inputs[i - 1], W, shapes.get(f"b{i}"),
                                          need_dh=i > 1)
        grads[f"W{i}"] = dW + spec.weight_decay * W if spec.weight_decay else dW
        if db is not None:
            grads[f"b{i}"] = db
    loss = float(value) + weight_decay_loss(spec, params)
    return Gradients(loss=loss, grads=grads, deltas=deltas, output=trace.output)


def gradients(
    spec: MLPSpec, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, *,
    dropout_mask: np.ndarray | None = None, checked: bool = False,
) -> Gradients:
    """Forward then backward: loss, ``dL/dparam`` for every parameter, ``dL/dz`` per layer.
    ``checked``: the caller has checked ``params`` against the spec and holds them in its dtype
    (a trainer does, once)."""
    if not checked:
        check_params(spec, params)
        params = _in_dtype(spec, params)
    x = spec.as_input(x)
    mask = _as_mask(spec, dropout_mask, x.shape[0])
    return _backward(spec, params, x, _forward(spec, params, x, mask), y, mask)


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
    inputs = _inputs(spec, spec.as_input(x), trace)
    params = _in_dtype(spec, params)
    scale = {}
    for i, (name, h) in enumerate(zip(spec.layer_names, inputs, strict=True), 1):
        b = params.get(f"b{i}")
        scale[name] = dense(np.abs(h), np.abs(params[f"W{i}"]),
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
    and activation derivative (three); in training also the dropped-out ``d_l`` of
    ``dropout_after``."""
    dropped = spec.dropout_units if training else 0
    return rows * (2 * sum(spec.layers) + dropped + (3 if training else 2) * max(spec.layers))
