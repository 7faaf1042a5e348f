"""FAULTY (bias gradient over the wrong axis): the Fashion-MNIST report's column layout with the
bias gradient summed over axis 0, the features, where the samples are the columns (axis 1).

`nnparity verify` names grad b2 and diagnoses "bias gradient summed over the wrong axis",
naming the axis in your layout.
"""

import numpy as np

NNPARITY = {
    "spec": {"input_dim": 3, "layers": [4, 2], "activations": ["tanh", "tanh"],
             "loss": "l2", "reduction": "mean"},
    "layout": "column",
    "grads_reduction": "sum",
    "lr": 0.5,
    "backward": "backpropagation(W, b, tanh, tanh_deriv, x, y)",
    "z": "back[0][{i}]",
    "delta": "back[1][{i}]",
    "dW": "back[2][{i}]",
    "db": "back[3][{i}]",
    "update": "GD_update(W, b, back[2], back[3], lr, N)",
    "W_new": "upd[0][{i}]",
    "b_new": "upd[1][{i}]",
}


def tanh(x):
    return np.tanh(x)


def tanh_deriv(x):
    return 1.0 - np.multiply(tanh(x), tanh(x))


def backpropagation(weights, thetas, activation, activation_deriv, X, Y):
    n_w = len(weights)
    z, K = [], []
    a = X
    for i in range(n_w):
        K.append(a)
        z.append(np.dot(weights[i], a) + thetas[i])
        a = activation(z[i])
    error = a - Y
    delta = [None] * n_w
    for i in range(n_w - 1, -1, -1):
        if i == n_w - 1:
            delta[i] = np.multiply(error, activation_deriv(z[i]))
        else:
            delta[i] = np.multiply(np.dot(weights[i + 1].T, delta[i + 1]),
                                   activation_deriv(z[i]))
    dweights = [np.dot(delta[i], K[i].T) for i in range(n_w)]
    dthetas = [np.sum(delta[i], axis=0, keepdims=True) for i in range(n_w)]     # BUG: axis 1
    return z, delta, dweights, dthetas


def GD_update(weights, thetas, dweights, dthetas, learning_rate, n):
    new_weights = [w - learning_rate / n * dw for w, dw in zip(weights, dweights, strict=True)]
    new_thetas = [t - learning_rate / n * dt for t, dt in zip(thetas, dthetas, strict=True)]
    return new_weights, new_thetas
