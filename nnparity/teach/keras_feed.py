"""How the page runs :mod:`.keras_blocks` on its fixed example: the measuring harness.

:func:`run` takes the example's NumPy arrays (the canonical layout is Keras' own), builds each
block function's arguments (constants, layers built with the example's weights, variables),
calls the function and returns its outputs as NumPy arrays. The page shows this code only in a
fold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnparity.backends.determinism import import_tensorflow

from . import keras_blocks as BLOCKS

tf, keras = import_tensorflow()

Array = np.ndarray
Out = dict[str, Any]


def built(layer: keras.layers.Layer, shape: tuple, weights: list[Array]) -> keras.layers.Layer:
    """``layer`` with its variables created for inputs of ``shape`` and set to ``weights``."""
    layer.build(shape)
    layer.set_weights(weights)
    return layer


def constants(**inputs: Any) -> dict[str, Any]:
    """Arrays as ``tf.constant``, lists of arrays as lists of them, the rest as it is."""
    return {name: [tf.constant(a) for a in v] if isinstance(v, list)
            else tf.constant(v) if isinstance(v, np.ndarray) else v for name, v in inputs.items()}


def plain(fn: Callable[..., Out], **inputs: Any) -> Out:
    return fn(**constants(**inputs))


def dense(fn: Callable[..., Out], x: Array, W: Array, b: Array, dz: Array) -> Out:
    layer = built(keras.layers.Dense(W.shape[1], dtype=str(W.dtype)), (None, W.shape[0]), [W, b])
    return fn(layer, tf.constant(x), tf.constant(dz))


def prelu(fn: Callable[..., Out], z: Array, a: Array, dh: Array) -> Out:
    act = built(keras.layers.PReLU(shared_axes=[1], dtype=str(z.dtype)), (None, z.shape[1]), [a])
    return fn(act, tf.constant(z), tf.constant(dh))


def variable(fn: Callable[..., Out], W: Array, **rest: Any) -> Out:
    """``W`` as a ``keras.Variable``; the rest as constants."""
    return fn(keras.Variable(W, dtype=str(W.dtype)), **constants(**rest))


def conv2d(fn: Callable[..., Out], x: Array, W: Array, b: Array, dz: Array, stride: int,
           padding: str) -> Out:
    layer = keras.layers.Conv2D(W.shape[3], W.shape[0], strides=stride, padding=padding.lower(),
                                dtype=str(W.dtype))
    conv = built(layer, (None, *x.shape[1:]), [W, b])
    return fn(conv, tf.constant(x), tf.constant(dz), stride, padding)


def flatten_dense(fn: Callable[..., Out], x: Array, W: Array, b: Array, dz: Array) -> Out:
    layer = built(keras.layers.Dense(W.shape[1], dtype=str(W.dtype)), (None, W.shape[0]), [W, b])
    return fn(layer, tf.constant(x), tf.constant(dz))


def batchnorm(fn: Callable[..., Out], x: Array, gamma: Array, beta: Array, dy: Array,
              epsilon: float) -> Out:
    layer = keras.layers.BatchNormalization(epsilon=epsilon, dtype=str(x.dtype))
    moving = [np.zeros_like(gamma), np.ones_like(gamma)]  # unused by a training pass
    return fn(built(layer, (None, x.shape[1]), [gamma, beta, *moving]), tf.constant(x),
              tf.constant(dy))


def layernorm(fn: Callable[..., Out], x: Array, gamma: Array, beta: Array, dy: Array,
              epsilon: float) -> Out:
    layer = keras.layers.LayerNormalization(epsilon=epsilon, dtype=str(x.dtype))
    return fn(built(layer, (None, x.shape[1]), [gamma, beta]), tf.constant(x), tf.constant(dy))


def residual(fn: Callable[..., Out], x: Array, W: Array, b: Array, dy: Array) -> Out:
    fc = keras.layers.Dense(W.shape[1], activation="tanh", dtype=str(W.dtype))
    return fn(built(fc, (None, W.shape[0]), [W, b]), tf.constant(x), tf.constant(dy))


FEEDERS: dict[str, Callable[..., Out]] = {
    "dense": dense, "prelu": prelu, "weight_decay": variable, "conv2d": conv2d,
    "flatten_dense": flatten_dense, "sgd": variable, "momentum": variable, "adam": variable,
    "batchnorm": batchnorm, "layernorm": layernorm, "residual": residual}


def feeder(function: str) -> Callable[..., Out]:
    """The harness function that feeds ``BLOCKS.<function>``."""
    return FEEDERS.get(function, plain)


def run(function: str, inputs: dict[str, Any]) -> dict[str, Array]:
    """``BLOCKS.<function>`` on ``inputs`` (canonical NumPy), its outputs as NumPy."""
    outputs = feeder(function)(getattr(BLOCKS, function), **inputs)
    return {name: np.asarray(keras.ops.convert_to_numpy(value)) for name, value in outputs.items()}
