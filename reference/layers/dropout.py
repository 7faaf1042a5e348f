"""``dropout``: inverted dropout with an explicit 0/1 mask (:mod:`reference.dropout`), on a flat
input. Training: ``y = x * mask / keep_prob`` with this layer's columns of the pass's mask;
evaluation (no mask): ``y = x``. Backward: ``dL/dx = dL/dy * mask / keep_prob``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dropout import dropout, dropout_backward
from .base import Layer, Params, Run, Shape, flat


@dataclass(frozen=True)
class Dropout(Layer):
    """``keep_prob`` in (0, 1]. ``traced_without_mask``: its output is traced at evaluation too
    (a :class:`~reference.cnn_spec.CNNSpec`'s ``h['dropout']``)."""

    kind = "dropout"
    keep_prob: float = 1.0
    traced_without_mask: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.keep_prob, bool) or not isinstance(self.keep_prob, int | float) \
                or not 0 < self.keep_prob <= 1:
            raise ValueError(f"{self.name}: keep_prob must be in (0, 1], got {self.keep_prob!r}")

    def output_shape(self, shape: Shape) -> Shape:
        flat(shape, f"{self.name} (dropout)")
        return shape

    def _mask(self, run: Run) -> np.ndarray | None:
        return None if run.mask is None else run.mask[:, run.columns[self.name]]

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return dropout(x, self._mask(run), self.keep_prob), None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return dropout_backward(dy, self._mask(run), self.keep_prob), {}
