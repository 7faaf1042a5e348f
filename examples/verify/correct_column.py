"""A correct MLP in the column-vector convention of the Fashion-MNIST report: W^(k) is
[D_k, D_(k-1)], P = W X + b.

Samples are the columns of X [D, N]; backpropagation returns the pre-activations, the deltas and
the gradients summed over the batch; the update divides by N (mean squared error, as the
Fashion-MNIST report's GD does with 1/len(X)), hence "grads_reduction": "sum" beside the spec's
"mean". Check it with

    nnparity verify examples/verify/correct_column.py
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
    dthetas = [np.sum(delta[i], axis=1, keepdims=True) for i in range(n_w)]
    return z, delta, dweights, dthetas


def GD_update(weights, thetas, dweights, dthetas, learning_rate, n):
    new_weights = [w - learning_rate / n * dw for w, dw in zip(weights, dweights, strict=True)]
    new_thetas = [t - learning_rate / n * dt for t, dt in zip(thetas, dthetas, strict=True)]
    return new_weights, new_thetas
