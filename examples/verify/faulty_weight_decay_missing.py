"""FAULTY (weight decay missing): the NumPy blog's TwoNet whose loss carries the L2 term but
whose update forgets its gradient, lambda * W.

`nnparity verify` names grad W2 and diagnoses "weight decay missing".
"""

import numpy as np

NNPARITY = {
    "spec": {"input_dim": 3, "layers": [6, 3], "activations": ["relu", "identity"],
             "loss": "ce", "reduction": "mean", "weight_decay": 1e-3},
    "labels": "index",
    "lr": "learning_rate",
    "model": "TwoNet(W1, b1, W2, b2)",
    "forward": "model.forward(x)",
    "z": ["model.z1", "model.z2"],
    "h": ["model.a1", "model.z2"],
    "backward": "model.backward(y)",
    "loss": "compute_loss(model.h, y, model)",
    "delta": ["model.delta1", "model.delta2"],
    "update": "model.update()",
    "grads_after": "update",
    "dW": ["model.dw", "model.dw2"],
    "db": ["model.db", "model.db2"],
    "W": ["model.w", "model.w2"],
    "b": ["model.b", "model.b2"],
}

learning_rate = 0.1
lambda_rate = 1e-3


class TwoNet:

    def __init__(self, w, b, w2, b2):
        self.w = w
        self.b = b
        self.w2 = w2
        self.b2 = b2

    def forward(self, inputs):
        self.N = inputs.shape[0]
        self.a0 = inputs
        self.z1 = inputs.dot(self.w) + self.b
        self.a1 = np.maximum(0, self.z1)
        self.z2 = self.a1.dot(self.w2) + self.b2
        expscores = np.exp(self.z2 - np.max(self.z2, axis=1, keepdims=True))
        self.h = expscores / np.sum(expscores, axis=1, keepdims=True)
        return self.h

    def backward(self, output):
        delta = self.h.copy()
        delta[range(self.N), output] -= 1
        delta /= self.N
        self.delta2 = delta
        self.dw2 = self.a1.T.dot(delta)
        self.db2 = np.sum(delta, axis=0, keepdims=True)

        da1 = delta.dot(self.w2.T)
        dz1 = da1
        dz1[self.z1 <= 0] = 0
        self.delta1 = dz1
        self.dw = self.a0.T.dot(dz1)
        self.db = np.sum(dz1, axis=0, keepdims=True)

    def update(self):
        # BUG: the L2 gradient lambda * W is never added to dw, dw2

        self.w2 = self.w2 - learning_rate * self.dw2
        self.b2 = self.b2 - learning_rate * self.db2

        self.w = self.w - learning_rate * self.dw
        self.b = self.b - learning_rate * self.db


def compute_loss(score, y, net):
    num = score.shape[0]
    data_loss = -1.0 / num * np.sum(np.log(score[range(num), y]))
    reg_loss = 0.5 * lambda_rate * (np.sum(net.w ** 2) + np.sum(net.w2 ** 2))
    return data_loss + reg_loss
