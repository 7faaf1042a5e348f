"""The three-framework notes' CNN: forward pass, hand-derived backward pass, predictions.

Shapes (the notes' CNN in brackets): ``x [N, H, W, C]`` ([N, 28, 28, 1]);
``conv_i.W [k, k, cin, cout]`` (HWIO), ``conv_i.b [cout]``; ``fc_j.W [in, out]``,
``fc_j.b [out]``; the first dense layer's rows follow the NHWC flatten order of the last feature
map ([N, 7, 7, 64] -> [N, 3136]).

Forward (``f`` the block's activation, relu in the notes' CNN)::

    z_conv_i = conv(a_{i-1}, W_i) + b_i          a_0 = x                       (conv.py)
    h_conv_i = f(z_conv_i)
    a_i      = maxpool(h_conv_i)  (or h_conv_i when the block has no pool)    (pool.py)
    flat     = reshape(a_K, [N, -1])              NHWC order
    z_fc_j   = h_fc_{j-1} @ W_fc_j + b_fc_j       h_fc_0 = flat                 (dense.py)
    h_fc_j   = f_j(z_fc_j)                        hidden dense layers
    d        = h_fc_{M-1} * mask / keep_prob      dropout on the output layer's input (dropout.py)
    o        = z_fc_M = d @ W_fc_M + b_fc_M       logits; loss = CE(o, t) (losses.py)

Backward (deltas are ``dL/dz``; ``dE/do`` carries the ``1/N`` of the ``mean`` reduction)::

    delta_fc_M = dE/do = (softmax(o) - t) [/ N]
    dd         = delta_fc_M @ W_fc_M.T;   dh_fc_{M-1} = dd * mask / keep_prob
    delta_fc_j = (delta_fc_{j+1} @ W_fc_{j+1}.T) * f_j'(z_fc_j)    (dropout in between, as above)
    d flat     = delta_fc_1 @ W_fc_1.T, reshaped to a_K's [N, Ho, Wo, C]
    d h_conv_i = maxpool_backward(d a_i)          one arg-max per window
    delta_conv_i = d h_conv_i * f'(z_conv_i)
    d a_{i-1}, dW_conv_i, db_conv_i = conv_backward(delta_conv_i)
    dW_fc_j = h_fc_{j-1}.T @ delta_fc_j (+ lambda W),  db_fc_j = sum_n delta_fc_j

``Trace`` keys, in forward order (the notes' CNN): ``z``: ``conv1, conv2, fc1, fc2``; ``h``:
``conv1, pool1, conv2, pool2, flatten, fc1, dropout, fc2``. ``h['conv_i']`` is the activation
``f(z)`` before pooling, ``h['pool_i']`` the pooled map (only for blocks with a pool),
``h['flatten']`` the ``[N, flat_dim]`` input of ``fc1``, ``h['dropout']`` the output layer's
input after dropout (the same array as the layer before it when there is no mask), and
``h['fc_M'] = z['fc_M'] = output``, the logits.
"""

from __future__ import annotations

import math

import numpy as np

from .activations import get_activation
from .cnn_spec import CNNSpec
from .conv import DCOLS_CHUNK, conv2d, conv2d_backward, conv2d_cols, im2col, output_size
from .dense import dense, dense_backward
from .dropout import check_mask, draw_dropout_mask, dropout, dropout_backward
from .losses import as_targets, loss_and_grad, probabilities
from .params import Params, check_params, weight_decay_loss
from .pool import maxpool2d_argmax, maxpool2d_backward, near_ties
from .results import Gradients, Trace

__all__ = [
    "backward",
    "check_params",
    "draw_dropout_mask",
    "forward",
    "gradients",
    "logits",
    "loss",
    "pool_ties",
    "preactivation_scale",
    "predict",
    "working_values",
]


# ---------------------------------------------------------------------------------- forward
def _as_mask(spec: CNNSpec, mask: np.ndarray | None, n: int) -> np.ndarray | None:
    if mask is None:
        return None
    return check_mask(mask, (n, spec.dropout_units)).astype(spec.dtype, copy=False)


def _param(spec: CNNSpec, params: Params, name: str) -> np.ndarray:
    return np.asarray(params[name]).astype(spec.dtype, copy=False)


def _forward(
    spec: CNNSpec, params: Params, x: np.ndarray, mask: np.ndarray | None, keep: bool = True
) -> tuple[Trace, dict[str, np.ndarray]]:
    """The forward pass plus, when ``keep``, a cache (``cols.<conv>``: im2col matrices,
    ``arg.<pool>``: arg-maxes) that spares the backward pass recomputing them."""
    trace = Trace(output=x)
    cache: dict[str, np.ndarray] = {}
    a = x
    for i, (name, block) in enumerate(zip(spec.conv_names, spec.conv, strict=True), 1):
        k = (block.kernel, block.kernel)
        cols = im2col(a, k, block.stride, block.padding)
        z = conv2d_cols(cols, _param(spec, params, f"{name}.W"), _param(spec, params, f"{name}.b"))
        h = get_activation(block.activation).f(z)
        trace.z[name], trace.h[name] = z, h
        a = h
        if block.pool:
            a, arg = maxpool2d_argmax(h, block.pool, block.pool_stride, block.pool_padding)
            trace.h[f"pool{i}"] = a
            if keep:
                cache[f"arg.pool{i}"] = arg
        if keep:
            cache[f"cols.{name}"] = cols
    h = a.reshape(a.shape[0], -1)
    trace.h["flatten"] = h
    names, acts = spec.fc_names, (*spec.dense_activations, "identity")
    for j, (name, act) in enumerate(zip(names, acts, strict=True)):
        if j == len(names) - 1:
            h = dropout(h, mask, spec.keep_prob)
            trace.h["dropout"] = h
        z = dense(h, _param(spec, params, f"{name}.W"), _param(spec, params, f"{name}.b"))
        h = get_activation(act).f(z)
        trace.z[name], trace.h[name] = z, h
    trace.output = h
    return trace, cache


def forward(
    spec: CNNSpec, params: Params, x: np.ndarray, *, dropout_mask: np.ndarray | None = None
) -> Trace:
    """Run the network on ``x [N, H, W, C]``; ``dropout_mask [N, spec.dropout_units]`` of 0/1
    (training) or None (evaluation). Returns every layer's ``z`` and ``h`` (keys: module doc)."""
    x = spec.as_input(x)
    return _forward(spec, params, x, _as_mask(spec, dropout_mask, x.shape[0]), keep=False)[0]


LOGITS_CHUNK = 64
"""Rows :func:`logits` computes at a time: the notes' CNN holds about 0.9 MB per float32 row at
the peak of its forward pass (conv2's im2col matrix 0.6 MB of it), so 64 rows stay near 60 MB;
larger chunks are no faster (the GEMMs already have 3136 rows or more)."""


def logits(spec: CNNSpec, params: Params, x: np.ndarray, chunk: int = LOGITS_CHUNK) \
        -> np.ndarray:
    """The output ``o [N, classes]`` at evaluation (no dropout), computed ``chunk`` rows at a time
    so that memory stays bounded (:data:`LOGITS_CHUNK`)."""
    x = spec.as_input(x)
    parts = [_forward(spec, params, x[i:i + chunk], None, keep=False)[0].output
             for i in range(0, len(x), chunk)]
    if not parts:
        return np.zeros((0, spec.classes), dtype=spec.dtype)
    return np.concatenate(parts)


# --------------------------------------------------------------------------------- backward
def backward(
    spec: CNNSpec,
    params: Params,
    x: np.ndarray,
    trace: Trace,
    y: np.ndarray,
    *,
    dropout_mask: np.ndarray | None = None,
    cache: dict[str, np.ndarray] | None = None,
) -> Gradients:
    """Deltas and gradients for the ``trace`` of ``x`` (with the same ``dropout_mask``) and labels
    ``y`` (class indices ``[N]`` or targets ``[N, K]``). ``cache`` comes from the forward pass."""
    x = spec.as_input(x)
    n = x.shape[0]
    mask = _as_mask(spec, dropout_mask, n)
    cache = cache or {}
    t = as_targets(spec.loss, y, n, spec.output_dim, np.dtype(spec.dtype))
    value, upstream = loss_and_grad(spec.loss, trace.output, t, spec.reduction)
    wd = spec.weight_decay
    deltas: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}

    # Dense layers, output first: upstream is dL/dh of the layer being processed.
    names, acts = spec.fc_names, (*spec.dense_activations, "identity")
    inputs = [trace.h["flatten"], *(trace.h[m] for m in names[:-1])]
    inputs[-1] = trace.h["dropout"]  # the output layer's input is the dropped-out one
    for j in range(len(names) - 1, -1, -1):
        name = names[j]
        delta = upstream * get_activation(acts[j]).df(trace.z[name], trace.h[name])
        W = _param(spec, params, f"{name}.W")
        upstream, grads[f"{name}.W"], grads[f"{name}.b"] = dense_backward(
            delta, inputs[j], W, (spec.dense_widths[j + 1],))
        if wd:
            grads[f"{name}.W"] = grads[f"{name}.W"] + wd * W
        deltas[name] = delta
        if j == len(names) - 1:
            upstream = dropout_backward(upstream, mask, spec.keep_prob)

    # Conv blocks, last first: upstream is dL/d(block output).
    last = trace.h[f"pool{len(spec.conv)}"] if spec.conv[-1].pool else trace.h[spec.conv_names[-1]]
    upstream = upstream.reshape(last.shape)
    for i in range(len(spec.conv), 0, -1):
        name, block = spec.conv_names[i - 1], spec.conv[i - 1]
        z, h = trace.z[name], trace.h[name]
        if block.pool:
            upstream = maxpool2d_backward(upstream, h, block.pool, block.pool_stride,
                                          block.pool_padding, arg=cache.get(f"arg.pool{i}"))
        delta = upstream * get_activation(block.activation).df(z, h)
        a_in = x if i == 1 else _block_output(spec, trace, i - 1)
        W = _param(spec, params, f"{name}.W")
        upstream, grads[f"{name}.W"], grads[f"{name}.b"] = conv2d_backward(
            delta, a_in, W, block.stride, block.padding,
            cols=cache.get(f"cols.{name}"), need_dx=i > 1)
        if wd:
            grads[f"{name}.W"] = grads[f"{name}.W"] + wd * W
        deltas[name] = delta

    ordered_grads = {k: grads[k] for k in spec.param_shapes()}
    ordered_deltas = {k: deltas[k] for k in spec.layer_names}
    total = float(value) + weight_decay_loss(spec, params)
    return Gradients(loss=total, grads=ordered_grads, deltas=ordered_deltas, output=trace.output)


def preactivation_scale(spec: CNNSpec, params: Params, x: np.ndarray,
                        trace: Trace) -> dict[str, np.ndarray]:
    """Per layer, ``sum_i |a_i W_ij| + |b_j|`` for every unit of ``z`` (the size of the terms
    that rounding acts on): the layer applied to ``|input|`` with ``|W|``, ``|b|``."""
    x = spec.as_input(x)
    scale = {}
    for i, (name, block) in enumerate(zip(spec.conv_names, spec.conv, strict=True), 1):
        a_in = x if i == 1 else _block_output(spec, trace, i - 1)
        scale[name] = conv2d(np.abs(a_in), np.abs(_param(spec, params, f"{name}.W")),
                             np.abs(_param(spec, params, f"{name}.b")), block.stride,
                             block.padding)
    names = spec.fc_names
    inputs = [trace.h["flatten"], *(trace.h[m] for m in names[:-1])]
    inputs[-1] = trace.h["dropout"]
    for name, h in zip(names, inputs, strict=True):
        scale[name] = dense(np.abs(h), np.abs(_param(spec, params, f"{name}.W")),
                            np.abs(_param(spec, params, f"{name}.b")))
    return scale


def pool_ties(spec: CNNSpec, trace: Trace, scales: dict[str, np.ndarray],
              tol: float) -> dict[str, np.ndarray]:
    """Per conv block with a pool, the cells of ``h[conv_i]`` tied for their window's maximum
    within ``tol`` times their pre-activation ``scales`` (:func:`pool.near_ties`)."""
    ties = {}
    for name, block in zip(spec.conv_names, spec.conv, strict=True):
        if block.pool:
            ties[name] = near_ties(trace.h[name], scales[name], block.pool, block.pool_stride,
                                   block.pool_padding, tol)
    return ties


def _block_output(spec: CNNSpec, trace: Trace, i: int) -> np.ndarray:
    """Output of conv block ``i`` (1-based): its pooled map, or its activation without a pool."""
    return trace.h[f"pool{i}"] if spec.conv[i - 1].pool else trace.h[f"conv{i}"]


def gradients(
    spec: CNNSpec,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    dropout_mask: np.ndarray | None = None,
    checked: bool = False,
) -> Gradients:
    """Forward then backward: loss, ``dL/dparam`` for every parameter, ``dL/dz`` per layer.
    ``checked``: the caller has checked ``params`` against the spec (a trainer does, once)."""
    if not checked:
        check_params(spec, params)
    x = spec.as_input(x)
    mask = _as_mask(spec, dropout_mask, x.shape[0])
    trace, cache = _forward(spec, params, x, mask)
    return backward(spec, params, x, trace, y, dropout_mask=mask, cache=cache)


def loss(
    spec: CNNSpec,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    dropout_mask: np.ndarray | None = None,
) -> float:
    """The reduced loss plus weight decay (what :func:`gradients` differentiates)."""
    trace = forward(spec, params, x, dropout_mask=dropout_mask)
    n = trace.output.shape[0]
    t = as_targets(spec.loss, y, n, spec.output_dim, np.dtype(spec.dtype))
    value, _ = loss_and_grad(spec.loss, trace.output, t, spec.reduction)
    return float(value) + weight_decay_loss(spec, params)


def predict(spec: CNNSpec, params: Params, x: np.ndarray) -> np.ndarray:
    """Class probabilities ``softmax(o) [N, classes]`` at evaluation (no dropout), in chunks."""
    return probabilities(spec.loss, logits(spec, params, x))


def working_values(spec: CNNSpec, rows: int, *, training: bool = True) -> int:
    """Values held at the peak of a training step on ``rows`` samples (``training``) or of
    :func:`logits` on them (``LOGITS_CHUNK`` rows at a time), besides the input (the caller's)
    and the parameters, for memory estimates. Per sample: per conv block its im2col matrix,
    ``z``, ``h``, and the pooled map with its arg-maxes; the dense layers' ``z``, ``h`` and
    dropout output; in training also the largest block's backward buffers (the padded input
    gradient, delta and upstream per sample; ``dcols``: ``DCOLS_CHUNK`` values or one sample's)."""
    shapes = spec.feature_shapes()
    kept, backward, dcols = 0, 0, 0
    for block, (h, w, c), pooled in zip(spec.conv, shapes[:-1], shapes[1:], strict=True):
        ho = output_size(h, block.kernel, block.stride, block.padding)
        wo = output_size(w, block.kernel, block.stride, block.padding)
        cols, maps = ho * wo * block.kernel**2 * c, ho * wo * block.filters
        kept += cols + 2 * maps + (2 * math.prod(pooled) if block.pool else 0)
        backward = max(backward, (h + block.kernel) * (w + block.kernel) * c + 2 * maps)
        dcols = max(dcols, min(rows * cols, max(DCOLS_CHUNK, cols)))
    dense = spec.dense_widths
    per_sample = kept + 2 * sum(dense[1:]) + dense[-2]
    if training:
        return rows * (per_sample + backward + 3 * max(dense)) + dcols
    return min(rows, LOGITS_CHUNK) * per_sample + rows * spec.classes
