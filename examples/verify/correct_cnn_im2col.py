"""A correct small CNN written with im2col, as a student writes it: NHWC images, HWIO kernels
(the reference's own layouts), one matrix product per convolution, col2im for the input
gradient, max-pool by reshaping with a mask of the maxima. Check it with

    nnparity verify examples/verify/correct_cnn_im2col.py

The network is the one of ``correct_cnn_loops.py``: 5x5x2 -> conv 3x3x3 SAME relu -> conv
3x3x4 SAME relu -> max-pool 2x2 SAME -> flatten (36, NHWC order) -> dense 3 -> softmax
cross-entropy, mean over the batch.
"""

import numpy as np

NNPARITY = {
    "spec": {"input_shape": [5, 5, 2], "loss": "ce", "reduction": "mean",
             "net": [{"kind": "conv2d", "filters": 3, "kernel": 3, "padding": "same"},
                     {"kind": "relu"},
                     {"kind": "conv2d", "filters": 4, "kernel": 3, "padding": "same"},
                     {"kind": "relu"},
                     {"kind": "maxpool", "size": 2, "padding": "same"},
                     {"kind": "flatten"},
                     {"kind": "dense", "units": 3}]},
    "labels": "index",
    "model": "Net([W1, W2, W3], [b1, b2, b3])",
    "forward": "model.forward(x)",
    "z": "model.z[{i}]",
    "h": [None, None, "out"],
    "backward": "model.backward(y)",
    "loss": "model.loss",
    "delta": "model.delta[{i}]",
    "dW": "back[0][{i}]",
    "db": "back[1][{i}]",
    "update": "model.step(back, 0.1)",
    "W": "model.W[{i}]",
    "b": "model.b[{i}]",
}


def im2col(x, k, pad):
    """x [N, H, W, C] -> cols [N * H * W, k * k * C] (stride 1, SAME for odd k)."""
    n, height, width, c = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    cols = np.empty((n, height, width, k, k, c))
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = xp[:, i:i + height, j:j + width, :]
    return cols.reshape(n * height * width, k * k * c)


def col2im(dcols, shape, k, pad):
    """Adjoint of im2col: add every column entry back to the input position it came from."""
    n, height, width, c = shape
    dcols = dcols.reshape(n, height, width, k, k, c)
    dxp = np.zeros((n, height + 2 * pad, width + 2 * pad, c))
    for i in range(k):
        for j in range(k):
            dxp[:, i:i + height, j:j + width, :] += dcols[:, :, :, i, j, :]
    return dxp[:, pad:pad + height, pad:pad + width, :]


class Conv:
    def forward(self, x, W, b):
        self.x, self.k = x, W.shape[0]
        self.cols = im2col(x, self.k, self.k // 2)
        n, height, width, _ = x.shape
        return (self.cols @ W.reshape(-1, W.shape[3]) + b).reshape(n, height, width, -1)

    def backward(self, d, W):
        d2 = d.reshape(-1, d.shape[3])
        dW = (self.cols.T @ d2).reshape(W.shape)
        db = d2.sum(axis=0)
        dx = col2im(d2 @ W.reshape(-1, W.shape[3]).T, self.x.shape, self.k, self.k // 2)
        return dx, dW, db


class Pool:
    """2x2 max-pool, stride 2, SAME (-inf padding at the bottom/right)."""

    def forward(self, a):
        n, height, width, c = a.shape
        ho, wo = -(-height // 2), -(-width // 2)
        self.shape = a.shape
        padded = np.full((n, 2 * ho, 2 * wo, c), -np.inf)
        padded[:, :height, :width, :] = a
        windows = padded.reshape(n, ho, 2, wo, 2, c)
        out = windows.max(axis=(2, 4))
        self.mask = windows == out[:, :, None, :, None, :]
        return out

    def backward(self, dout):
        n, height, width, c = self.shape
        dwin = self.mask * dout[:, :, None, :, None, :]
        return dwin.reshape(n, dwin.shape[1] * 2, dwin.shape[3] * 2, c)[:, :height, :width, :]


class Net:
    def __init__(self, W, b):
        self.W, self.b = W, b
        self.convs, self.pool = [Conv(), Conv()], Pool()

    def forward(self, x):
        self.z, h = [], x
        for conv, W, b in zip(self.convs, self.W[:2], self.b[:2], strict=True):
            self.z.append(conv.forward(h, W, b))
            h = np.maximum(self.z[-1], 0)
        self.pooled = self.pool.forward(h)
        self.flat = self.pooled.reshape(len(x), -1)
        self.z.append(self.flat @ self.W[2] + self.b[2])
        return self.z[-1]

    def backward(self, labels):
        o = self.z[-1]
        n = len(labels)
        e = np.exp(o - o.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        self.loss = -np.mean(np.log(probs[np.arange(n), labels]))
        d = probs.copy()
        d[np.arange(n), labels] -= 1
        d /= n
        self.delta = [None, None, d]
        dW, db = [None] * 3, [None] * 3
        dW[2], db[2] = self.flat.T @ d, d.sum(axis=0)
        dh = self.pool.backward((d @ self.W[2].T).reshape(self.pooled.shape))
        for i in (1, 0):
            self.delta[i] = dh * (self.z[i] > 0)
            dh, dW[i], db[i] = self.convs[i].backward(self.delta[i], self.W[i])
        return dW, db

    def step(self, grads, lr):
        for i in range(3):
            self.W[i] -= lr * grads[0][i]
            self.b[i] -= lr * grads[1][i]
