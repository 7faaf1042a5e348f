"""Finite-difference gradient check: central differences in float64, per parameter tensor.

For each checked entry ``p_i`` the fourth-order central stencil
``g_i ~ (L(p_i - 2h) - 8 L(p_i - h) + 8 L(p_i + h) - L(p_i + 2h)) / (12 h)``, whose truncation
error is O(h^4), so a step of 1e-4 keeps both truncation and rounding near 1e-11 even for deep
compositions (relu3 of relu3 of relu3) where the two-point O(h^2) formula cannot reach 1e-7.
Big tensors are checked on a seeded sample of entries. The error per tensor is
``max(max|g_num - g| - noise, 0) / max(max|g_num|, max|g|, tiny)`` over the checked entries,
where ``noise = 4 eps max|L| / h`` bounds the stencil's rounding error (its coefficients sum to
18/12 in magnitude): what finite differences cannot resolve is not counted as error, so a tensor
whose true gradient is exactly zero passes, and any real discrepancy above the noise still fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TINY = np.finfo(np.float64).tiny
EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class TensorCheck:
    """Result for one parameter tensor; ``numeric`` and ``analytic``: the checked entries'
    finite differences and hand-derived gradients (``[checked]``, float64)."""

    name: str
    checked: int
    total: int
    max_abs: float
    max_rel: float
    noise: float
    numeric: np.ndarray
    analytic: np.ndarray


def gradcheck(
    loss_fn: Callable[[dict[str, np.ndarray]], float],
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    *,
    step: float = 1e-4,
    max_entries: int = 200,
    seed: int = 0,
) -> list[TensorCheck]:
    """Compare analytic ``grads`` with central differences of ``loss_fn`` around ``params``.

    ``params`` must be float64 (float32 differences measure rounding, not bugs). At most
    ``max_entries`` entries per tensor are perturbed, drawn with ``default_rng(seed)``. Only
    the tensors of ``grads`` are checked (state such as running statistics has no gradient).
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
        count = flat.size
        picked = np.arange(count) if count <= max_entries else np.sort(
            rng.choice(count, size=max_entries, replace=False))
        numeric = np.empty(len(picked))
        loss_scale = 0.0
        for j, i in enumerate(picked):
            original = flat[i]
            values = []
            for offset in (-2, -1, 1, 2):
                flat[i] = original + offset * step
                values.append(loss_fn(work))
            flat[i] = original
            loss_scale = max(loss_scale, *map(abs, values))
            numeric[j] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * step)
        analytic = np.asarray(grads[name], dtype=np.float64).reshape(-1)[picked]
        max_abs = float(np.max(np.abs(numeric - analytic))) if len(picked) else 0.0
        scale = max(float(np.max(np.abs(numeric), initial=0)),
                    float(np.max(np.abs(analytic), initial=0)), TINY)
        noise = 4 * EPS * loss_scale / step
        max_rel = max(max_abs - noise, 0.0) / scale
        results.append(TensorCheck(name, len(picked), count, max_abs, max_rel, noise, numeric,
                                   analytic))
    return results
