"""Units at a kink: where rounding alone can put ``z`` on either side of a non-differentiable
point (relu, leaky relu and prelu at ``z = 0``), so two exact implementations may take different
one-sided derivatives there.

A unit is at a kink when ``|z| <= KINK_C * eps * (sum_i |h_i W_ij| + |b_j|)``, ``eps`` the
machine epsilon of the spec's dtype: the computed ``z`` is then within a few roundings of the
terms that make it, and its sign is not determined by the math (PyTorch's fused ``addmm`` gave
``z = 0.0`` where NumPy and TensorFlow gave ``1.1e-16``). ``KINK_C`` is the one constant: BLAS
kernels reorder sums by less than ``4 eps`` times the terms' size on the nets here; 16 leaves a
margin, while a unit genuinely away from the kink (``|z|`` of the order of its terms) is never
caught.

Max-pool windows tie likewise: cells of a window within ``KINK_C * eps`` times their terms'
size of its maximum (:func:`tie_units`), where rounding decides which one gets the gradient.
"""

from __future__ import annotations

import numpy as np

from . import network
from .family import Spec
from .params import Params
from .results import Trace

KINK_C = 16.0
KINKED = ("relu", "leaky_relu", "prelu")


def _tol(spec: Spec) -> float:
    return KINK_C * float(np.finfo(np.dtype(spec.dtype)).eps)


def tie_units(spec: Spec, params: Params, x: np.ndarray, trace: Trace) -> dict[str, np.ndarray]:
    """Layer -> boolean mask over ``trace.h[layer]`` of the cells tied in a max-pool window
    (layers without a tie are left out)."""
    model = network
    scales = model.preactivation_scale(spec, params, x, trace)
    return {k: m for k, m in model.pool_ties(spec, trace, scales, _tol(spec)).items() if m.any()}


def kink_units(spec: Spec, params: Params, x: np.ndarray, trace: Trace) -> dict[str, np.ndarray]:
    """Layer -> boolean mask over ``trace.z[layer]`` of the units at a kink, for the layers whose
    activation has one (layers without a unit at a kink are left out)."""
    eps = np.finfo(np.dtype(spec.dtype)).eps
    scales = network.preactivation_scale(spec, params, x, trace)
    units = {}
    for layer, activation in spec.layer_activations.items():
        if activation in KINKED:
            mask = np.abs(trace.z[layer]) <= KINK_C * eps * scales[layer]
            if mask.any():
                units[layer] = mask
    return units
