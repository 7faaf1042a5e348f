"""The mirror test (micrograd style): one tiny MLP written line by line four times, in NumPy by
hand, in torch with autograd, in TensorFlow with a GradientTape and in JAX with ``jax.grad``
(deltas as gradients of zero probes added to ``z``), all float64, all equal.

The network: ``x [3, 2] -> z1 = x W1 + b1 [3, 3] -> h1 = sigmoid(z1) -> z2 = h1 W2 + b2 [3, 2]``,
softmax cross-entropy summed over the batch against one-hot targets ``t``. Read the four
functions side by side: that is what "framework equivalence" means here.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import compare_tensor, tolerance

X = np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]])
T = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
W1 = np.array([[0.2, -0.4, 0.7], [-0.3, 0.1, 0.5]])
B1 = np.array([[0.1, -0.2, 0.05]])
W2 = np.array([[0.6, -0.1], [-0.8, 0.3], [0.25, 0.9]])
B2 = np.array([[0.0, 0.2]])


def numpy_by_hand() -> dict[str, np.ndarray]:
    z1 = X @ W1 + B1
    h1 = 1.0 / (1.0 + np.exp(-z1))
    z2 = h1 @ W2 + B2
    shifted = z2 - z2.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.sum(T * log_p)
    d2 = np.exp(log_p) - T                 # dL/dz2
    dW2 = h1.T @ d2
    db2 = d2.sum(axis=0, keepdims=True)
    d1 = (d2 @ W2.T) * h1 * (1.0 - h1)     # dL/dz1
    dW1 = X.T @ d1
    db1 = d1.sum(axis=0, keepdims=True)
    return {"z1": z1, "h1": h1, "z2": z2, "loss": np.array(loss), "d2": d2, "d1": d1,
            "dW2": dW2, "db2": db2, "dW1": dW1, "db1": db1}


def torch_autograd() -> dict[str, np.ndarray]:
    import torch

    x, t = torch.from_numpy(X), torch.from_numpy(T)
    w1, b1, w2, b2 = (torch.tensor(a, requires_grad=True) for a in (W1, B1, W2, B2))
    z1 = x @ w1 + b1
    h1 = torch.sigmoid(z1)
    z2 = h1 @ w2 + b2
    log_p = torch.log_softmax(z2, dim=1)
    loss = -torch.sum(t * log_p)
    z1.retain_grad()
    z2.retain_grad()
    loss.backward()
    out = {"z1": z1, "h1": h1, "z2": z2, "loss": loss, "d2": z2.grad, "d1": z1.grad,
           "dW2": w2.grad, "db2": b2.grad, "dW1": w1.grad, "db1": b1.grad}
    return {k: v.detach().numpy() for k, v in out.items()}


def tensorflow_tape() -> dict[str, np.ndarray]:
    import tensorflow as tf

    x, t = tf.constant(X), tf.constant(T)
    w1, b1, w2, b2 = (tf.Variable(a) for a in (W1, B1, W2, B2))
    with tf.GradientTape() as tape:
        z1 = x @ w1 + b1
        h1 = tf.sigmoid(z1)
        z2 = h1 @ w2 + b2
        log_p = tf.nn.log_softmax(z2, axis=1)
        loss = -tf.reduce_sum(t * log_p)
    d2, d1, dW2, db2, dW1, db1 = tape.gradient(loss, [z2, z1, w2, b2, w1, b1])
    out = {"z1": z1, "h1": h1, "z2": z2, "loss": loss, "d2": d2, "d1": d1,
           "dW2": dW2, "db2": db2, "dW1": dW1, "db1": db1}
    return {k: v.numpy() for k, v in out.items()}


def jax_grad() -> dict[str, np.ndarray]:
    import jax
    import jax.numpy as jnp

    def forward(params, probes):
        w1, b1, w2, b2 = params
        z1 = X @ w1 + b1 + probes[0]
        h1 = jax.nn.sigmoid(z1)
        z2 = h1 @ w2 + b2 + probes[1]
        log_p = jax.nn.log_softmax(z2, axis=1)
        loss = -jnp.sum(T * log_p)
        return loss, (z1, h1, z2)

    with jax.enable_x64(True):
        params = tuple(jnp.asarray(a) for a in (W1, B1, W2, B2))
        probes = (jnp.zeros((3, 3)), jnp.zeros((3, 2)))
        (loss, (z1, h1, z2)), (grads, (d1, d2)) = jax.value_and_grad(
            forward, argnums=(0, 1), has_aux=True)(params, probes)
        dW1, db1, dW2, db2 = grads
        out = {"z1": z1, "h1": h1, "z2": z2, "loss": loss, "d2": d2, "d1": d1,
               "dW2": dW2, "db2": db2, "dW1": dW1, "db1": db1}
        return {k: np.asarray(v) for k, v in out.items()}


MIRRORS = {
    "torch": pytest.param(torch_autograd, marks=pytest.mark.torch, id="torch"),
    "tensorflow": pytest.param(tensorflow_tape, marks=pytest.mark.tensorflow, id="tensorflow"),
    "jax": pytest.param(jax_grad, marks=pytest.mark.jax, id="jax"),
}


@pytest.mark.parametrize("mirror", MIRRORS.values())
def test_mirror_equals_numpy_by_hand(mirror) -> None:
    want, got = numpy_by_hand(), mirror()
    assert list(got) == list(want)
    for name, value in want.items():
        c = compare_tensor("mirror", name, got[name], value, tolerance("float64"))
        print(f"{name:>5}: max abs {c.max_abs:.1e}, max rel {c.max_rel:.1e}")
        assert c.passed, f"{name}: {c.note or f'max rel {c.max_rel:.1e}'}"
