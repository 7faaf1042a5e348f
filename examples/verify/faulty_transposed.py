"""FAULTY (transposed): the three-framework notes' TwoLayerNet with the last weight gradient
transposed.

grads["w2"] is computed as dy.T @ z1, [3, 5], instead of z1.T @ dy, [5, 3]. `nnparity verify`
names grad W2 first (a shape mismatch) and diagnoses "transposed".
"""

import numpy as np

NNPARITY = {
    "spec": {"input_dim": 4, "layers": [5, 3], "activations": ["sigmoid", "identity"],
             "loss": "ce", "reduction": "mean"},
    "bias_shape": "flat",
    "model": "TwoLayerNet(4, 5, 3)",
    "W": "model.dict['w{l}']",
    "b": "model.dict['b{l}']",
    "backward": "model.gradient(x, y)",
    "loss": "model.loss(x, y)",
    "dW": "back['w{l}']",
    "db": "back['b{l}']",
}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    return (1.0 - sigmoid(x)) * sigmoid(x)


def softmax(x):
    x = x - np.max(x, axis=1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        self.dict = {}
        self.dict['w1'] = weight_init_std * np.random.randn(input_size, hidden_size)
        self.dict['b1'] = np.zeros(hidden_size)
        self.dict['w2'] = weight_init_std * np.random.randn(hidden_size, output_size)
        self.dict['b2'] = np.zeros(output_size)

    def predict(self, x):
        a1 = np.dot(x, self.dict['w1']) + self.dict['b1']
        a2 = np.dot(sigmoid(a1), self.dict['w2']) + self.dict['b2']
        return softmax(a2)

    def loss(self, x, t):
        return -np.sum(t * np.log(self.predict(x))) / x.shape[0]

    def gradient(self, x, t):
        w1, w2 = self.dict['w1'], self.dict['w2']
        b1, b2 = self.dict['b1'], self.dict['b2']
        grads = {}
        a1 = np.dot(x, w1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, w2) + b2
        y = softmax(a2)
        dy = (y - t) / x.shape[0]
        grads['w2'] = np.dot(dy.T, z1)     # BUG: [out, in]; the weights are [in, out]
        grads['b2'] = np.sum(dy, axis=0)
        da1 = np.dot(dy, w2.T)
        dz1 = sigmoid_grad(a1) * da1
        grads['w1'] = np.dot(x.T, dz1)
        grads['b1'] = np.sum(dz1, axis=0)
        return grads
