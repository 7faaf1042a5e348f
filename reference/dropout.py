"""Inverted dropout with an explicit mask (the three-framework notes'
``tf.nn.dropout(h, keep_prob)``).

Shapes: ``h [N, D]``, ``mask [N, D]`` of 0/1, ``keep_prob`` in (0, 1].

Forward (training)::      y = h * mask / keep_prob
Backward::                dL/dh = dL/dy * mask / keep_prob

Kept units are scaled by ``1 / keep_prob`` during training so that evaluation needs no scaling:
at evaluation there is no mask (``None``) and ``y = h``. The mask is an input, never drawn inside
the model, so every backend applies the identical mask (framework RNGs differ even for one seed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .family import Spec


def check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as an array after checking its shape ``[N, D]`` and that it holds only 0 and 1."""
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"dropout mask has shape {mask.shape}, expected {tuple(shape)}")
    if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
        raise ValueError("dropout mask must hold only 0 and 1")
    return mask


def draw_mask(
    rng: np.random.Generator | int, shape: tuple[int, ...], keep_prob: float, dtype: str = "float64"
) -> np.ndarray:
    """A 0/1 mask of ``shape``: each entry is 1 with probability ``keep_prob``, independently.

    ``rng`` is a ``numpy.random.Generator`` or a seed for ``default_rng``;
    ``mask = (U[0, 1) < keep_prob)``, so ``keep_prob = 1`` keeps everything.
    """
    if not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return (gen.random(shape) < keep_prob).astype(dtype)


def draw_dropout_mask(spec: Spec, n: int, rng: np.random.Generator | int) -> np.ndarray:
    """A training mask ``[n, spec.dropout_units]`` with keep probability ``spec.keep_prob`` in
    the spec's dtype (the rule every trainer follows: same ``rng`` seed, same masks)."""
    return draw_mask(rng, (n, spec.dropout_units), spec.keep_prob, spec.dtype)


def dropout(h: np.ndarray, mask: np.ndarray | None, keep_prob: float) -> np.ndarray:
    """Forward: ``h * mask / keep_prob``, or ``h`` itself when ``mask`` is None (evaluation)."""
    if mask is None:
        return h
    return h * (mask.astype(h.dtype, copy=False) / h.dtype.type(keep_prob))


def dropout_backward(dy: np.ndarray, mask: np.ndarray | None, keep_prob: float) -> np.ndarray:
    """Backward: ``dL/dh = dy * mask / keep_prob`` (``dy`` itself when ``mask`` is None)."""
    return dropout(dy, mask, keep_prob)
