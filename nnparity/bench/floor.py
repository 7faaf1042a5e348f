"""The floor: the benchmark's MLP training step in bare NumPy (``nnparity bench`` times it).

The same math as the reference trainer for a dense net with ``sigmoid`` or ``relu`` hidden
layers, an identity output layer, softmax cross-entropy with ``mean`` reduction and plain SGD,
written as the least a NumPy implementation can do: every array allocated once, every operation
in place, no validation, no result objects. Shapes: ``x [N, D_0]``, ``W_l [D_{l-1}, D_l]``,
``b_l [1, D_l]``; ``y [N]`` class indices; ``N`` fixed for the trainer's life.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FloorStep = Callable[[np.ndarray, np.ndarray], float]


def floor_trainer(
    weights: list[np.ndarray], biases: list[np.ndarray], hidden: str, batch: int, lr: float
) -> FloorStep:
    """``step(x, y) -> loss`` (before the update) that updates ``weights`` and ``biases`` in place;
    ``hidden`` is the activation of every layer but the last (``sigmoid`` or ``relu``)."""
    if hidden not in ("sigmoid", "relu"):
        raise ValueError(f"the floor has sigmoid or relu hidden layers, not {hidden!r}")
    dtype = weights[0].dtype
    widths = [w.shape[1] for w in weights]
    z = [np.empty((batch, d), dtype) for d in widths]  # pre-activations; z[-1] = logits
    h = [np.empty((batch, d), dtype) for d in widths[:-1]]  # hidden activations
    up = [np.empty((batch, d), dtype) for d in widths[:-1]]  # dL/dh, then dL/dz, per hidden
    deriv = [np.empty((batch, d), dtype) for d in widths[:-1]]  # f'(z) per hidden layer
    dW = [np.empty_like(w) for w in weights]
    db = [np.empty_like(b) for b in biases]
    p = np.empty((batch, widths[-1]), dtype)  # softmax, then dL/do
    row = np.empty((batch, 1), dtype)
    rows = np.arange(batch)
    last = len(weights) - 1

    def step(x: np.ndarray, y: np.ndarray) -> float:
        inputs = [x, *h]
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            np.matmul(inputs[i], w, out=z[i])
            z[i] += b
            if i < last and hidden == "relu":
                np.maximum(z[i], 0, out=h[i])
                np.greater(z[i], 0, out=deriv[i])
            elif i < last:
                np.negative(z[i], out=h[i])
                np.exp(h[i], out=h[i])
                h[i] += 1
                np.reciprocal(h[i], out=h[i])
                np.subtract(1, h[i], out=deriv[i])
                deriv[i] *= h[i]
        logits = z[last]
        np.max(logits, axis=1, keepdims=True, out=row)
        np.subtract(logits, row, out=p)
        picked = p[rows, y]
        np.exp(p, out=p)
        total = p.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - picked))
        np.divide(p, total, out=p)
        p[rows, y] -= 1
        np.divide(p, batch, out=p)
        delta = p
        for i in range(last, -1, -1):
            np.matmul(inputs[i].T, delta, out=dW[i])
            np.sum(delta, axis=0, keepdims=True, out=db[i])
            if i:
                np.matmul(delta, weights[i].T, out=up[i - 1])
                up[i - 1] *= deriv[i - 1]
                delta = up[i - 1]
            dW[i] *= lr
            weights[i] -= dW[i]
            db[i] *= lr
            biases[i] -= db[i]
        return loss

    return step
