"""A correct 3-layer relu net trained with Adam (the paper's and PyTorch's formulation), in a
function style over lists: the optimiser state lives in a module-level dict.

With "optimizer" declared, verify runs 3 steps on the same batch: the updated W and b of each
step are fed back as W1, b1, ... (and the lists W, b) for the next one. Check it with

    nnparity verify examples/verify/correct_adam.py
"""

import numpy as np

NNPARITY = {
    "spec": {"input_dim": 4, "layers": [6, 5, 3], "activations": ["relu", "relu", "identity"],
             "loss": "ce", "reduction": "mean"},
    "optimizer": {"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "forward": "forward(x, W, b)",
    "z": "out[0][{i}]",
    "backward": "backward(x, y, W, out)",
    "loss": "back[0]",
    "delta": "back[1][{i}]",
    "dW": "back[2][{i}]",
    "db": "back[3][{i}]",
    "update": "adam_update(W, b, back[2], back[3])",
    "W_new": "upd[0][{i}]",
    "b_new": "upd[1][{i}]",
}

LR, BETA1, BETA2, EPS = 0.01, 0.9, 0.999, 1e-8
state = {"t": 0}


def forward(x, W, b):
    zs, hs = [], [x]
    h = x
    for i in range(len(W)):
        z = h @ W[i] + b[i]
        h = np.maximum(z, 0) if i < len(W) - 1 else z
        zs.append(z)
        hs.append(h)
    return zs, hs


def backward(x, y, W, out):
    zs, hs = out
    o = hs[-1]
    e = np.exp(o - o.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = -np.sum(y * np.log(p)) / n
    deltas, dW, db = [None] * len(W), [None] * len(W), [None] * len(W)
    delta = (p - y) / n
    for i in reversed(range(len(W))):
        if i < len(W) - 1:
            delta = (delta @ W[i + 1].T) * (zs[i] > 0)
        deltas[i] = delta
        dW[i] = hs[i].T @ delta
        db[i] = delta.sum(axis=0, keepdims=True)
    return loss, deltas, dW, db


def adam_update(W, b, dW, db):
    state["t"] += 1
    t = state["t"]
    params, grads = W + b, dW + db
    new = []
    for k, (p, g) in enumerate(zip(params, grads, strict=True)):
        m = BETA1 * state.get(("m", k), 0.0) + (1 - BETA1) * g
        v = BETA2 * state.get(("v", k), 0.0) + (1 - BETA2) * g * g
        state[("m", k)], state[("v", k)] = m, v
        m_hat = m / (1 - BETA1**t)
        v_hat = v / (1 - BETA2**t)
        new.append(p - LR * m_hat / (np.sqrt(v_hat) + EPS))
    return new[:len(W)], new[len(W):]
