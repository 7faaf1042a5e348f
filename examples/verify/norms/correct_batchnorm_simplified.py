"""The same network as correct_batchnorm.py in the class style, with the simplified one-line
batchnorm backward (CS231n's batchnorm_backward_alt) and a running variance kept with the
unbiased estimator (as torch does; declared in the spec: "variance": "unbiased").
"""

import numpy as np

NNPARITY = {
    "spec": {"input_shape": [4], "loss": "ce", "reduction": "mean",
             "net": [{"kind": "dense", "units": 6}, {"kind": "tanh"},
                     {"kind": "batchnorm", "momentum": 0.9, "epsilon": 1e-5,
                      "variance": "unbiased"},
                     {"kind": "dense", "units": 3}]},
    "bias_shape": "flat",
    "model": "Net(W1, b1, W2, b2)",
    "gamma": ["model.gamma"],             # written before the first step, read back after it
    "beta": ["model.beta"],
    "running_mean": ["model.running_mean"],
    "running_var": ["model.running_var"],
    "forward": "model.forward(x)",
    "z": ["model.z1", "model.z2"],
    "norm_out": ["model.bn"],
    "backward": "model.backward(y)",
    "loss": "model.loss",
    "delta": ["model.d1", "model.d2"],
    "dW": ["model.dW1", "model.dW2"],
    "db": ["model.db1", "model.db2"],
    "dgamma": ["model.dgamma"],
    "dbeta": ["model.dbeta"],
    "update": "model.step(0.1)",
    "W": ["model.W1", "model.W2"],
    "b": ["model.b1", "model.b2"],
}


class Net:
    def __init__(self, W1, b1, W2, b2, momentum=0.9, eps=1e-5):
        self.W1, self.b1, self.W2, self.b2 = W1, b1, W2, b2
        d = W1.shape[1]
        self.gamma, self.beta = np.ones(d), np.zeros(d)
        self.running_mean, self.running_var = np.zeros(d), np.ones(d)
        self.momentum, self.eps = momentum, eps

    def forward(self, x):
        self.x = x
        self.z1 = x @ self.W1 + self.b1
        self.h1 = np.tanh(self.z1)
        mu, var = self.h1.mean(axis=0), self.h1.var(axis=0)
        self.ivar = 1 / np.sqrt(var + self.eps)
        self.xhat = (self.h1 - mu) * self.ivar
        self.bn = self.gamma * self.xhat + self.beta
        n = len(x)
        m = self.momentum
        self.running_mean = m * self.running_mean + (1 - m) * mu
        self.running_var = m * self.running_var + (1 - m) * var * n / (n - 1)
        self.z2 = self.bn @ self.W2 + self.b2
        return self.z2

    def backward(self, y):
        n = len(y)
        e = np.exp(self.z2 - self.z2.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        self.loss = -np.sum(y * np.log(p)) / n
        self.d2 = (p - y) / n
        self.dW2, self.db2 = self.bn.T @ self.d2, self.d2.sum(axis=0)
        dout = self.d2 @ self.W2.T
        self.dbeta = dout.sum(axis=0)
        self.dgamma = (dout * self.xhat).sum(axis=0)
        dh1 = self.gamma * self.ivar / n * (n * dout - self.dbeta - self.xhat * self.dgamma)
        self.d1 = dh1 * (1 - self.h1 ** 2)
        self.dW1, self.db1 = self.x.T @ self.d1, self.d1.sum(axis=0)

    def step(self, lr):
        self.W1 = self.W1 - lr * self.dW1
        self.b1 = self.b1 - lr * self.db1
        self.W2 = self.W2 - lr * self.dW2
        self.b2 = self.b2 - lr * self.db2
        self.gamma = self.gamma - lr * self.dgamma
        self.beta = self.beta - lr * self.dbeta
