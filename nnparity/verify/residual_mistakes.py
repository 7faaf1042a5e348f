"""The classic residual-block mistake built into the reference on purpose (a
:class:`~nnparity.verify.mistakes.NetVariant`), so that :mod:`nnparity.verify.diagnose` can
confirm its diagnosis by re-running the reference: the skip path's gradient left out of the
backward, ``dL/dx = dL/dx|_f`` where ``dL/dx|_f + dy`` belongs (a projection's ``dy W^T``
likewise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnparity.reference.family import Spec
from nnparity.reference.layers.residual import Residual

from .layer_mistakes import _changed
from .mistakes import NetVariant, _init_fields

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class ResidualWithoutSkipGradient(Residual):
    """A residual block whose backward passes down only the gradient through ``f``: the skip
    path's term is left out of ``dL/dx`` (the deltas and gradients are the block's own)."""

    def backward_with_deltas(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                             params: Params, run: Any, need_dx: bool
                             ) -> tuple[np.ndarray | None, Params, dict[str, np.ndarray]]:
        dx, grads, deltas = super().backward_with_deltas(dy, x, y, cache, params, run, need_dx)
        if dx is None:
            return dx, grads, deltas
        skip = self.skip(x.shape[1:])
        dskip = dy if skip is None else skip.backward(dy, x, y, cache[1], params, run, True)[0]
        return dx - dskip, grads, deltas


def skip_gradient_missing(spec: Spec) -> NetVariant | None:
    """``spec`` whose residual blocks leave the skip path's gradient out (None: no block)."""
    return _changed(spec, Residual,
                    lambda layer: ResidualWithoutSkipGradient(**_init_fields(layer)))
