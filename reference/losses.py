"""Losses on the network output ``o [N, K]`` and targets ``t [N, K]``, with ``dE/do``.

- ``l2``:  ``E = 0.5 * sum((o - t)^2)``, ``dE/do = o - t`` (the BP lecture).
- ``ce``:  softmax cross-entropy on logits, ``E = -sum(t * log softmax(o))``, ``dE/do = P - t``;
  ``log softmax`` uses log-sum-exp, so logits of 1e3 stay finite.
- ``mse``: the frameworks' mean-squared error (``torch.nn.MSELoss``,
  ``keras.losses.MeanSquaredError``):
  ``E = sum((o - t)^2)`` with no ½, ``dE/do = 2 (o - t)``; its ``mean`` reduction divides by N·K,
  the number of elements, as the frameworks do.
- ``bce``: sigmoid log-loss on one logit per row,
  ``E = -sum(t log s(o) + (1 - t) log(1 - s(o)))`` computed as
  ``max(o, 0) - o t + log1p(exp(-|o|))``; ``dE/do = s(o) - t`` (the NumPy basics lecture and the
  NumPy blog).

Reduction ``sum`` adds over the batch (the BP lecture); ``mean`` divides the sum by N, the number of
samples (the three-framework notes and the NumPy blog), not by the number of elements (``mse``
excepted, see above). Weight decay is added by the model.
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid


def log_softmax(o: np.ndarray) -> np.ndarray:
    """Row-wise ``o - logsumexp(o)`` for ``o [N, K]``."""
    shifted = o - o.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(o: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``o [N, K]`` with the max subtracted (the three-framework notes)."""
    e = np.exp(o - o.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax_and_softmax(o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`log_softmax` and :func:`softmax` of ``o [N, K]`` from one shift and one ``exp``."""
    shifted = o - o.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    return shifted - np.log(total), e / total


def as_targets(loss: str, y: np.ndarray, n: int, k: int, dtype: np.dtype) -> np.ndarray:
    """Targets ``[n, k]`` of ``dtype`` from class indices ``[n]`` or a dense ``[n, k]`` array.

    Integer labels ``[n]`` are one-hot encoded for ``ce``, ``l2`` and ``mse``; ``bce`` reads
    ``[n]`` as one 0/1 (or probability) target per row. Dense targets must already be ``[n, k]``.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"labels must be numeric, got dtype {y.dtype}")
    if y.ndim == 0 or y.shape[0] != n:
        rows = y.shape[0] if y.ndim else 0
        raise ValueError(f"labels have {rows} rows but the batch has {n}")
    if y.ndim == 1 and y.dtype.kind in "biu" and loss != "bce":
        try:  # the label check: every (row, label) must lie in the [n, k] grid
            ones = np.ravel_multi_index((np.arange(n), y), (n, k))
        except ValueError:
            bad = int(y.min() if y.min() < 0 else y.max())
            raise ValueError(
                f"class index {bad} is outside 0..{k - 1} for an output of width {k}") from None
        t = np.zeros((n, k), dtype=dtype)
        t.reshape(-1)[ones] = 1
        return t
    t = y.reshape(n, 1) if y.ndim == 1 else y
    if t.shape != (n, k):
        raise ValueError(f"labels of shape {y.shape} do not fit the output width {k}")
    return t.astype(dtype)


def loss_and_grad(
    loss: str, o: np.ndarray, t: np.ndarray, reduction: str
) -> tuple[np.floating, np.ndarray]:
    """``(E, dE/do)`` for output ``o [N, K]`` and targets ``t [N, K]``; ``dE/do`` is ``[N, K]``."""
    if loss == "l2":
        diff = o - t
        value, grad = 0.5 * np.sum(diff * diff), diff
    elif loss == "ce":
        log_p, p = log_softmax_and_softmax(o)
        value = -(t * log_p).sum()
        grad = p - t
    elif loss == "mse":
        diff = o - t
        value, grad = np.sum(diff * diff), 2 * diff
    elif loss == "bce":
        value = np.sum(np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o))))
        grad = sigmoid(o) - t
    else:
        raise ValueError(f"unknown loss {loss!r}")
    if reduction == "mean":
        n = o.shape[0] * (o.shape[1] if loss == "mse" else 1)
        return value / n, grad / n
    return value, grad


def probabilities(loss: str, o: np.ndarray) -> np.ndarray:
    """Predictions: softmax for ``ce``, sigmoid for ``bce``, ``o`` itself for ``l2`` and ``mse``."""
    if loss == "ce":
        return softmax(o)
    if loss == "bce":
        return sigmoid(o)
    return o
