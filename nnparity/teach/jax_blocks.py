"""JAX as a user writes it, one function per building block of the teaching page.

What the page shows in the JAX column: pure functions of ``jax.numpy`` / ``jax.nn`` /
``jax.lax`` / ``optax`` under ``jax.jit``, the backward pass by ``jax.vjp`` from the gradient the
layer above sends (or ``jax.value_and_grad`` for a scalar loss; ``jax.grad`` and an optax update
for an optimiser's steps). JAX's layout is the reference's (NHWC, HWIO). The page runs these very
functions through :mod:`.jax_feed` (inside ``jax.enable_x64``, so float64 stays float64).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

Array = jax.Array  # inputs in the canonical layout (NumPy arrays are accepted too)
Out = dict[str, jax.Array]  # outputs by the reference's names



@jax.jit
def dense(x: Array, W: Array, b: Array, dz: Array) -> Out:
    z, vjp = jax.vjp(lambda x, W, b: x @ W + b, x, W, b)
    dx, dW, db = vjp(dz)
    return {"z": z, "dx": dx, "dW": dW, "db": db}


@jax.jit
def sigmoid(z: Array, dh: Array) -> Out:
    h, vjp = jax.vjp(jax.nn.sigmoid, z)
    return {"h": h, "dz": vjp(dh)[0]}


@jax.jit
def tanh(z: Array, dh: Array) -> Out:
    h, vjp = jax.vjp(jnp.tanh, z)
    return {"h": h, "dz": vjp(dh)[0]}


@jax.jit
def relu(z: Array, dh: Array) -> Out:
    h, vjp = jax.vjp(jax.nn.relu, z)  # relu'(0) = 0
    return {"h": h, "dz": vjp(dh)[0]}


@jax.jit
def relu3(z: Array, dh: Array) -> Out:
    h, vjp = jax.vjp(lambda z: jax.nn.relu(z) ** 3, z)
    return {"h": h, "dz": vjp(dh)[0]}


@jax.jit
def identity(z: Array, dh: Array) -> Out:
    h, vjp = jax.vjp(lambda z: z, z)
    return {"h": h, "dz": vjp(dh)[0]}


@jax.jit
def prelu(z: Array, a: Array, dh: Array) -> Out:
    h, vjp = jax.vjp(lambda z, a: jnp.where(z > 0, z, a * z), z, a)
    dz, da = vjp(dh)
    return {"h": h, "dz": dz, "da": da}


@jax.jit
def softmax_ce(o: Array, y: Array) -> Out:
    loss, do = jax.value_and_grad(
        lambda o: optax.softmax_cross_entropy_with_integer_labels(o, y).sum())(o)
    return {"loss": loss, "do": do}


@jax.jit
def l2(o: Array, t: Array) -> Out:
    # optax.l2_loss is 0.5 (o - t)^2
    loss, do = jax.value_and_grad(lambda o: optax.l2_loss(o, t).sum())(o)
    return {"loss": loss, "do": do}


@jax.jit
def log_loss(o: Array, t: Array) -> Out:
    loss, do = jax.value_and_grad(
        lambda o: optax.sigmoid_binary_cross_entropy(o, t).sum())(o)
    return {"loss": loss, "do": do}


@jax.jit
def mean_ce(o: Array, y: Array) -> Out:
    loss, do = jax.value_and_grad(
        lambda o: optax.softmax_cross_entropy_with_integer_labels(o, y).mean())(o)
    return {"loss": loss, "do": do}


@jax.jit
def weight_decay(W: Array, g: Array, lr: float, wd: float) -> Out:
    penalty, dW = jax.value_and_grad(lambda W: 0.5 * wd * jnp.sum(W**2))(W)
    return {"penalty": penalty, "dW": dW}


@partial(jax.jit, static_argnames=("stride", "padding"))
def conv2d(x: Array, W: Array, b: Array, dz: Array, stride: int,
           padding: str) -> Out:
    def conv(x, W, b):  # lax's SAME is TensorFlow's: the odd pixel bottom/right
        layout = ("NHWC", "HWIO", "NHWC")
        return jax.lax.conv_general_dilated(
            x, W, (stride, stride), padding, dimension_numbers=layout) + b
    z, vjp = jax.vjp(conv, x, W, b)
    dx, dW, db = vjp(dz)
    return {"z": z, "dx": dx, "dW": dW, "db": db}


@partial(jax.jit, static_argnames=("k", "stride"))
def maxpool2d(x: Array, dy: Array, k: int, stride: int) -> Out:
    def pool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, k, k, 1),
                                     (1, stride, stride, 1), "SAME")
    y, vjp = jax.vjp(pool, x)
    return {"y": y, "dx": vjp(dy)[0]}


@partial(jax.jit, static_argnames=("k", "stride"))
def avgpool2d(x: Array, dy: Array, k: int, stride: int) -> Out:
    def window_sum(a):
        return jax.lax.reduce_window(a, 0.0, jax.lax.add, (1, k, k, 1),
                                     (1, stride, stride, 1), "SAME")

    def pool(x):  # divided by each window's real cells, as Keras' SAME
        return window_sum(x) / window_sum(jnp.ones_like(x))
    y, vjp = jax.vjp(pool, x)
    return {"y": y, "dx": vjp(dy)[0]}


@jax.jit
def global_avgpool(x: Array, dy: Array) -> Out:
    y, vjp = jax.vjp(lambda x: jnp.mean(x, axis=(1, 2)), x)  # over H and W
    return {"y": y, "dx": vjp(dy)[0]}


@jax.jit
def flatten_dense(x: Array, W: Array, b: Array, dz: Array) -> Out:
    def layer(x, W):
        return x.reshape(x.shape[0], -1) @ W + b  # NHWC flatten order
    z, vjp = jax.vjp(layer, x, W)
    dx, dW = vjp(dz)
    return {"z": z, "dx": dx, "dW": dW}


@jax.jit
def dropout(h: Array, mask: Array, keep_prob: float, dy: Array) -> Out:
    # an explicit mask: no PRNG key
    y, vjp = jax.vjp(lambda h: h * mask / keep_prob, h)
    return {"y": y, "dh": vjp(dy)[0]}


@jax.jit
def batchnorm(x: Array, gamma: Array, beta: Array, dy: Array, epsilon: float) -> Out:
    def bn(x, gamma, beta):  # a training pass: the batch's statistics
        mu, var = x.mean(axis=0), x.var(axis=0)  # biased variance
        return gamma * (x - mu) / jnp.sqrt(var + epsilon) + beta
    y, vjp = jax.vjp(bn, x, gamma, beta)
    dx, dgamma, dbeta = vjp(dy)
    return {"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


@jax.jit
def layernorm(x: Array, gamma: Array, beta: Array, dy: Array, epsilon: float) -> Out:
    def ln(x, gamma, beta):  # each row's statistics
        mu = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return gamma * (x - mu) / jnp.sqrt(var + epsilon) + beta
    y, vjp = jax.vjp(ln, x, gamma, beta)
    dx, dgamma, dbeta = vjp(dy)
    return {"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


@jax.jit
def residual(x: Array, W: Array, b: Array, dy: Array) -> Out:
    def block(x, W, b):
        return x + jnp.tanh(x @ W + b)  # the skip path plus f(x)
    y, vjp = jax.vjp(block, x, W, b)
    dx, dW, db = vjp(dy)
    return {"y": y, "dx": dx, "dW": dW, "db": db}


@jax.jit
def gelu(z: Array, dh: Array) -> Out:
    h, vjp = jax.vjp(lambda z: jax.nn.gelu(z, approximate=False), z)  # default: tanh
    return {"h": h, "dz": vjp(dh)[0]}


@jax.jit
def gelu_tanh(z: Array, dh: Array) -> Out:
    h, vjp = jax.vjp(lambda z: jax.nn.gelu(z, approximate=True), z)
    return {"h": h, "dz": vjp(dh)[0]}


def linear_loss(W: jax.Array, g: jax.Array) -> jax.Array:
    """A loss whose gradient with respect to ``W`` is ``g``."""
    return jnp.sum(W * g)


def train(optimizer: optax.GradientTransformation, W: jax.Array,
          grads: list[jax.Array]) -> jax.Array:
    """One step per gradient ``g``: ``jax.grad`` of a loss whose gradient is ``g``, then optax."""
    state = optimizer.init(W)
    for g in grads:
        dW = jax.grad(linear_loss)(W, g)
        updates, state = optimizer.update(dW, state, W)
        W = optax.apply_updates(W, updates)
    return W


@jax.jit
def sgd(W: Array, grads: list[Array], lr: float) -> Out:
    return {"W (torch formula)": train(optax.sgd(lr), W, grads)}


@jax.jit
def momentum(W: Array, grads: list[Array], lr: float, mu: float) -> Out:
    return {"W (torch formula)": train(optax.sgd(lr, momentum=mu), W, grads)}


@jax.jit
def adam(W: Array, grads: list[Array], lr: float) -> Out:
    return {"W (torch formula)": train(optax.adam(lr, eps=1e-8), W, grads)}
