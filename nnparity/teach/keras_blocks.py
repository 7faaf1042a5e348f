"""Keras (on TensorFlow), idiomatically, one function per building block of the teaching page.

Each function is what the page shows in the Keras column and what it runs to measure parity:
ordinary Keras layers, losses and optimizers in the canonical layout (Keras' own: NHWC, HWIO,
``kernel = W [D_in, D_out]``), the backward pass from one ``tf.GradientTape`` given an upstream
gradient; outputs are named as the reference's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnparity.backends.determinism import import_tensorflow

tf, keras = import_tensorflow()

Array = np.ndarray  # inputs: NumPy arrays in the canonical layout
Out = dict[str, tf.Tensor]  # outputs by the reference's names


def built(layer: keras.layers.Layer, shape: tuple, weights: list[Array]) -> keras.layers.Layer:
    """``layer`` with its variables created for inputs of ``shape`` and set to ``weights``."""
    layer.build(shape)
    layer.set_weights(weights)
    return layer


def elementwise(f: Callable, z: Array, dh: Array) -> Out:
    """``h = f(z)`` and ``dL/dz`` from the upstream ``dh``, by one tape."""
    z = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        h = f(z)
    return {"h": h, "dz": tape.gradient(h, z, output_gradients=tf.constant(dh))}


def dense(x: Array, W: Array, b: Array, dz: Array) -> Out:
    layer = built(keras.layers.Dense(W.shape[1], dtype=str(W.dtype)), (None, W.shape[0]), [W, b])
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = layer(x)
    dx, dW, db = tape.gradient(z, [x, layer.kernel.value, layer.bias.value],
                               output_gradients=tf.constant(dz))
    return {"z": z, "dx": dx, "dW": dW, "db": db}


def sigmoid(z: Array, dh: Array) -> Out:
    return elementwise(keras.activations.sigmoid, z, dh)


def tanh(z: Array, dh: Array) -> Out:
    return elementwise(keras.activations.tanh, z, dh)


def relu(z: Array, dh: Array) -> Out:
    return elementwise(keras.activations.relu, z, dh)  # relu'(0) = 0


def relu3(z: Array, dh: Array) -> Out:
    return elementwise(lambda z: keras.activations.relu(z) ** 3, z, dh)


def identity(z: Array, dh: Array) -> Out:
    return elementwise(keras.activations.linear, z, dh)


def prelu(z: Array, a: Array, dh: Array) -> Out:
    # keras.layers.PReLU computes relu(z) - a relu(-z): its derivative at 0 is 0, not a
    act = built(keras.layers.PReLU(shared_axes=[1], dtype=str(z.dtype)), (None, z.shape[1]), [a])
    z = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        h = act(z)
    dz, da = tape.gradient(h, [z, act.alpha.value], output_gradients=tf.constant(dh))
    return {"h": h, "dz": dz, "da": da}


def _loss(loss_object: Callable, o: Array, t: Array) -> Out:
    """The loss of logits ``o`` and targets ``t`` and its gradient ``dL/do``, by one tape."""
    o = tf.constant(o)
    with tf.GradientTape() as tape:
        tape.watch(o)
        loss = loss_object(t, o)
    return {"loss": loss, "do": tape.gradient(loss, o)}


def softmax_ce(o: Array, y: Array) -> Out:
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum",
                                                    dtype=str(o.dtype))
    return _loss(ce, o, y)


def l2(o: Array, t: Array) -> Out:
    # MeanSquaredError averages over the K outputs of a row; 0.5 * sum needs K / 2
    mse = keras.losses.MeanSquaredError(reduction="sum", dtype=str(o.dtype))
    return _loss(lambda t, o: 0.5 * o.shape[1] * mse(t, o), o, t)


def log_loss(o: Array, t: Array) -> Out:
    bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum", dtype=str(o.dtype))
    return _loss(bce, o, t)


def mean_ce(o: Array, y: Array) -> Out:
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=str(o.dtype))  # mean
    return _loss(ce, o, y)


def weight_decay(W: Array, g: Array, lr: float, wd: float) -> Out:
    penalty_of = keras.regularizers.L2(wd / 2)  # Keras' L2(l) is l * sum(W^2)
    W = tf.constant(W)
    with tf.GradientTape() as tape:
        tape.watch(W)
        penalty = penalty_of(W)
    return {"penalty": penalty, "dW": tape.gradient(penalty, W)}


def conv2d(x: Array, W: Array, b: Array, dz: Array, stride: int, padding: str) -> Out:
    k, c_out = W.shape[0], W.shape[3]
    conv = built(keras.layers.Conv2D(c_out, k, strides=stride, padding=padding.lower(),
                                     dtype=str(W.dtype)), (None, *x.shape[1:]), [W, b])
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = conv(x)  # NHWC, HWIO: Keras' layout is the reference's
    dx, dW, db = tape.gradient(z, [x, conv.kernel.value, conv.bias.value],
                               output_gradients=tf.constant(dz))
    return {"z": z, "dx": dx, "dW": dW, "db": db}


def maxpool2d(x: Array, dy: Array, k: int, stride: int) -> Out:
    pool = keras.layers.MaxPool2D(k, stride, padding="same", dtype=str(x.dtype))
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = pool(x)
    return {"y": y, "dx": tape.gradient(y, x, output_gradients=tf.constant(dy))}


def flatten_dense(x: Array, W: Array, b: Array, dz: Array) -> Out:
    flatten = keras.layers.Flatten(dtype=str(W.dtype))  # NHWC order: W's rows as they are
    layer = built(keras.layers.Dense(W.shape[1], dtype=str(W.dtype)), (None, W.shape[0]), [W, b])
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = layer(flatten(x))
    dx, dW = tape.gradient(z, [x, layer.kernel.value], output_gradients=tf.constant(dz))
    return {"z": z, "dx": dx, "dW": dW}


def dropout(h: Array, mask: Array, keep_prob: float, dy: Array) -> Out:
    # keras.layers.Dropout draws its own mask; an explicit one is a multiplication
    h = tf.constant(h)
    with tf.GradientTape() as tape:
        tape.watch(h)
        y = h * mask / keep_prob
    return {"y": y, "dh": tape.gradient(y, h, output_gradients=tf.constant(dy))}


def _run(optimizer: keras.optimizers.Optimizer, W: Array, grads: list[Array]) -> tf.Tensor:
    W = keras.Variable(W, dtype=str(W.dtype))
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), W)])
    return W.value


def sgd(W: Array, grads: list[Array], lr: float) -> Out:
    return {"W (keras formula)": _run(keras.optimizers.SGD(lr), W, grads)}


def momentum(W: Array, grads: list[Array], lr: float, mu: float) -> Out:
    return {"W (keras formula)": _run(keras.optimizers.SGD(lr, momentum=mu), W, grads)}


def adam(W: Array, grads: list[Array], lr: float) -> Out:
    return {"W (keras formula)": _run(keras.optimizers.Adam(lr, epsilon=1e-7), W, grads)}


def to_numpy(t) -> np.ndarray:
    """A returned tensor as a NumPy array."""
    return np.asarray(t)
