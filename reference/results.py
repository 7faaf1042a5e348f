"""What a forward and a backward pass return, in every backend (NumPy arrays only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Trace:
    """A forward pass.

    - ``output``: the network output ``o [N, K]`` (logits for ``ce``/``bce``).
    - ``z``: layer name -> pre-activation (``z = h_in @ W + b`` for a dense layer).
    - ``h``: layer name -> activation ``f(z)``; the last one equals ``output``.
    """

    output: np.ndarray
    z: dict[str, np.ndarray] = field(default_factory=dict)
    h: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Gradients:
    """A backward pass.

    - ``loss``: the reduced loss plus weight decay (a Python float).
    - ``grads``: parameter name -> ``dL/dparam`` (same names and shapes as the params).
    - ``deltas``: layer name -> ``dL/dz`` (same shapes as ``Trace.z``), the BP lecture's deltas.
    - ``output``: the network output of the forward pass the gradients came from.
    - ``state``: the state tensors that training pass leaves (a batch normalisation's running
      statistics, by parameter name; they take no gradient); empty without any.
    """

    loss: float
    grads: dict[str, np.ndarray]
    deltas: dict[str, np.ndarray]
    output: np.ndarray
    state: dict[str, np.ndarray] = field(default_factory=dict)
