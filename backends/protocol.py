"""The protocol every backend implements: NumPy arrays in, NumPy arrays out.

A backend converts at its edges only (:mod:`.layout` for parameters and traced tensors,
:mod:`.edges` for inputs, masks, labels, optimiser state and results); params, grads, deltas and
optimiser state always travel in the canonical layout and under the canonical names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.train import Trainer

Params = dict[str, np.ndarray]
State = dict[str, np.ndarray]


class Backend(ABC):
    """One implementation of the models, for every family in :data:`reference.FAMILIES`.

    - ``name``: the registry name.
    - ``optimizer_variant``: the optimiser formulation it implements natively (``torch`` or
      ``keras``: see :mod:`reference.optim`); it refuses the other one.
    - ``batchnorm_variance``: the running-variance estimator its framework's batch
      normalisation keeps (``biased``: Keras', Flax's, the reference's default; torch
      ``unbiased``), the one a training run's ``variance: native`` picks.
    - ``device``: where it computes (``cpu``; :meth:`on` gives the backend on another device
      where the framework supports one: torch on ``cuda``).
    - dropout: masks are explicit inputs; a trainer draws its own per step from
      ``default_rng(dropout_seed)`` by :func:`reference.dropout.draw_dropout_mask`, so every
      backend draws the same masks for the same seed.
    """

    name: str = ""
    optimizer_variant: str = "torch"
    batchnorm_variance: str = "biased"
    device: str = "cpu"

    @abstractmethod
    def forward(
        self, spec: Spec, params: Params, x: np.ndarray, *, dropout_mask: np.ndarray | None = None
    ) -> Trace:
        """Output and every layer's pre-activation ``z`` and activation ``h``."""

    @abstractmethod
    def gradients(
        self,
        spec: Spec,
        params: Params,
        x: np.ndarray,
        y: np.ndarray,
        *,
        dropout_mask: np.ndarray | None = None,
    ) -> Gradients:
        """Loss, ``dL/dparam`` under the canonical names, and ``dL/dz`` per layer."""

    @abstractmethod
    def trainer(
        self,
        spec: Spec,
        params: Params,
        optimizer: Optimizer,
        state: State | None = None,
        dropout_seed: int = 0,
    ) -> Trainer:
        """A stateful trainer that starts from ``params`` and optimiser ``state``."""

    def on(self, device: str) -> Backend:
        """This backend on ``device``; a backend that computes on the CPU only refuses any other
        with ``ValueError`` (the torch backend also runs on ``cuda``)."""
        if device != self.device:
            raise ValueError(f"the {self.name} backend runs on {self.device} only, not {device}")
        return self

    def step(
        self,
        spec: Spec,
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
