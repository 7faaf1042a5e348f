"""A correct small CNN written with loops, as a student writes it: NCHW images, OIHW kernels,
``x.reshape(N, -1)`` (an NCHW flatten), the backward's input gradient as the full correlation of
the delta with the kernel rotated by 180 degrees. Check it with

    nnparity verify examples/verify/correct_cnn_loops.py

The network (``net``, the spec's layer list): 5x5x2 -> conv 3x3x3 SAME relu -> conv 3x3x4 SAME
relu -> max-pool 2x2 SAME (5 -> 3: TensorFlow's extra -inf row and column at the bottom/right)
-> flatten (36) -> dense 3 -> softmax cross-entropy, mean over the batch.
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
    "maps": "NCHW",      # x [N, C, H, W]; z and delta of the conv layers too
    "kernel": "OIHW",    # W1 [F, C, kh, kw]
    "bias_shape": "flat",
    "model": "ConvNet(W1, b1, W2, b2, W3, b3)",
    "forward": "model.forward(x)",
    "output": "out",
    "z": ["model.z1", "model.z2", "model.z3"],
    "backward": "model.backward(y)",
    "loss": "back",
    "delta": ["model.d1", "model.d2", "model.d3"],
    "dW": "model.grads['W{l}']",
    "db": "model.grads['b{l}']",
    "update": "model.update(0.1)",
    "W": "model.params['W{l}']",
    "b": "model.params['b{l}']",
}


def conv2d(x, W, b, pad):
    """x [N, C, H, W], W [F, C, k, k] -> [N, F, Ho, Wo]: cross-correlation, stride 1."""
    n, _, height, width = x.shape
    filters, _, k, _ = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = height + 2 * pad - k + 1, width + 2 * pad - k + 1
    out = np.zeros((n, filters, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i:i + k, j:j + k]
            for f in range(filters):
                out[:, f, i, j] = np.sum(patch * W[f], axis=(1, 2, 3)) + b[f]
    return out


def conv2d_backward(x, W, d, pad):
    """dW, db and dx of conv2d(x, W, b, pad) for the delta d [N, F, Ho, Wo]."""
    k = W.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dW = np.zeros_like(W)
    for i in range(d.shape[2]):
        for j in range(d.shape[3]):
            patch = xp[:, :, i:i + k, j:j + k]
            for f in range(W.shape[0]):
                dW[f] += np.tensordot(d[:, f, i, j], patch, axes=(0, 0))
    db = d.sum(axis=(0, 2, 3))
    rotated = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # flip the kernel for the full conv
    dx = conv2d(d, rotated, np.zeros(W.shape[1]), k - 1 - pad)
    return dW, db, dx


def maxpool(a):
    """2x2 windows, stride 2, SAME: -inf padding at the bottom/right. Returns the pooled map
    and the index (0..3) of each window's maximum."""
    n, c, height, width = a.shape
    ho, wo = -(-height // 2), -(-width // 2)
    top, left = 0, 0
    padded = np.full((n, c, 2 * ho, 2 * wo), -np.inf)
    padded[:, :, top:top + height, left:left + width] = a
    windows = padded.reshape(n, c, ho, 2, wo, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, ho, wo, 4)
    return windows.max(axis=4), windows.argmax(axis=4), (top, left)


def maxpool_backward(dout, argmax, shape, offsets):
    n, c, height, width = shape
    ho, wo = dout.shape[2:]
    route = np.eye(4)[argmax]                       # one-hot of the maximum
    dwin = route * dout[..., None]
    dpad = dwin.reshape(n, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, 2 * ho, 2 * wo)
    top, left = offsets
    return dpad[:, :, top:top + height, left:left + width]


def softmax(o):
    e = np.exp(o - o.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class ConvNet:
    def __init__(self, W1, b1, W2, b2, W3, b3):
        self.params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}
        self.grads = {}

    def forward(self, x):
        p = self.params
        self.x = x
        self.z1 = conv2d(x, p["W1"], p["b1"], 1)
        self.a1 = np.maximum(self.z1, 0)
        self.z2 = conv2d(self.a1, p["W2"], p["b2"], 1)
        self.a2 = np.maximum(self.z2, 0)
        self.pooled, self.argmax, self.offsets = maxpool(self.a2)
        self.flat = self.pooled.reshape(len(x), -1)
        self.z3 = self.flat @ p["W3"] + p["b3"]
        return self.z3

    def backward(self, y):
        p, g, n = self.params, self.grads, len(y)
        probs = softmax(self.z3)
        loss = -np.sum(y * np.log(probs)) / n
        self.d3 = (probs - y) / n
        g["W3"], g["b3"] = self.flat.T @ self.d3, self.d3.sum(axis=0)
        dpooled = (self.d3 @ p["W3"].T).reshape(self.pooled.shape)
        da2 = maxpool_backward(dpooled, self.argmax, self.a2.shape, self.offsets)
        self.d2 = da2 * (self.z2 > 0)
        g["W2"], g["b2"], da1 = conv2d_backward(self.a1, p["W2"], self.d2, 1)
        self.d1 = da1 * (self.z1 > 0)
        g["W1"], g["b1"], _ = conv2d_backward(self.x, p["W1"], self.d1, 1)
        return loss

    def update(self, lr):
        for name in self.params:
            self.params[name] = self.params[name] - lr * self.grads[name]
