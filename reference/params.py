"""What every family's parameters share: the shape check and the weight-decay term.

Both only read ``spec.param_shapes()`` (canonical name -> shape, in the canonical order) and
``spec.is_weight(name)`` (which tensors weight decay applies to: weights, not biases or slopes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .family import Spec

Params = dict[str, np.ndarray]


def check_params(spec: Spec, params: Params) -> None:
    """Raise ``ValueError`` naming the first missing, extra or mis-shaped parameter."""
    shapes = spec.param_shapes()
    missing = [k for k in shapes if k not in params]
    extra = [k for k in params if k not in shapes]
    if missing or extra:
        raise ValueError(
            f"parameters do not match the spec: missing {missing or 'none'}, "
            f"extra {extra or 'none'}"
        )
    for name, shape in shapes.items():
        got = np.shape(params[name])
        if got != shape:
            raise ValueError(f"parameter {name} has shape {got}, the spec needs {shape}")


def weight_decay_loss(spec: Spec, params: Params) -> float:
    """``0.5 * lambda * sum(W^2)`` over the weights (the NumPy blog's L2 term), 0 when lambda is
    0."""
    if not spec.weight_decay:
        return 0.0
    total = sum(np.sum(params[k].astype(spec.dtype) ** 2) for k in params if spec.is_weight(k))
    return float(0.5 * spec.weight_decay * total)


def trainable(spec: Spec, params: Params) -> Params:
    """The entries of ``params`` that take a gradient (all but state: ``spec.is_state``), the
    same arrays."""
    return {k: v for k, v in params.items() if not spec.is_state(k)}
