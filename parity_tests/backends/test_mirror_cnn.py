"""The CNN mirror test (micrograd style): one conv + max-pool + dense computation written line by
line four times, in NumPy by hand, in torch with autograd, in TensorFlow with a GradientTape and
in JAX with ``jax.grad`` (``lax`` conv and ``reduce_window`` max-pool), all float64, all equal.

The network, canonical (TensorFlow) layouts::

    x [2, 5, 4, 2] NHWC -> z1 = conv3x3(x, K [3, 3, 2, 3] HWIO, SAME, stride 1) + b1  [2, 5, 4, 3]
    -> h1 = relu(z1) -> p = maxpool 2x2 stride 2 VALID [2, 2, 2, 3] (the fifth row is dropped)
    -> f = flatten(p) in NHWC order [2, 12] -> z2 = f W2 + b2 [2, 3]
    -> softmax cross-entropy summed over the batch against one-hot targets t.

torch works on NCHW with OIHW kernels: read how its lines convert at the edges (the input and
kernel permutes, and the NHWC flatten that the canonical ``W2`` rows expect).
"""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import SAME_OPS_FLOAT64, compare_tensor, tolerance

RNG = np.random.default_rng(2)
X = RNG.standard_normal((2, 5, 4, 2))
K = 0.5 * RNG.standard_normal((3, 3, 2, 3))
B1 = np.array([0.1, -0.2, 0.05])
W2 = 0.3 * RNG.standard_normal((12, 3))
B2 = np.array([0.0, 0.2, -0.1])
T = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def numpy_by_hand() -> dict[str, np.ndarray]:
    xp = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)))               # SAME, 3x3, stride 1
    z1 = B1 + sum(xp[:, p:p + 5, q:q + 4, :] @ K[p, q] for p in range(3) for q in range(3))
    h1 = np.maximum(z1, 0.0)
    win = h1[:, :4].reshape(2, 2, 2, 2, 2, 3)                       # [n, i, p, j, q, c]
    pool = win.max(axis=(2, 4))                                     # [2, 2, 2, 3]
    f = pool.reshape(2, -1)                                         # NHWC flatten
    z2 = f @ W2 + B2
    shifted = z2 - z2.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.sum(T * log_p)
    d2 = np.exp(log_p) - T                                          # dL/dz2
    dW2 = f.T @ d2
    db2 = d2.sum(axis=0)
    dpool = (d2 @ W2.T).reshape(pool.shape)
    is_max = win == pool[:, :, None, :, None, :]                    # no ties where relu' = 1
    dh1 = np.zeros_like(h1)
    dh1[:, :4] = (is_max * dpool[:, :, None, :, None, :]).reshape(2, 4, 4, 3)
    d1 = dh1 * (z1 > 0)                                             # dL/dz1, relu'(0) = 0
    dK = np.stack([np.stack([xp[:, p:p + 5, q:q + 4, :].reshape(-1, 2).T @ d1.reshape(-1, 3)
                             for q in range(3)]) for p in range(3)])
    db1 = d1.sum(axis=(0, 1, 2))
    return {"z1": z1, "h1": h1, "pool": pool, "z2": z2, "loss": np.array(loss), "d2": d2,
            "d1": d1, "dW2": dW2, "db2": db2, "dK": dK, "db1": db1}


def torch_autograd() -> dict[str, np.ndarray]:
    import torch
    import torch.nn.functional as F

    x, t = torch.from_numpy(X).permute(0, 3, 1, 2), torch.from_numpy(T)   # NHWC -> NCHW
    k = torch.tensor(K.transpose(3, 2, 0, 1), requires_grad=True)        # HWIO -> OIHW
    b1, w2, b2 = (torch.tensor(a, requires_grad=True) for a in (B1, W2, B2))
    z1 = F.conv2d(x, k, b1, stride=1, padding=1)    # symmetric: odd kernel, stride 1
    h1 = torch.relu(z1)
    pool = F.max_pool2d(h1, 2, 2)
    f = pool.permute(0, 2, 3, 1).reshape(2, -1)     # NHWC flatten order, as W2's rows are
    z2 = f @ w2 + b2
    loss = -torch.sum(t * torch.log_softmax(z2, dim=1))
    z1.retain_grad()
    z2.retain_grad()
    loss.backward()
    nhwc = (0, 2, 3, 1)
    out = {"z1": z1.permute(nhwc), "h1": h1.permute(nhwc), "pool": pool.permute(nhwc),
           "z2": z2, "loss": loss, "d2": z2.grad, "d1": z1.grad.permute(nhwc),
           "dW2": w2.grad, "db2": b2.grad, "dK": k.grad.permute(2, 3, 1, 0), "db1": b1.grad}
    return {name: v.detach().contiguous().numpy() for name, v in out.items()}


def tensorflow_tape() -> dict[str, np.ndarray]:
    import tensorflow as tf

    x, t = tf.constant(X), tf.constant(T)
    k, b1, w2, b2 = (tf.Variable(a) for a in (K, B1, W2, B2))
    with tf.GradientTape() as tape:
        z1 = tf.nn.conv2d(x, k, strides=1, padding="SAME") + b1
        h1 = tf.nn.relu(z1)
        pool = tf.nn.max_pool2d(h1, 2, 2, "VALID")
        f = tf.reshape(pool, [2, -1])
        z2 = f @ w2 + b2
        loss = -tf.reduce_sum(t * tf.nn.log_softmax(z2, axis=1))
    d2, d1, dW2, db2, dK, db1 = tape.gradient(loss, [z2, z1, w2, b2, k, b1])
    out = {"z1": z1, "h1": h1, "pool": pool, "z2": z2, "loss": loss, "d2": d2, "d1": d1,
           "dW2": dW2, "db2": db2, "dK": dK, "db1": db1}
    return {name: v.numpy() for name, v in out.items()}


def jax_grad() -> dict[str, np.ndarray]:
    import jax
    import jax.numpy as jnp
    from jax import lax

    def forward(params, probes):
        k, b1, w2, b2 = params
        z1 = lax.conv_general_dilated(X, k, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC")) + b1 + probes[0]
        h1 = jax.nn.relu(z1)
        pool = lax.reduce_window(h1, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        f = pool.reshape(2, -1)
        z2 = f @ w2 + b2 + probes[1]
        loss = -jnp.sum(T * jax.nn.log_softmax(z2, axis=1))
        return loss, (z1, h1, pool, z2)

    with jax.enable_x64(True):
        params = tuple(jnp.asarray(a) for a in (K, B1, W2, B2))
        probes = (jnp.zeros((2, 5, 4, 3)), jnp.zeros((2, 3)))
        (loss, (z1, h1, pool, z2)), (grads, (d1, d2)) = jax.value_and_grad(
            forward, argnums=(0, 1), has_aux=True)(params, probes)
        dK, db1, dW2, db2 = grads
        out = {"z1": z1, "h1": h1, "pool": pool, "z2": z2, "loss": loss, "d2": d2, "d1": d1,
               "dW2": dW2, "db2": db2, "dK": dK, "db1": db1}
        return {name: np.asarray(v) for name, v in out.items()}


MIRRORS = {
    "torch": pytest.param(torch_autograd, marks=pytest.mark.torch, id="torch"),
    "tensorflow": pytest.param(tensorflow_tape, marks=pytest.mark.tensorflow, id="tensorflow"),
    "jax": pytest.param(jax_grad, marks=pytest.mark.jax, id="jax"),
}


def test_numpy_by_hand_is_the_reference() -> None:
    """The hand-written lines equal the reference's modules (so the mirrors test them too)."""
    from nnparity.reference.conv import conv2d
    from nnparity.reference.pool import maxpool2d

    want = numpy_by_hand()
    z1 = conv2d(X, K, B1, 1, "SAME")
    np.testing.assert_allclose(want["z1"], z1, rtol=0,
                               atol=SAME_OPS_FLOAT64 * np.abs(want["z1"]).max())
    np.testing.assert_array_equal(want["pool"], maxpool2d(want["h1"], 2, 2, "VALID"))
    assert (want["d1"] != 0).any() and (want["h1"] == 0).any()  # relu both ways


@pytest.mark.parametrize("mirror", MIRRORS.values())
def test_mirror_equals_numpy_by_hand(mirror) -> None:
    want, got = numpy_by_hand(), mirror()
    assert list(got) == list(want)
    for name, value in want.items():
        c = compare_tensor("mirror", name, got[name], value, tolerance("float64", ("conv",)))
        print(f"{name:>5}: max abs {c.max_abs:.1e}, max rel {c.max_rel:.1e}")
        assert c.passed, f"{name}: {c.note or f'max rel {c.max_rel:.1e}'}"
