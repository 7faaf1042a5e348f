"""The ``numpy`` backend: an adapter over :mod:`nnparity.reference`."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from nnparity.reference import mlp
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.train import NumpyTrainer

from .protocol import Backend, Params, State


def model_module(spec: Any) -> ModuleType:
    """The reference module implementing ``spec``'s family (``mlp``; ``cnn`` once it exists)."""
    if spec.family == "mlp":
        return mlp
    from nnparity.reference import cnn

    return cnn


class NumpyBackend(Backend):
    """The canonical math; other backends are judged against it."""

    name = "numpy"

    def forward(
        self, spec: Any, params: Params, x: np.ndarray, *, dropout_mask: np.ndarray | None = None
    ) -> Trace:
        model = model_module(spec)
        model.check_params(spec, params)
        if spec.family == "mlp":
            return model.forward(spec, params, x)
        return model.forward(spec, params, x, dropout_mask=dropout_mask)

    def gradients(
        self,
        spec: Any,
        params: Params,
        x: np.ndarray,
        y: np.ndarray,
        *,
        dropout_mask: np.ndarray | None = None,
    ) -> Gradients:
        model = model_module(spec)
        if spec.family == "mlp":
            return model.gradients(spec, params, x, y)
        return model.gradients(spec, params, x, y, dropout_mask=dropout_mask)

    def trainer(
        self, spec: Any, params: Params, optimizer: Optimizer, state: State | None = None
    ) -> NumpyTrainer:
        model_module(spec).check_params(spec, params)
        return NumpyTrainer(spec, params, optimizer, state)


BACKEND = NumpyBackend()
