"""The ``numpy`` backend: an adapter over :mod:`nnparity.reference` (the spec's family model)."""

from __future__ import annotations

import numpy as np

from nnparity.reference import network
from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.train import NumpyTrainer

from .protocol import Backend, Params, State


class NumpyBackend(Backend):
    """The canonical math; other backends are judged against it."""

    name = "numpy"

    def forward(self, spec: Spec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        model = network
        model.check_params(spec, params)
        return model.forward(spec, params, x, dropout_mask=dropout_mask)

    def gradients(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray, *,
                  dropout_mask: np.ndarray | None = None) -> Gradients:
        return network.gradients(spec, params, x, y, dropout_mask=dropout_mask)

    def trainer(self, spec: Spec, params: Params, optimizer: Optimizer,
                state: State | None = None, dropout_seed: int = 0) -> NumpyTrainer:
        network.check_params(spec, params)
        return NumpyTrainer(spec, params, optimizer, state, dropout_seed)


BACKEND = NumpyBackend()
