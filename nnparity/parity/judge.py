"""The one judge: a run against the reference, for the parity matrix
(:mod:`nnparity.parity.runner`),
users' models (:mod:`nnparity.models.check`), verify's reference
(:func:`nnparity.verify.problem.reference_tensors`, through
:class:`nnparity.parity.mistaken.MistakenReference`) and everything built on them.

A run is the forward pass, loss, deltas and gradients of the first batch, then optimiser steps
in lockstep (same batches, same order): each step's loss (``step<i>.loss``), the params after the
steps kept (``step<i>.<param>``) and, for a backend, the optimiser state after the last
(``state<n>.<slot>``). :func:`run_backend` runs a registered backend (the reference included)
so; :func:`lockstep` records the steps of any trainer, a user's model included. :func:`judge`
compares every tensor with the reference's at the tolerance table's tolerance
(:func:`compare.tolerance_for`) and judges the failing tensors downstream of units at a kink
again (:mod:`nnparity.parity.kink_judge`), then those that cancel to zero in exact arithmetic
(:mod:`nnparity.parity.rounding_judge`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnparity.backends.compare import Comparison, Tensors, collect, compare_all, tolerance_for
from nnparity.backends.protocol import Backend, Params
from nnparity.parity.kink_judge import rejudge as kink_rejudge
from nnparity.parity.rounding_judge import Rerun
from nnparity.parity.rounding_judge import rejudge as rounding_rejudge
from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace

Batch = tuple[np.ndarray, np.ndarray]
Batches = Sequence[Batch]
Updates = list[tuple[str, Params]]
Masks = Sequence[np.ndarray | None]


def copy_params(params: Params) -> Params:
    """Fresh copies of every array."""
    return {k: np.array(v, copy=True) for k, v in params.items()}


def mask_kwargs(dropout_mask: np.ndarray | None) -> dict[str, Any]:
    """``forward``/``gradients`` keyword arguments for an explicit dropout mask (or none)."""
    return {} if dropout_mask is None else {"dropout_mask": dropout_mask}


def lockstep(step: Callable[[np.ndarray, np.ndarray], float], params: Callable[[], Params],
             batches: Batches, keep: Collection[int] | None = None) -> Updates:
    """One ``step(x, y)`` (returning the loss before it) per batch: ``("step<i>", {params,
    "loss"})`` for each, the params (copied from ``params()``) only after the steps in ``keep``
    (1-based; None: every step)."""
    updates: Updates = []
    for i, (x, y) in enumerate(batches, 1):
        loss = np.asarray(step(x, y), dtype=np.float64)
        kept = copy_params(params()) if keep is None or i in keep else {}
        updates.append((f"step{i}", {**kept, "loss": loss}))
    return updates


@dataclass
class Run:
    """What a run produced: the first batch's trace and gradients, then the steps."""

    trace: Trace
    gradients: Gradients
    updates: Updates

    @property
    def tensors(self) -> Tensors:
        """Everything, in comparison order (:func:`compare.collect`)."""
        return collect(self.trace, self.gradients, self.updates)


def run(backend: Backend, spec: Spec, params: Params, batches: Batches, optimizer: Optimizer | None,
        *, steps: int | None = None, dropout_mask: np.ndarray | None = None,
        step_masks: Masks | None = None, keep: Collection[int] | None = None,
        state: bool = True) -> Run:
    """Forward and gradients on ``batches[0]`` (with ``dropout_mask``), then one step of
    ``optimizer`` per batch (``steps`` of them, default all; 0 or no optimiser: no training).
    Step ``i`` takes ``step_masks[i - 1]`` (default: the trainer draws its own masks from
    ``dropout_seed`` 0, the same in every backend). ``keep``: the steps whose params are kept
    (default: the first and the last); ``state``: the optimiser state after the last step too."""
    x0, y0 = batches[0]
    kwargs = mask_kwargs(dropout_mask)
    trace = backend.forward(spec, copy_params(params), x0, **kwargs)
    grads = backend.gradients(spec, copy_params(params), x0, y0, **kwargs)
    steps = len(batches) if steps is None else steps
    updates: Updates = []
    if steps and optimizer is not None:
        trainer = backend.trainer(spec, copy_params(params), optimizer)
        masks = iter(step_masks if step_masks is not None else [None] * steps)
        updates = lockstep(lambda x, y: trainer.step(x, y, **mask_kwargs(next(masks))),
                           trainer.params, batches[:steps], {1, steps} if keep is None else keep)
        if state:
            updates.append((f"state{steps}", copy_params(trainer.state())))
    return Run(trace, grads, updates)


def run_backend(backend: Backend, spec: Spec, params: Params, batches: Batches,
                optimizer: Optimizer, *, steps: int | None = None,
                dropout_mask: np.ndarray | None = None) -> Tensors:
    """The tensors of :func:`run` with its defaults (the parity matrix's run)."""
    return run(backend, spec, params, batches, optimizer, steps=steps,
               dropout_mask=dropout_mask).tensors


@dataclass
class Judged:
    """Every comparison in order, and how many units sat at a kink (0: none was looked for or
    found)."""

    comparisons: list[Comparison]
    kinks: int


def judge(spec: Spec, params: Params, batch: Batch, dropout_mask: np.ndarray | None,
          actual: Tensors, expected: Tensors, optimizer: Optimizer | None,
          tol: float | None = None, rerun: Rerun | None = None) -> Judged:
    """``actual`` against the reference's ``expected`` (both from ``params`` on ``batch`` with
    ``dropout_mask``), at ``tol`` (default: the table's for ``spec``); failing tensors after
    units at a kink judged again, and a failing first step from the kink-side gradients with
    ``optimizer`` (:func:`kink_judge.rejudge`); then failing tensors that cancel, against the
    size of what rounding acts on (:func:`rounding_judge.rejudge`; the steps' tensors only
    with ``rerun``, which runs a backend as ``expected`` was run)."""
    comparisons = compare_all(actual, expected, tolerance_for(spec) if tol is None else tol)
    x, y = batch
    comparisons, kinks = kink_rejudge(spec, params, x, y, dropout_mask, actual, comparisons,
                                      optimizer)
    comparisons = rounding_rejudge(spec, params, x, y, dropout_mask, actual, expected,
                                   comparisons, rerun)
    return Judged(comparisons, kinks)
