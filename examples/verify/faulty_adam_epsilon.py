"""FAULTY (Adam's epsilon): the function-style Adam net with the DLFS book's update,
`lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`, `p -= lr_t * m / (sqrt(v) + eps)`, where the
declared rule (PyTorch's) adds epsilon after the bias correction: sqrt(v_hat) + eps.

The two differ by about eps / sqrt(v): `nnparity verify` names update step1.W1 and diagnoses
"Adam's epsilon in the wrong place".
"""

import numpy as np

NNPARITY = {
    "spec": {"input_dim": 4, "layers": [6, 5, 3], "activations": ["relu", "relu", "identity"],
             "loss": "ce", "reduction": "mean"},
    "optimizer": {"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7},
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

LR, BETA1, BETA2, EPS = 0.01, 0.9, 0.999, 1e-7
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
        lr_t = LR * np.sqrt(1.0 - BETA2**t) / (1.0 - BETA1**t)
        new.append(p - lr_t * m / (np.sqrt(v) + EPS))     # BUG: eps before the correction
    return new[:len(W)], new[len(W):]
