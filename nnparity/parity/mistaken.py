"""The reference with a known mistake built in: one backend for both diagnosers.

A known mistake is a parameter of the reference's run (:class:`Mistake`): its backward pass
(the deltas and gradients of every pass, the compared ones and those each step feeds the
optimiser), the optimiser's :class:`~nnparity.reference.optim.Formula` (Adam without bias
correction, epsilon inside the root or in the other variant's place, momentum late or averaged,
AdamW's decay as L2), or, for a step of another shape, the step itself (the negated gradient,
none, Adam's counter per parameter). :class:`MistakenReference` is the NumPy reference backend
running it, so a mistaken run goes through the one runner (:func:`nnparity.parity.judge.run`)
like every other run: ``verify``'s diagnoses (:mod:`nnparity.verify.mistakes`) and the models'
(:mod:`nnparity.models.diagnose`) build theirs here, and no formula of the optimisers is copied.
A mistake in a layer is a spec whose layer list holds it (``verify.mistakes.NetVariant``), run
by this backend like any spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from nnparity.backends.numpy_backend import NumpyBackend
from nnparity.backends.protocol import Params, State
from nnparity.reference import network
from nnparity.reference.family import Spec
from nnparity.reference.optim import VARIANT_FORMULA, Formula, Optimizer, update
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.train import NumpyTrainer

Backward = Callable[[Spec, Params, np.ndarray, Trace, np.ndarray], Gradients]
"""``(spec, params, x, trace, y) -> Gradients``, the shape of :func:`network.backward`."""
Step = Callable[[Optimizer, Params, Params, State, Formula], None]
"""``(optimizer, params, grads, state, formula)``, in place: the shape of :func:`optim.update`."""


@dataclass(frozen=True)
class Mistake:
    """What the reference's run does wrong: ``backward`` replaces its backward pass (None: the
    reference's own training pass, :func:`network.gradients`); ``formula`` is the optimiser's
    formula (the default: the variant's own); ``step`` the update evaluating it (default
    :func:`optim.update`). ``Mistake()`` builds none."""

    backward: Backward | None = None
    formula: Formula = VARIANT_FORMULA
    step: Step = update

    def gradients(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray,
                  dropout_mask: np.ndarray | None = None) -> Gradients:
        """A training pass on ``(x, y)`` with the mistake's backward: loss, deltas, gradients
        and the running statistics it leaves (those of the reference's own pass: a backward
        changes no forward statistic). A mistaken backward takes no dropout mask (verify's
        dropout layers hold their own)."""
        if self.backward is None:
            return network.gradients(spec, params, x, y, dropout_mask=dropout_mask,
                                     checked=True)
        if dropout_mask is not None:
            raise ValueError("a mistaken backward pass takes no dropout mask")
        trace = network.forward(spec, params, x, training=True)
        grads = self.backward(spec, params, x, trace, y)
        if not any(spec.is_state(name) for name in params):
            return grads
        return replace(grads, state=network.gradients(spec, params, x, y, checked=True).state)


NO_MISTAKE = Mistake()


class MistakenTrainer(NumpyTrainer):
    """The reference trainer with ``mistake`` in each step's pass and update; with
    ``own_masks``, no dropout mask is drawn or taken (the spec's layers hold theirs)."""

    def __init__(self, *args: object, mistake: Mistake, own_masks: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.mistake, self.own_masks = mistake, own_masks

    def _gradients(self, x: np.ndarray, y: np.ndarray,
                   dropout_mask: np.ndarray | None) -> Gradients:
        return self.mistake.gradients(self.spec, self._params, x, y,
                                      None if self.own_masks else dropout_mask)

    def _update(self, grads: Params) -> None:
        self.mistake.step(self.optimizer, self._trained, grads, self._state, self.mistake.formula)


class MistakenReference(NumpyBackend):
    """The reference running ``mistake`` (forward unchanged: a mistake changes the forward
    pass only through its spec or params). ``own_masks`` is verify's problem: every pass a
    training pass (the forward on the batch's statistics too), dropout only where the spec's
    layers hold their masks, none drawn."""

    def __init__(self, mistake: Mistake = NO_MISTAKE, *, own_masks: bool = False) -> None:
        self.mistake, self.own_masks = mistake, own_masks

    def forward(self, spec: Spec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        if not self.own_masks:
            return super().forward(spec, params, x, dropout_mask=dropout_mask)
        network.check_params(spec, params)
        return network.forward(spec, params, x, training=True)

    def gradients(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray, *,
                  dropout_mask: np.ndarray | None = None) -> Gradients:
        network.check_params(spec, params)
        return self.mistake.gradients(spec, params, x, y,
                                      None if self.own_masks else dropout_mask)

    def trainer(self, spec: Spec, params: Params, optimizer: Optimizer,
                state: State | None = None, dropout_seed: int = 0) -> MistakenTrainer:
        network.check_params(spec, params)
        return MistakenTrainer(spec, params, optimizer, state, dropout_seed,
                               mistake=self.mistake, own_masks=self.own_masks)
