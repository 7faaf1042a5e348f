"""Judging tensors that cancel: a gradient zero in exact arithmetic, and what it feeds.

A tensor's relative error is measured against its own size (:mod:`nnparity.backends.compare`).
That fails where the exact value cancels to zero and each side holds rounding noise: the
gradient of a bias right before a batch normalisation (the normalisation removes the batch
mean, so ``dL/db = 1^T delta`` sums terms that cancel exactly), the optimiser state built from
it, and an Adam step of it (``m / (sqrt(v) + eps)`` of noise). Such tensors, when they fail, are
judged again against the size of what rounding acts on:

- a gradient of a dense/conv layer against its terms summed by size
  (:func:`reference.network.gradient_scales`: ``|x|^T |delta|``, ``1^T |delta|``), at least the
  gradient itself and equal to it when nothing cancels;
- a tensor of the steps (parameters, optimiser state, a step's loss) against its *reach*: how far
  it moves, per unit of tolerance, when every such gradient of every step moves by ``tol`` times
  its terms (the reference re-run twice, the gradients nudged up, then down, before each update).

A tensor passes again only when its error is within ``tol`` of that size, with a note naming the
size; anything else keeps failing. Where nothing cancels the size is the tensor's own (a
gradient's terms are the gradient; a step moves by ``lr`` times its nudge), so a real bug still
fails: this forgives only what the gradients' rounding can explain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from nnparity.backends.compare import FLOAT64_WATCH, TINY, Comparison, Tensors, tolerance
from nnparity.backends.numpy_backend import NumpyBackend
from nnparity.backends.protocol import Backend, Params, State
from nnparity.reference import network
from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients
from nnparity.reference.train import NumpyTrainer

Rerun = Callable[[Backend], Tensors]
"""Runs a backend as the judged run ran (same params, batches, masks, steps, kept tensors)."""

NOTE = "rounding: it cancels"
CANCELLING = ("tensors that cancel to zero in exact arithmetic (a bias right before a batch "
              "normalisation, and what its steps feed) judged against the size of the terms "
              "rounding acts on")


class NudgedTrainer(NumpyTrainer):
    """The reference trainer with each dense/conv gradient moved by ``nudge`` times its terms'
    size (:func:`reference.network.gradient_scales`) before every update."""

    def __init__(self, *args: object, nudge: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.nudge = nudge

    def _gradients(self, x: np.ndarray, y: np.ndarray,
                   dropout_mask: np.ndarray | None) -> Gradients:
        result = super()._gradients(x, y, dropout_mask)
        scales = network.gradient_scales(self.spec, self._params, x, result,
                                         dropout_mask=dropout_mask)
        for name, scale in scales.items():
            result.grads[name] = result.grads[name] + self.nudge * scale
        return result


class NudgedReference(NumpyBackend):
    """The reference, training with :class:`NudgedTrainer` (forward and gradients unchanged)."""

    def __init__(self, nudge: float) -> None:
        self.nudge = nudge

    def trainer(self, spec: Spec, params: Params, optimizer: Optimizer,
                state: State | None = None, dropout_seed: int = 0) -> NudgedTrainer:
        network.check_params(spec, params)
        return NudgedTrainer(spec, params, optimizer, state, dropout_seed, nudge=self.nudge)


def rejudge(spec: Spec, params: Params, x: np.ndarray, y: np.ndarray,
            dropout_mask: np.ndarray | None, actual: Tensors, expected: Tensors,
            comparisons: list[Comparison], rerun: Rerun | None = None) -> list[Comparison]:
    """The comparisons, with failing gradients of the batch ``(x, y)`` judged again against
    their terms' size, and failing tensors of the steps against their reach when ``rerun`` can
    re-run the reference (module docstring); at the float64 tolerance, passing ones above
    :data:`compare.FLOAT64_WATCH` too. A comparison that failed for another reason than its
    values (missing, shape, dtype, non-finite: it has a note) stays failed."""
    float64 = tolerance("float64")
    failing = {(c.stage, c.name) for c in comparisons
               if c.stage in ("grad", "update") and not c.note
               and (not c.passed or (c.tol == float64 and c.max_rel > FLOAT64_WATCH))}
    if not failing:
        return comparisons
    sizes: dict[tuple[str, str], float] = {}
    if any(stage == "grad" for stage, _ in failing):
        kwargs = {} if dropout_mask is None else {"dropout_mask": dropout_mask}
        grads = network.gradients(spec, params, x, y, **kwargs)
        sizes |= {("grad", name): float(np.max(scale)) for name, scale in
                  network.gradient_scales(spec, params, x, grads, **kwargs).items()}
    updates = {key for key in failing if key[0] == "update"}
    if updates and rerun is not None:
        sizes |= _reaches(updates, expected, rerun, min(c.tol for c in comparisons))
    return [_again(c, actual, expected, sizes) for c in comparisons]


def _reaches(keys: set[tuple[str, str]], expected: Tensors, rerun: Rerun,
             tol: float) -> dict[tuple[str, str], float]:
    """Per tensor of the steps, the most it moves over the reference nudged up and down by
    ``tol``, divided by ``tol``."""
    nudged = [rerun(NudgedReference(sign * tol)) for sign in (1.0, -1.0)]
    reaches = {}
    for key in keys:
        moved = [np.max(np.abs(np.asarray(run[key], np.float64)
                               - np.asarray(expected[key], np.float64)), initial=0.0)
                 for run in nudged if key in run]
        reaches[key] = float(max(moved, default=0.0)) / tol
    return reaches


def _again(c: Comparison, actual: Tensors, expected: Tensors,
           sizes: dict[tuple[str, str], float]) -> Comparison:
    """``c`` judged against ``max(its reference's size, sizes[c])``: passed with a note naming
    that size when the error is then within ``c.tol`` and smaller than before, else
    unchanged."""
    key = (c.stage, c.name)
    if key not in sizes or key not in actual:
        return c
    own = float(np.max(np.abs(np.asarray(expected[key], np.float64)), initial=0.0))
    if not np.isfinite(sizes[key]):  # a size that overflowed (or a NaN reach) excuses nothing
        return c
    size = max(own, sizes[key])
    rel = c.max_abs / max(size, TINY)
    if rel > c.tol or rel >= c.max_rel:
        return c
    what = "its terms summed by size" if c.stage == "grad" else \
        "how far the gradients' rounding moves it"
    return replace(c, max_rel=rel, passed=True,
                   note=f"{NOTE} ({own:.1e}): judged against {what} ({size:.1e})")
