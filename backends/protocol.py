"""The protocol every backend implements: NumPy arrays in, NumPy arrays out.

A backend converts at its edges only (see :mod:`nnparity.backends.layout`); params, grads, deltas
and optimiser state always travel in the canonical layout and under the canonical names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.train import Trainer

Params = dict[str, np.ndarray]
State = dict[str, np.ndarray]


class Backend(ABC):
    """One implementation of the models. ``spec`` is an ``MLPSpec`` (or ``CNNSpec``)."""

    name: str = ""

    @abstractmethod
    def forward(
        self, spec: Any, params: Params, x: np.ndarray, *, dropout_mask: np.ndarray | None = None
    ) -> Trace:
        """Output and every layer's pre-activation ``z`` and activation ``h``."""

    @abstractmethod
    def gradients(
        self,
        spec: Any,
        params: Params,
        x: np.ndarray,
        y: np.ndarray,
        *,
        dropout_mask: np.ndarray | None = None,
    ) -> Gradients:
        """Loss, ``dL/dparam`` under the canonical names, and ``dL/dz`` per layer."""

    @abstractmethod
    def trainer(
        self, spec: Any, params: Params, optimizer: Optimizer, state: State | None = None
    ) -> Trainer:
        """A stateful trainer that starts from ``params`` and optimiser ``state``."""

    def step(
        self,
        spec: Any,
        params: Params,
        state: State | None,
        x: np.ndarray,
        y: np.ndarray,
        optimizer: Optimizer,
    ) -> tuple[Params, State, float]:
        """One optimiser step: ``(new params, new state, loss before the step)``."""
        trainer = self.trainer(spec, params, optimizer, state)
        loss = trainer.step(x, y)
        return trainer.params(), trainer.state(), loss
