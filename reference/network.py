"""The one model: forward, backward and gradients as one walk over ``spec.net``, for every spec.

Forward runs the layers in order (``h_0 = x``, ``h_i = layer_i(h_{i-1})``), recording each
layer's tensors in a :class:`Trace` by its role (:mod:`reference.layers.base`): ``z[name]`` for
a dense/conv layer, ``h[name]`` for its activation (``h = z`` without one), ``h[name]`` for a
pool, flatten or (in training) dropout layer. Backward starts from ``dE/do`` (the loss's
gradient, carrying the ``1/N`` of the ``mean`` reduction: :mod:`reference.losses`) and runs the
layers in reverse; the upstream gradient at a dense/conv layer's output is its delta ``dL/dz``
(the BP lecture's delta), and ``lambda W`` is added to each weight's gradient
(``0.5 lambda sum W^2`` in the loss). The walk stops at the first layer with parameters: the
input needs no gradient. A residual block (``role`` ``block``) walks its own sub-list in both
passes; the walk records the sub-list's tensors from the block's cache and takes its inner
deltas from :meth:`~reference.layers.residual.Residual.backward_with_deltas`.

One fusion, in a training step (:func:`gradients`, ``Run.pooled``) only: a ``relu`` right before
a max-pool whose windows do not overlap runs on the pooled map (the pool of ``z``, then relu:
:func:`reference.pool.relu_maxpool2d`), and its derivative with it in the backward pass, four
times fewer values for the notes' CNN's 2x2 pools. The gradients, deltas and loss are the same
to the bit (tested); the trace of such a step holds no ``h`` for that relu, so every pass that
returns a trace (:func:`forward`) runs unfused.

Every spec (:class:`~reference.spec.MLPSpec`, :class:`~reference.cnn_spec.CNNSpec`,
:class:`~reference.netspec.NetSpec`) builds its list; their traces, deltas and parameter names
are each spec's own (the MLP: ``layer<l>``, ``W<l>``; the CNN: ``conv<i>``, ``fc<j>``).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from .conv import DCOLS_CHUNK
from .dropout import check_mask, draw_dropout_mask
from .layers import Activation, Conv2D, Dense, Dropout, MaxPool, Run
from .layers.residual import each_layer, layer_lists
from .losses import as_targets, loss_and_grad, probabilities
from .params import Params, check_params, weight_decay_loss
from .pool import near_ties
from .results import Gradients, Trace

if TYPE_CHECKING:
    from .family import Spec

__all__ = [
    "backward",
    "check_params",
    "draw_dropout_mask",
    "forward",
    "gradient_scales",
    "gradients",
    "logits",
    "loss",
    "pool_ties",
    "preactivation_scale",
    "predict",
    "working_values",
]

Passed = list[tuple[np.ndarray, np.ndarray, Any]]
"""Per layer: ``(input, output, cache)`` of a forward pass."""


def _run(spec: Spec, mask: np.ndarray | None, n: int, keep: bool = True,
         training: bool = False, fused: bool = False) -> Run:
    """The pass's state with ``mask`` checked: ``[n, spec.dropout_units]`` of 0/1, in the spec's
    dtype (a spec without dropout refuses one); ``training``: batch statistics; ``fused``: the
    module's fusion, where the net has a relu and pool it applies to."""
    if mask is not None:
        if not spec.dropout_units:
            raise ValueError("this network has no dropout: dropout_mask must be None")
        mask = check_mask(mask, (n, spec.dropout_units)).astype(spec.dtype, copy=False)
    return Run(np.dtype(spec.dtype), mask, spec.dropout_columns, keep, training,
               pooled=_relus_pooled(spec.net) if fused else frozenset())


def _relus_pooled(net: tuple[Any, ...]) -> frozenset[int]:
    """Indices of the relu layers that the pool after them can apply (module docstring). The
    classes themselves only: a subclass (a known mistake's variant,
    :mod:`nnparity.verify.mistakes`) has a forward or backward of its own."""
    return frozenset(i for i, (layer, after) in enumerate(itertools.pairwise(net))
                     if type(layer) is Activation and layer.function == "relu"
                     and type(after) is MaxPool and after.fuses_relu)


def _record(trace: Trace, layer: Any, y: np.ndarray, run: Run, cache: Any = None) -> None:
    if layer.role == "block":  # a residual: its sub-list's tensors, then its output
        for inner, (_, inner_y, inner_cache) in zip(layer.net, cache[0], strict=True):
            _record(trace, inner, inner_y, run, inner_cache)
    if layer.role == "param":
        trace.z[layer.name] = trace.h[layer.name] = y
    elif not isinstance(layer, Dropout) or run.mask is not None or layer.traced_without_mask:
        trace.h[layer.name] = y


def _forward(spec: Spec, params: Params, x: np.ndarray, run: Run) -> tuple[Trace, Passed]:
    trace = Trace(output=x)
    passed: Passed = []
    h = x
    pooled = run.pooled
    for i, layer in enumerate(spec.net):
        if i in pooled:  # the pool after it applies it, on its pooled map
            passed.append((h, h, None))
            continue
        if i - 1 in pooled:
            y, cache = layer.forward_after_relu(h)
        else:
            y, cache = layer.forward(h, params, run)
        _record(trace, layer, y, run, cache)
        passed.append((h, y, cache))
        h = y
    trace.output = h
    return trace, passed


def _from_trace(net: tuple[Any, ...], x: np.ndarray, trace: Trace) -> Passed:
    """Each layer's ``(input, output, None)`` read back from a recorded ``trace`` of ``x`` (a
    residual's cache: its sub-list's, read back the same way)."""
    passed: Passed = []
    h = x
    for layer in net:
        if layer.role == "block":
            passed.append((h, trace.h[layer.name], (_from_trace(layer.net, h, trace), None)))
            h = trace.h[layer.name]
            continue
        if layer.role == "param":
            y = trace.z[layer.name]
        else:
            y = trace.h.get(layer.name, h) if isinstance(layer, Dropout) else trace.h[layer.name]
        passed.append((h, y, None))
        h = y
    return passed


def _backward(spec: Spec, params: Params, passed: Passed, output: np.ndarray, y: np.ndarray,
              run: Run) -> Gradients:
    n = output.shape[0]
    t = as_targets(spec.loss, y, n, spec.output_dim, run.dtype)
    value, upstream = loss_and_grad(spec.loss, output, t, spec.reduction)
    first = spec.first_with_parameters
    deltas: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    wd = spec.weight_decay
    pooled = run.pooled
    for i in range(len(spec.net) - 1, first - 1, -1):
        layer = spec.net[i]
        if i in pooled:  # its derivative came with its pool's gradient
            continue
        if layer.role == "param":
            deltas[layer.name] = upstream
        x_in, y_out, cache = passed[i]
        if i - 1 in pooled:
            upstream, layer_grads = layer.backward_after_relu(upstream, x_in, y_out, cache), {}
        elif layer.role == "block":
            upstream, layer_grads, inner = layer.backward_with_deltas(
                upstream, x_in, y_out, cache, params, run, i > first)
            deltas.update(inner)
        else:
            upstream, layer_grads = layer.backward(upstream, x_in, y_out, cache, params, run,
                                                   i > first)
        for name, grad in layer_grads.items():
            if wd and spec.is_weight(name):
                grad = grad + wd * np.asarray(params[name]).astype(run.dtype, copy=False)
            grads[name] = grad
    total = float(value) + weight_decay_loss(spec, params)
    return Gradients(loss=total, grads={k: grads[k] for k in spec.trained_names},
                     deltas={k: deltas[k] for k in spec.layer_names}, output=output,
                     state=dict(run.updates))


def forward(spec: Spec, params: Params, x: np.ndarray, *,
            dropout_mask: np.ndarray | None = None, training: bool | None = None) -> Trace:
    """Run the network on ``x [N, *input_shape]``; ``dropout_mask [N, spec.dropout_units]`` of
    0/1 or None. ``training``: batch normalisation on the batch's statistics, else on the
    running ones (default: training when a mask is given). Every layer's tensors, keyed as the
    module says."""
    x = spec.as_input(x)
    training = dropout_mask is not None if training is None else training
    run = _run(spec, dropout_mask, x.shape[0], keep=False, training=training)
    return _forward(spec, params, x, run)[0]


def backward(spec: Spec, params: Params, x: np.ndarray, trace: Trace, y: np.ndarray, *,
             dropout_mask: np.ndarray | None = None) -> Gradients:
    """Deltas and gradients for the ``trace`` of ``x`` (with the same ``dropout_mask``) and
    labels ``y`` (class indices ``[N]`` or targets ``[N, K]``)."""
    x = spec.as_input(x)
    run = _run(spec, dropout_mask, x.shape[0], keep=False, training=True)
    return _backward(spec, params, _from_trace(spec.net, x, trace), trace.output, y, run)


def gradients(spec: Spec, params: Params, x: np.ndarray, y: np.ndarray, *,
              dropout_mask: np.ndarray | None = None, checked: bool = False,
              fused: bool = True) -> Gradients:
    """Forward then backward of a training pass: loss, ``dL/dparam`` for every parameter but
    state, ``dL/dz`` per layer, the state the pass leaves (``Gradients.state``). ``checked``:
    the caller has checked ``params`` against the spec (a trainer does, once); ``fused``: the
    module's fusion (False: the plain walk, the same bits)."""
    if not checked:
        check_params(spec, params)
    x = spec.as_input(x)
    run = _run(spec, dropout_mask, x.shape[0], training=True, fused=fused)
    trace, passed = _forward(spec, params, x, run)
    return _backward(spec, params, passed, trace.output, y, run)


def loss(spec: Spec, params: Params, x: np.ndarray, y: np.ndarray, *,
         dropout_mask: np.ndarray | None = None) -> float:
    """The reduced loss plus weight decay of a training pass (what :func:`gradients`
    differentiates)."""
    x = spec.as_input(x)
    run = _run(spec, dropout_mask, x.shape[0], keep=False, training=True)
    output = _forward(spec, params, x, run)[0].output
    t = as_targets(spec.loss, y, output.shape[0], spec.output_dim, np.dtype(spec.dtype))
    value, _ = loss_and_grad(spec.loss, output, t, spec.reduction)
    return float(value) + weight_decay_loss(spec, params)


LOGITS_CHUNK = 64
"""Rows :func:`logits` computes at a time for a network with convolutions: the notes' CNN holds
about 0.9 MB per float32 row at the peak of its forward pass (conv2's im2col matrix 0.6 MB of
it), so 64 rows stay near 60 MB; larger chunks are no faster (the GEMMs already have 3136 rows
or more). A network of dense layers runs in one pass."""


def logits(spec: Spec, params: Params, x: np.ndarray, chunk: int | None = None) -> np.ndarray:
    """The output ``o [N, K]`` at evaluation (no dropout), ``chunk`` rows at a time (default:
    :data:`LOGITS_CHUNK` when the network convolves, else all at once), so that memory stays
    bounded."""
    x = spec.as_input(x)
    if chunk is None:
        chunk = LOGITS_CHUNK if any(isinstance(layer, Conv2D) for layer in each_layer(spec.net)) \
            else 0
    if not chunk:
        return forward(spec, params, x).output
    run = _run(spec, None, 0, keep=False)
    parts = [_forward(spec, params, x[i:i + chunk], run)[0].output
             for i in range(0, len(x), chunk)]
    if not parts:
        return np.zeros((0, spec.output_dim), dtype=spec.dtype)
    return np.concatenate(parts)


def predict(spec: Spec, params: Params, x: np.ndarray) -> np.ndarray:
    """Softmax (``ce``), sigmoid (``bce``) or raw output (``l2``, ``mse``) of ``x``: ``[N, K]``."""
    return probabilities(spec.loss, logits(spec, params, x))


def preactivation_scale(spec: Spec, params: Params, x: np.ndarray,
                        trace: Trace) -> dict[str, np.ndarray]:
    """Per dense/conv layer, ``sum_i |in_i W_ij| + |b_j|`` for every unit of ``z`` (the size of
    the terms that rounding acts on): the layer applied to ``|input|`` with ``|W|``, ``|b|``."""
    x = spec.as_input(x)
    run = _run(spec, None, 0, keep=False)
    return {layer.name: layer.scale(x_in, params, run)
            for layer, x_in in _param_inputs(spec.net, _from_trace(spec.net, x, trace))}


def gradient_scales(spec: Spec, params: Params, x: np.ndarray, gradients: Gradients, *,
                    dropout_mask: np.ndarray | None = None) -> Params:
    """Per parameter of a dense, conv or batchnorm layer, the terms its gradient sums, by size
    (:meth:`~reference.layers.base.Layer.gradient_terms`): ``|x|^T |delta|`` for ``W``
    (``+ |lambda W|`` under weight decay), ``1^T |delta|`` for a bias or ``beta``,
    ``sum |delta xhat|`` for ``gamma`` (``gradients``: the training pass of ``x`` with
    ``dropout_mask``). At least ``|dL/dparam|`` entry by entry, and equal to it when nothing
    cancels; rounding acts on these terms, so a gradient that is zero in exact arithmetic (a bias
    right before a batch normalisation) is rounding noise a few ulps of them in size."""
    x = spec.as_input(x)
    run = _run(spec, dropout_mask, x.shape[0], keep=False, training=True)
    scales: Params = {}
    for layer, x_in in _param_inputs(spec.net, _forward(spec, params, x, run)[1]):
        scales.update(layer.gradient_terms(gradients.deltas[layer.name], x_in, params, run))
    if spec.weight_decay:
        for name in scales:
            if spec.is_weight(name):
                scales[name] = scales[name] + abs(spec.weight_decay) * np.abs(
                    np.asarray(params[name], dtype=run.dtype))
    return scales


def _param_inputs(net: tuple[Any, ...], passed: Passed) -> list[tuple[Any, np.ndarray]]:
    """Every dense/conv layer with its input, a residual's inner layers included."""
    found = []
    for layer, (x_in, _, cache) in zip(net, passed, strict=True):
        if layer.role == "block":
            found.extend(_param_inputs(layer.net, cache[0]))
        elif layer.role == "param":
            found.append((layer, x_in))
    return found


def pool_ties(spec: Spec, trace: Trace, scales: dict[str, np.ndarray],
              tol: float) -> dict[str, np.ndarray]:
    """Per max-pool that pools a dense/conv layer's ``h``, that layer's cells tied for their
    window's maximum within ``tol`` times their pre-activation ``scales``
    (:func:`reference.pool.near_ties`), keyed by that layer's name."""
    ties = {}
    for net in layer_lists(spec.net):  # a residual block's sub-list too
        owner = None
        for layer in net:
            if isinstance(layer, MaxPool) and owner is not None:
                ties[owner] = near_ties(trace.h[owner], scales[owner], layer.size, layer.stride,
                                        layer.padding, tol)
            owner = layer.name if layer.role in ("param", "activation") else None
    return ties


def working_values(spec: Spec, rows: int, *, training: bool = True) -> int:
    """Values held at the peak of a training step on ``rows`` samples (``training``) or of
    :func:`logits` on them, besides the input (the caller's) and the parameters, for memory
    estimates. Per sample: every dense/conv layer's ``z`` and ``h`` (a conv layer's im2col
    matrix too), a pool's output and arg-maxes, dropout's output (in training, or when traced
    at evaluation); at the peak of the backward pass the largest conv layer's buffers (the
    input gradient, counted padded, and two maps, plus the block of ``dcols`` it holds: one kernel
    offset's, for a chunk of samples) and the widest dense layer's delta, upstream gradient and
    activation derivative (its input's width too when that needs a gradient); at evaluation
    the widest dense layer's two temporaries."""
    kept, conv_peak, dense_peak, dcols = 0, 0, 0, 0
    first = True
    for layer, shape, out in spec.placed_layers:
        size = int(np.prod(out))
        if layer.role == "block":  # its output (and its projection's), besides its sub-list's
            kept += 2 * size
        if isinstance(layer, Conv2D):
            h, w, c = shape
            cols = size // layer.filters * layer.kernel ** 2 * c
            kept += cols + 2 * size
            conv_peak = max(conv_peak, (h + layer.kernel) * (w + layer.kernel) * c + 2 * size)
            dcols = max(dcols, min(rows * cols, max(DCOLS_CHUNK, cols)) // layer.kernel ** 2)
        elif isinstance(layer, MaxPool):
            kept += 2 * size
        elif isinstance(layer, Dropout):
            kept += size if training or layer.traced_without_mask else 0
        elif isinstance(layer, Dense):
            kept += 2 * size
            dense_peak = max(dense_peak, size, 0 if first else int(np.prod(shape)))
        first = first and layer.role != "param"
    if training:
        return rows * (kept + conv_peak + 3 * dense_peak) + dcols
    if any(isinstance(layer, Conv2D) for layer in each_layer(spec.net)):
        return min(rows, LOGITS_CHUNK) * kept + rows * spec.output_dim
    return rows * (kept + 2 * dense_peak)
