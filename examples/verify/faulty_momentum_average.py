"""FAULTY (momentum as an average): the 3-layer momentum net with v = mu v + (1 - mu) g, the
moving-average form, where the declared rule (PyTorch's) is v = mu v + g.

`nnparity verify` names update step1.W1 and diagnoses "momentum as a moving average".
"""

import numpy as np

NNPARITY = {
    "spec": {"input_dim": 4, "layers": [6, 5, 3], "activations": ["relu", "relu", "identity"],
             "loss": "ce", "reduction": "mean"},
    "optimizer": {"name": "momentum", "lr": 0.1, "momentum": 0.9},
    "model": "Net([W1, W2, W3], [b1, b2, b3])",
    "forward": "model.forward(x)",
    "z": "model.zs[{i}]",
    "backward": "model.backward(y)",
    "loss": "model.loss",
    "delta": "model.deltas[{i}]",
    "dW": "model.dW[{i}]",
    "db": "model.db[{i}]",
    "update": "model.step()",
    "W": "model.W[{i}]",
    "b": "model.b[{i}]",
}


class Net:
    def __init__(self, W, b, lr=0.1, mu=0.9):
        self.W, self.b, self.lr, self.mu = list(W), list(b), lr, mu
        self.vW = [np.zeros_like(w) for w in W]
        self.vb = [np.zeros_like(v) for v in b]

    def forward(self, x):
        self.hs, self.zs = [x], []
        h = x
        for i, (w, b) in enumerate(zip(self.W, self.b, strict=True)):
            z = h @ w + b
            self.zs.append(z)
            h = np.maximum(z, 0) if i < len(self.W) - 1 else z
            self.hs.append(h)
        return h

    def backward(self, y):
        o = self.hs[-1]
        e = np.exp(o - o.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        n = len(y)
        self.loss = -np.sum(y * np.log(p)) / n
        delta = (p - y) / n
        self.deltas = [None] * len(self.W)
        self.dW = [None] * len(self.W)
        self.db = [None] * len(self.W)
        for i in reversed(range(len(self.W))):
            if i < len(self.W) - 1:
                delta = (delta @ self.W[i + 1].T) * (self.zs[i] > 0)
            self.deltas[i] = delta
            self.dW[i] = self.hs[i].T @ delta
            self.db[i] = delta.sum(axis=0, keepdims=True)

    def step(self):
        for i in range(len(self.W)):
            self.vW[i] = self.mu * self.vW[i] + (1 - self.mu) * self.dW[i]     # BUG: averaged
            self.vb[i] = self.mu * self.vb[i] + (1 - self.mu) * self.db[i]
            self.W[i] = self.W[i] - self.lr * self.vW[i]
            self.b[i] = self.b[i] - self.lr * self.vb[i]
