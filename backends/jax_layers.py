"""The JAX layer table: every kind of ``reference.layers.KINDS`` -> a pure function that builds
the layer's apply from the layer's fields (the backend folds it over ``spec.net``).

An apply is ``(params, h, run) -> y``: ``params`` the tree of JAX arrays under their canonical
names (a layer's ``weight``, ``bias`` and ``slope`` fields name its entries), ``h`` the layer's
input in the Keras layout (NHWC maps, flat ``[N, D]``), ``run`` the pass's dropout mask and
the fold itself (``run.chain``), which a residual block applies to its sub-list.

- ``dense``: ``jnp.matmul(h, W)`` at ``HIGHEST`` precision, plus ``b`` unless ``use_bias`` is off.
- ``conv2d``: ``lax.conv_general_dilated`` on NHWC/HWIO with TensorFlow's SAME padding (an odd
  total pads the extra row/column bottom/right), plus ``b``.
- ``maxpool``: ``lax.reduce_window`` max (padding holds ``-inf``; the gradient goes to the first
  maximum of a window, row-major).
- ``avgpool``: ``lax.reduce_window`` add over VALID or SAME windows, divided by the window's
  cells (SAME: its real cells, the same window sum over ones; ``count_include_pad``: all
  ``k^2``).
- ``global_avgpool``: ``jnp.mean`` over the map's two spatial axes, ``[N, C]``.
- ``layernorm``: ``(h - mean) * lax.rsqrt(var + epsilon) * gamma + beta`` over the last axis
  (``jnp.var``, biased; what ``flax.nnx.LayerNorm`` computes).
- ``flatten``: ``[N, H, W, C] -> [N, H*W*C]`` in NHWC order.
- ``dropout``: ``h * (mask[:, columns] / keep_prob)`` with the layer's columns of the pass's
  mask; ``h`` itself without a mask (evaluation).
- ``residual``: ``run.chain(net, params, h)`` (the backend's fold over the sub-list, which
  traces the inner tensors) plus ``h``, or plus its projection (the ``dense`` or 1x1 ``conv2d``
  apply of :meth:`Residual.skip`).
- activations: ``jax.nn.sigmoid``, ``jnp.tanh``, ``jax.nn.relu`` (derivative 0 at 0),
  ``relu(z)^3``, identity, and leaky relu and PReLU as ``where(z > 0, z, slope z)``, so that the
  derivative at 0 is the slope (``jax.nn.leaky_relu``'s is 1); ``gelu``:
  ``jax.nn.gelu(approximate=False | True)`` for ``none`` | ``tanh`` (JAX's default is tanh).
- ``batchnorm``: written with ``jnp`` (as the reference writes it; the backend has no Flax):
  in training the batch's mean and biased variance over every axis but the last, leaving the
  running statistics in ``run.updates`` (``momentum`` weighing the old value, the batch variance
  times ``m / (m - 1)`` for ``unbiased``: both conventions); at evaluation the running ones.

Parameters: a dict keyed by canonical name, each in the Keras layout (``backends.layout`` by
``param_kind``: biases and slopes ``[D]``, the rest canonical), in the spec's dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import layout

if TYPE_CHECKING:
    from nnparity.reference.family import Spec
    from nnparity.reference.layers import (
        AvgPool,
        BatchNorm,
        Conv2D,
        Dense,
        Dropout,
        Gelu,
        Layer,
        MaxPool,
        PReLU,
        Residual,
    )

FRAMEWORK = "keras"  # the layout JAX holds tensors in (see the module docstring)
DIMENSIONS = ("NHWC", "HWIO", "NHWC")  # conv_general_dilated: input, kernel, output
HIGHEST = lax.Precision.HIGHEST  # full precision matmuls and convolutions on every device
LEAKY_SLOPE = 0.01
Tree = dict[str, jax.Array]


class Run(NamedTuple):
    """What one pass shares with every layer: the 0/1 dropout ``mask [N, units]`` (None:
    evaluation), each dropout layer's ``columns`` of it, ``chain``: the fold
    ``(layers, params, h) -> output`` that runs a sub-list (None: :func:`fold`, tracing
    nothing); ``training``: batch statistics, the state they leave (running statistics by
    canonical name) in ``updates``."""

    mask: jax.Array | None
    columns: dict[str, slice]
    chain: Callable[[tuple[Layer, ...], Tree, jax.Array], jax.Array] | None = None
    training: bool = False
    updates: dict[str, jax.Array] | None = None


Apply = Callable[[Tree, jax.Array, Run], jax.Array]


# --- activations ---------------------------------------------------------------------------------


def _where_positive(z: jax.Array, slope: jax.Array | float) -> jax.Array:
    """``z if z > 0 else slope * z``: the derivative at 0 is ``slope``."""
    return jnp.where(z > 0, z, slope * z)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,  # a custom JVP with relu'(0) = 0
    "identity": lambda z: z,
    "relu3": lambda z: jax.nn.relu(z) ** 3,
    "leaky_relu": partial(_where_positive, slope=LEAKY_SLOPE),
}
"""The parameter-free activations by kind, elementwise on any shape."""


def _elementwise(f: Callable[[jax.Array], jax.Array]) -> Callable[[Layer], Apply]:
    """The builder of a parameter-free activation ``h -> f(h)``."""
    def build(layer: Layer) -> Apply:
        return lambda params, h, run: f(h)
    return build


def prelu(layer: PReLU) -> Apply:
    """``where(h > 0, h, a h)`` with the slope ``a`` (``[1]`` shared, ``[D]``/``[C]`` per unit or
    channel, broadcast along the last axis)."""
    return lambda params, h, run: _where_positive(h, params[layer.slope])


def gelu(layer: Gelu) -> Apply:
    """``jax.nn.gelu`` in the layer's form (``approximate`` ``tanh`` -> True, ``none`` -> False)."""
    tanh_form = layer.approximate == "tanh"
    return lambda params, h, run: jax.nn.gelu(h, approximate=tanh_form)


# --- layers with parameters ----------------------------------------------------------------------


def dense(layer: Dense) -> Apply:
    """``h [N, D_in] -> h @ W + b [N, D_out]`` (no ``b`` when ``use_bias`` is off)."""
    def apply(params: Tree, h: jax.Array, run: Run) -> jax.Array:
        z = jnp.matmul(h, params[layer.weight], precision=HIGHEST)
        return z + params[layer.bias] if layer.use_bias else z
    return apply


def conv2d(layer: Conv2D) -> Apply:
    """``h [N, H, W, C] -> conv(h, W [k, k, C, F]) + b [N, Ho, Wo, F]`` (no ``b`` when
    ``use_bias`` is off)."""
    p = layer.padding
    padding = ((p, p), (p, p)) if isinstance(p, int) else p  # zeros on every side, or a rule

    def apply(params: Tree, h: jax.Array, run: Run) -> jax.Array:
        s = layer.stride
        z = lax.conv_general_dilated(h, params[layer.weight], (s, s), padding,
                                     dimension_numbers=DIMENSIONS, precision=HIGHEST)
        return z + params[layer.bias] if layer.use_bias else z
    return apply


# --- maps ----------------------------------------------------------------------------------------


def maxpool(layer: MaxPool) -> Apply:
    """``h [N, H, W, C] -> [N, Ho, Wo, C]``, the max of each ``size x size`` window."""
    p, s = layer.size, layer.stride
    return lambda params, h, run: lax.reduce_window(h, -jnp.inf, lax.max, (1, p, p, 1),
                                                    (1, s, s, 1), layer.padding)


def avgpool(layer: AvgPool) -> Apply:
    """``h [N, H, W, C] -> [N, Ho, Wo, C]``, the mean of each ``size x size`` window (SAME: of
    its real cells, unless ``count_include_pad``)."""
    window, strides = (1, layer.size, layer.size, 1), (1, layer.stride, layer.stride, 1)

    def window_sums(h: jax.Array) -> jax.Array:
        return lax.reduce_window(h, 0.0, lax.add, window, strides, layer.padding)

    def apply(params: Tree, h: jax.Array, run: Run) -> jax.Array:
        if layer.padding == "VALID" or layer.count_include_pad:
            return window_sums(h) / (layer.size * layer.size)
        return window_sums(h) / window_sums(jnp.ones((1, *h.shape[1:3], 1), h.dtype))
    return apply


def global_avgpool(layer: Layer) -> Apply:
    """``h [N, H, W, C] -> [N, C]``, each channel's mean over the map."""
    return lambda params, h, run: jnp.mean(h, axis=(1, 2))


def layernorm(layer: Layer) -> Apply:
    """A ``layernorm`` layer's apply: ``h [N, D]`` normalised per row,
    ``(h - mean) / sqrt(var + epsilon) gamma + beta``."""
    def apply(params: Tree, h: jax.Array, run: Run) -> jax.Array:
        mean = jnp.mean(h, axis=-1, keepdims=True)
        var = jnp.var(h, axis=-1, keepdims=True)
        xhat = (h - mean) * lax.rsqrt(var + layer.epsilon)
        return xhat * params[layer.weight] + params[layer.bias]
    return apply


def flatten(layer: Layer) -> Apply:
    """``h [N, H, W, C] -> [N, H*W*C]`` in NHWC order."""
    return lambda params, h, run: h.reshape(h.shape[0], -1)


def dropout(layer: Dropout) -> Apply:
    """``h * (mask[:, columns] / keep_prob)`` in training, ``h`` at evaluation."""
    def apply(params: Tree, h: jax.Array, run: Run) -> jax.Array:
        if run.mask is None:
            return h
        return h * (run.mask[:, run.columns[layer.name]] / layer.keep_prob)
    return apply


def residual(layer: Residual) -> Apply:
    """``skip(h) + f(h)``: the sub-list ``f`` through ``run.chain``, the skip the identity or
    the projection's apply."""
    def apply(params: Tree, h: jax.Array, run: Run) -> jax.Array:
        inner = (run.chain or partial(fold, run=run))(layer.net, params, h)
        skip = layer.skip(tuple(h.shape[1:]))
        return (h if skip is None else build(skip)(params, h, run)) + inner
    return apply


def fold(layers: tuple[Layer, ...], params: Tree, h: jax.Array, run: Run) -> jax.Array:
    """The layers' applies in order on ``h`` (no trace)."""
    for layer in layers:
        h = build(layer)(params, h, run)
    return h


def batchnorm(layer: BatchNorm) -> Apply:
    """``gamma * (h - mean) / sqrt(var + epsilon) + beta`` over the last axis: the batch's
    statistics in training (running ones updated into ``run.updates``), the running ones at
    evaluation."""
    def apply(params: Tree, h: jax.Array, run: Run) -> jax.Array:
        gamma, beta = params[layer.gamma], params[layer.beta]
        if not run.training:
            xhat = (h - params[layer.mean]) / jnp.sqrt(params[layer.var] + layer.epsilon)
            return gamma * xhat + beta
        axes = tuple(range(h.ndim - 1))
        mu = jnp.mean(h, axis=axes)
        var = jnp.mean(jnp.square(h - mu), axis=axes)
        m = h.size // h.shape[-1]
        if layer.variance == "unbiased" and m < 2:
            raise ValueError(f"{layer.name}: the unbiased running variance needs more than one "
                             "value per feature in a training batch")
        batch_var = var * (m / (m - 1)) if layer.variance == "unbiased" else var
        keep = layer.momentum
        if run.updates is not None:
            run.updates[layer.mean] = lax.stop_gradient(
                keep * params[layer.mean] + (1 - keep) * mu)
            run.updates[layer.var] = lax.stop_gradient(
                keep * params[layer.var] + (1 - keep) * batch_var)
        return gamma * ((h - mu) / jnp.sqrt(var + layer.epsilon)) + beta
    return apply


LAYERS: dict[str, Callable[..., Apply]] = {
    "dense": dense,
    "conv2d": conv2d,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "flatten": flatten,
    "dropout": dropout,
    "prelu": prelu,
    "gelu": gelu,
    "residual": residual,
    "layernorm": layernorm,
    "global_avgpool": global_avgpool,
    "batchnorm": batchnorm,
    **{kind: _elementwise(f) for kind, f in ACTIVATIONS.items()},
}
"""Layer kind -> the builder of its apply (one row per kind of ``reference.layers.KINDS``)."""


def build(layer: Layer) -> Apply:
    """The apply of ``layer`` (``ValueError`` naming a kind the table lacks)."""
    if layer.kind not in LAYERS:
        raise ValueError(f"the jax backend has no layer kind {layer.kind!r}")
    return LAYERS[layer.kind](layer)


# --- parameters: canonical name -> the tree's entry ----------------------------------------------


def on_device(value: Any, dtype: Any = None) -> jax.Array:
    """A NumPy array (or number) as a JAX array on the default device, a copy (never the
    caller's memory): ``jax.device_put`` transfers it, where ``jnp.asarray`` compiles a small
    program (``jit(stage)``) for every new shape and dtype."""
    return jax.device_put(np.asarray(value, dtype=dtype), may_alias=False)


def param_to_jax(spec: Spec, name: str, value: np.ndarray) -> jax.Array:
    """A canonical parameter (or a same-shaped optimiser slot) as the tree's entry ``name``: the
    Keras layout (biases and slopes ``[D]``), in the spec's dtype."""
    return on_device(layout.to_framework(FRAMEWORK, name, value, spec), spec.dtype)


def param_from_jax(spec: Spec, name: str, value: jax.Array) -> np.ndarray:
    """Inverse of :func:`param_to_jax`: the canonical layout and shape, as NumPy."""
    return layout.from_framework(FRAMEWORK, name, np.asarray(value), spec)


def params_to_jax(spec: Spec, params: dict[str, np.ndarray]) -> Tree:
    """Every parameter of the spec (``param_shapes()`` order) as the tree JAX differentiates."""
    return {name: param_to_jax(spec, name, params[name]) for name in spec.param_shapes()}
