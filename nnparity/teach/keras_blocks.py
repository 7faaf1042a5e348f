"""Keras (on TensorFlow) as a user writes it, one function per building block of the page.

What the page shows in the Keras column: Keras layers, losses and optimizers, the backward pass
from one ``tf.GradientTape`` (a layer's from the gradient the layer above sends,
``output_gradients``; an optimiser's steps from a loss whose gradient is the given one). Keras'
layout is the reference's: NHWC, HWIO, ``kernel = W [D_in, D_out]``. The page runs these very
functions: :mod:`.keras_feed` builds their arguments from the fixed example (layers built with
its weights) and converts the results to NumPy.
"""

from __future__ import annotations

from collections.abc import Callable

from nnparity.backends.determinism import import_tensorflow

tf, keras = import_tensorflow()

Tensor = tf.Tensor
Out = dict[str, tf.Tensor]  # outputs by the reference's names


def dense(layer: keras.layers.Dense, x: Tensor, dz: Tensor) -> Out:
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = layer(x)  # x @ layer.kernel + layer.bias
    wrt = [x, layer.kernel, layer.bias]
    dx, dW, db = tape.gradient(z, wrt, output_gradients=dz)
    return {"z": z, "dx": dx, "dW": dW, "db": db}


def elementwise(f: Callable[[Tensor], Tensor], z: Tensor, dh: Tensor) -> Out:
    """``h = f(z)`` and ``dL/dz`` from the upstream ``dh``, by one tape."""
    with tf.GradientTape() as tape:
        tape.watch(z)
        h = f(z)
    return {"h": h, "dz": tape.gradient(h, z, output_gradients=dh)}


def sigmoid(z: Tensor, dh: Tensor) -> Out:
    return elementwise(keras.activations.sigmoid, z, dh)


def tanh(z: Tensor, dh: Tensor) -> Out:
    return elementwise(keras.activations.tanh, z, dh)


def relu(z: Tensor, dh: Tensor) -> Out:
    return elementwise(keras.activations.relu, z, dh)  # relu'(0) = 0


def relu3(z: Tensor, dh: Tensor) -> Out:
    return elementwise(lambda z: keras.activations.relu(z) ** 3, z, dh)


def identity(z: Tensor, dh: Tensor) -> Out:
    return elementwise(keras.activations.linear, z, dh)


def prelu(act: keras.layers.PReLU, z: Tensor, dh: Tensor) -> Out:
    # keras.layers.PReLU computes relu(z) - a relu(-z): its derivative at 0 is 0, not a
    with tf.GradientTape() as tape:
        tape.watch(z)
        h = act(z)
    dz, da = tape.gradient(h, [z, act.alpha], output_gradients=dh)
    return {"h": h, "dz": dz, "da": da}


def loss_and_grad(loss_fn: Callable, o: Tensor, t: Tensor) -> Out:
    """The loss of logits ``o`` and targets ``t`` and its gradient ``dL/do``, by one tape."""
    with tf.GradientTape() as tape:
        tape.watch(o)
        loss = loss_fn(t, o)
    return {"loss": loss, "do": tape.gradient(loss, o)}


def softmax_ce(o: Tensor, y: Tensor) -> Out:
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum",
                                                    dtype=o.dtype)
    return loss_and_grad(ce, o, y)


def l2(o: Tensor, t: Tensor) -> Out:
    # MeanSquaredError averages over the K outputs of a row; 0.5 * sum needs K / 2
    mse = keras.losses.MeanSquaredError(reduction="sum", dtype=o.dtype)
    return loss_and_grad(lambda t, o: 0.5 * o.shape[1] * mse(t, o), o, t)


def log_loss(o: Tensor, t: Tensor) -> Out:
    bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum",
                                          dtype=o.dtype)
    return loss_and_grad(bce, o, t)


def mean_ce(o: Tensor, y: Tensor) -> Out:
    # reduction="sum_over_batch_size" (the default): the mean
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=o.dtype)
    return loss_and_grad(ce, o, y)


def weight_decay(W: keras.Variable, g: Tensor, lr: float, wd: float) -> Out:
    penalty_of = keras.regularizers.L2(wd / 2)  # Keras' L2(l) is l * sum(W^2)
    with tf.GradientTape() as tape:
        penalty = penalty_of(W)
    return {"penalty": penalty, "dW": tape.gradient(penalty, W)}


def conv2d(conv: keras.layers.Conv2D, x: Tensor, dz: Tensor, stride: int,
           padding: str) -> Out:
    # conv = keras.layers.Conv2D(F, k, strides=stride, padding="same")
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = conv(x)  # NHWC, HWIO: Keras' layout is the reference's
    wrt = [x, conv.kernel, conv.bias]
    dx, dW, db = tape.gradient(z, wrt, output_gradients=dz)
    return {"z": z, "dx": dx, "dW": dW, "db": db}


def maxpool2d(x: Tensor, dy: Tensor, k: int, stride: int) -> Out:
    pool = keras.layers.MaxPool2D(k, stride, padding="same", dtype=x.dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = pool(x)
    return {"y": y, "dx": tape.gradient(y, x, output_gradients=dy)}


def avgpool2d(x: Tensor, dy: Tensor, k: int, stride: int) -> Out:
    # "same": the mean over the real cells of each window
    pool = keras.layers.AveragePooling2D(k, stride, padding="same", dtype=x.dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = pool(x)
    return {"y": y, "dx": tape.gradient(y, x, output_gradients=dy)}


def global_avgpool(x: Tensor, dy: Tensor) -> Out:
    pool = keras.layers.GlobalAveragePooling2D(dtype=x.dtype)  # [N, H, W, C] -> [N, C]
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = pool(x)
    return {"y": y, "dx": tape.gradient(y, x, output_gradients=dy)}


def flatten_dense(layer: keras.layers.Dense, x: Tensor, dz: Tensor) -> Out:
    flatten = keras.layers.Flatten(dtype=x.dtype)  # NHWC order
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = layer(flatten(x))
    dx, dW = tape.gradient(z, [x, layer.kernel], output_gradients=dz)
    return {"z": z, "dx": dx, "dW": dW}


def dropout(h: Tensor, mask: Tensor, keep_prob: float, dy: Tensor) -> Out:
    # keras.layers.Dropout would draw its own mask
    with tf.GradientTape() as tape:
        tape.watch(h)
        y = h * mask / keep_prob
    return {"y": y, "dh": tape.gradient(y, h, output_gradients=dy)}


def batchnorm(bn: keras.layers.BatchNormalization, x: Tensor, dy: Tensor) -> Out:
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bn(x, training=True)  # batch statistics (training=False: the moving ones)
    wrt = [x, bn.gamma, bn.beta]
    dx, dgamma, dbeta = tape.gradient(y, wrt, output_gradients=dy)
    return {"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def layernorm(ln: keras.layers.LayerNormalization, x: Tensor, dy: Tensor) -> Out:
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ln(x)  # statistics over each row's last axis
    wrt = [x, ln.gamma, ln.beta]
    dx, dgamma, dbeta = tape.gradient(y, wrt, output_gradients=dy)
    return {"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def residual(fc: keras.layers.Dense, x: Tensor, dy: Tensor) -> Out:
    # fc = keras.layers.Dense(D, activation="tanh")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x + fc(x)  # the skip path plus f(x)
    wrt = [x, fc.kernel, fc.bias]
    dx, dW, db = tape.gradient(y, wrt, output_gradients=dy)
    return {"y": y, "dx": dx, "dW": dW, "db": db}


def gelu(z: Tensor, dh: Tensor) -> Out:
    return elementwise(lambda z: keras.activations.gelu(z, approximate=False), z, dh)


def gelu_tanh(z: Tensor, dh: Tensor) -> Out:
    return elementwise(lambda z: keras.activations.gelu(z, approximate=True), z, dh)


def train(optimizer: keras.optimizers.Optimizer, W: keras.Variable,
          grads: list[Tensor]) -> keras.Variable:
    """One step per gradient ``g``, each from a loss whose gradient is ``g``."""
    for g in grads:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(W * g)
        optimizer.apply_gradients([(tape.gradient(loss, W), W)])
    return W


def sgd(W: keras.Variable, grads: list[Tensor], lr: float) -> Out:
    return {"W (keras formula)": train(keras.optimizers.SGD(lr), W, grads)}


def momentum(W: keras.Variable, grads: list[Tensor], lr: float,
             mu: float) -> Out:
    optimizer = keras.optimizers.SGD(lr, momentum=mu)
    return {"W (keras formula)": train(optimizer, W, grads)}


def adam(W: keras.Variable, grads: list[Tensor], lr: float) -> Out:
    optimizer = keras.optimizers.Adam(lr, epsilon=1e-7)
    return {"W (keras formula)": train(optimizer, W, grads)}
