"""The dense (fully connected) layer: one forward/backward pair for the MLP and the CNN.

Shapes: ``h [N, D_in]``, ``W [D_in, D_out]``, ``b [1, D_out]`` (MLP) or ``[D_out]`` (CNN): both
broadcast over the batch the same way, so this layer takes either; each family's
``param_shapes()`` states which one it stores (the rule is documented in ARCHITECTURE.md).

Forward:  ``z = h @ W + b``.
Backward, from ``delta = dL/dz [N, D_out]`` (the BP lecture's delta)::

    dL/dh = delta @ W.T                  [N, D_in]
    dL/dW = h.T @ delta                  [D_in, D_out]
    dL/db = 1^T delta (sum over N)       shaped like ``b``
"""

from __future__ import annotations

import numpy as np


def dense(h: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``z [N, D_out] = h [N, D_in] @ W [D_in, D_out] (+ b)``; ``b`` None: no bias. ``z`` keeps
    the dtype of ``h @ W`` (the models pass every array in the spec's dtype)."""
    z = h @ W
    if b is not None:
        z += b  # in place: z is this call's own array
    return z


def dense_backward(
    delta: np.ndarray,
    h: np.ndarray,
    W: np.ndarray,
    bias_shape: tuple[int, ...] | None,
    *,
    need_dh: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dL/dh, dL/dW, dL/db)`` from ``delta = dL/dz``.

    ``bias_shape`` is the bias's shape (``(1, D)`` or ``(D,)``), or None for a layer without
    bias (then ``dL/db`` is None); ``need_dh=False`` skips ``dL/dh`` (returns None), as for the
    first layer, whose input is the data.
    """
    dh = delta @ W.T if need_dh else None
    db = None if bias_shape is None else np.add.reduce(delta, axis=0).reshape(bias_shape)
    return dh, h.T @ delta, db
