"""Finite-difference gradient check: central differences in float64, per parameter tensor.

For each checked entry ``p_i`` the fourth-order central stencil
``g_i ~ (L(p_i - 2h) - 8 L(p_i - h) + 8 L(p_i + h) - L(p_i + 2h)) / (12 h)``, whose truncation
error is O(h^4), so a step of 1e-4 keeps both truncation and rounding near 1e-11 even for deep
compositions (relu3 of relu3 of relu3) where the two-point O(h^2) formula cannot reach 1e-7.
A tensor with more than ``max_entries`` entries is checked on a seeded sample of them, or, with
``directions=K``, along K seeded random unit directions ``u`` instead: the stencil of
``t -> L(p + t u)`` against ``g . u`` (PyTorch's fast gradcheck does the same), four loss
evaluations per direction that reach every entry at once, so a wrong entry anywhere in the
tensor shows, not only in a sampled one. The error per tensor is
``max(max|g_num - g| - noise, 0) / max(max|g_num|, max|g|, tiny)`` over the checked entries
(directional derivatives),
where ``noise = 4 eps max|L| / h`` bounds the stencil's rounding error (its coefficients sum to
18/12 in magnitude): what finite differences cannot resolve is not counted as error, so a tensor
whose true gradient is exactly zero passes, and any real discrepancy above the noise still fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Move = tuple[slice, np.ndarray]
"""The entries a stencil moves and its direction there: one entry and ``ONE``, or every entry and
a unit vector."""
ONE = np.ones(1)
TINY = np.finfo(np.float64).tiny
EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class TensorCheck:
    """Result for one parameter tensor; ``numeric`` and ``analytic``: the checked entries' (or
    directions') finite differences and hand-derived gradients (``[checked]``, float64);
    ``directional``: ``checked`` counts random directions, not entries."""

    name: str
    checked: int
    total: int
    max_abs: float
    max_rel: float
    noise: float
    numeric: np.ndarray
    analytic: np.ndarray
    directional: bool = False


def gradcheck(
    loss_fn: Callable[[dict[str, np.ndarray]], float],
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    *,
    step: float = 1e-4,
    max_entries: int = 200,
    directions: int | None = None,
    seed: int = 0,
) -> list[TensorCheck]:
    """Compare analytic ``grads`` with central differences of ``loss_fn`` around ``params``.

    ``params`` must be float64 (float32 differences measure rounding, not bugs). A tensor of
    at most ``max_entries`` entries is checked entry by entry; a bigger one on ``max_entries``
    entries drawn with ``default_rng(seed)``, or along ``directions`` random unit directions
    when given. Only the tensors of ``grads`` are checked (state such as running statistics
    has no gradient).
    """
    rng = np.random.default_rng(seed)
    work = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}
    results = []
    for name, value in work.items():
        if name not in grads:
            continue
        if value.dtype != np.float64 or np.asarray(params[name]).dtype != np.float64:
            raise ValueError(f"gradcheck needs float64 parameters; {name} is {params[name].dtype}")
        flat = value.reshape(-1)
        gradient = np.asarray(grads[name], dtype=np.float64).reshape(-1)
        directional = flat.size > max_entries and directions is not None
        if directional:
            units = rng.standard_normal((directions, flat.size))
            units /= np.linalg.norm(units, axis=1, keepdims=True)
            moves: list[Move] = [(slice(None), unit) for unit in units]
        else:
            picked = np.arange(flat.size) if flat.size <= max_entries else np.sort(
                rng.choice(flat.size, size=max_entries, replace=False))
            moves = [(slice(i, i + 1), ONE) for i in picked]
        numeric, applied, loss_scale = _stencil(loss_fn, work, flat, moves, step)
        analytic = np.array([gradient[where] @ d for (where, _), d in zip(moves, applied,
                                                                          strict=True)])
        results.append(_judged(name, flat.size, numeric, analytic, loss_scale, step,
                               directional))
    return results


STENCIL = ((-2, 1.0), (-1, -8.0), (1, 8.0), (2, -1.0))
"""The fourth-order central stencil: ``(offset, weight)``, the weights over ``12 h``."""


def _stencil(loss_fn: Callable[[dict[str, np.ndarray]], float], work: dict[str, np.ndarray],
             flat: np.ndarray, moves: list[Move], step: float
             ) -> tuple[np.ndarray, list[np.ndarray], float]:
    """The stencil of ``t -> loss_fn(work)`` with ``flat[where]`` (a view into ``work``) moved
    by ``t * direction``, for each move: ``(numeric [moves], the direction each stencil
    actually applied, the largest |L| evaluated)``; ``flat`` is restored after each.

    The applied direction is the stencil's weights on the moves as stored, ``sum_o w_o
    (fl(p + o h d) - p) / 12 h`` (each difference exact, by Sterbenz's lemma): ``d`` up to the
    rounding of ``p + o h d``, which a direction through millions of entries adds up."""
    numeric = np.empty(len(moves))
    applied = []
    loss_scale = 0.0
    original = flat.copy()
    for j, (where, direction) in enumerate(moves):
        total, moved, scratch = 0.0, np.zeros_like(direction), np.empty_like(direction)
        start = original[where]
        for offset, weight in STENCIL:
            np.multiply(offset * step, direction, out=scratch)
            np.add(start, scratch, out=flat[where])
            value = loss_fn(work)
            loss_scale = max(loss_scale, abs(value))
            total += weight * value
            np.subtract(flat[where], start, out=scratch)
            scratch *= weight  # a power of two times +-1: exact
            moved += scratch
        flat[where] = start
        numeric[j] = total / (12 * step)
        applied.append(moved / (12 * step))
    return numeric, applied, loss_scale


def _judged(name: str, total: int, numeric: np.ndarray, analytic: np.ndarray,
            loss_scale: float, step: float, directional: bool) -> TensorCheck:
    """One tensor's :class:`TensorCheck`: the largest difference less the stencil's rounding
    bound, relative to the largest derivative."""
    max_abs = float(np.max(np.abs(numeric - analytic))) if len(numeric) else 0.0
    scale = max(float(np.max(np.abs(numeric), initial=0)),
                float(np.max(np.abs(analytic), initial=0)), TINY)
    noise = 4 * EPS * loss_scale / step
    max_rel = max(max_abs - noise, 0.0) / scale
    return TensorCheck(name, len(numeric), total, max_abs, max_rel, noise, numeric, analytic,
                       directional)
