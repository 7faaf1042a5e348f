"""The parity runner: one case on one backend, judged against the NumPy reference.

For a framework backend, the reference and the backend each make the one judge's run
(:func:`nnparity.parity.judge.run_backend`) on the same params and batches: the forward pass of
batch 1,
loss/deltas/gradients of batch 1, then ``case.steps`` optimiser steps in lockstep (same batches,
same order), keeping the params after step 1 and after the last step. Both use the optimiser
formulation native to the backend (``backend.optimizer_variant``). The tensors are judged by
:func:`nnparity.parity.judge.judge` (the tolerance table, then the kink and rounding judges).

The ``numpy`` backend *is* the reference, so comparing it with itself would prove nothing: it is
judged against central finite differences instead (float64 cases only, at
:data:`compare.GRADCHECK_TOLERANCE`), so a NumPy-only install still checks something real.

Nothing here depends on the model family: a case's ``dropout_mask`` is passed to
``forward``/``gradients`` when present.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from nnparity.backends import registry
from nnparity.backends.compare import Comparison, Tensors, gradcheck_comparison
from nnparity.backends.edges import ConventionRefused
from nnparity.backends.protocol import Backend, Params
from nnparity.parity.cases import Case
from nnparity.parity.judge import Batches, judge, mask_kwargs, run_backend
from nnparity.parity.report import CaseResult
from nnparity.parity.rounding_judge import CANCELLING
from nnparity.parity.rounding_judge import NOTE as ROUNDING_NOTE
from nnparity.reference import network
from nnparity.reference.family import Spec
from nnparity.reference.gradcheck import gradcheck
from nnparity.reference.optim import Optimizer

GRADCHECK_DIRECTIONS = 4
"""Random directions a tensor is checked along (each reaches every entry): four loss evaluations
each, where 50 sampled entries took 200."""
GRADCHECK_ENTRIES = GRADCHECK_DIRECTIONS
"""A tensor of at most this many entries is checked entry by entry (four evaluations an entry), a
bigger one along the directions: whichever takes fewer loss evaluations. The notes' CNN: 1,368
evaluations of the 3.2 M-weight network with 50 sampled entries, 264 with directions past 50
entries (its 32 + 10 biases entry by entry), 128 now."""
# A small step keeps the stencil off relu's kinks (a crossing within +-2 steps spoils an entry);
# the fourth-order stencil's truncation error is negligible at this step.
GRADCHECK_STEP = 1e-6


def compare_backend(
    backend: Backend,
    spec: Spec,
    params: Params,
    batches: Batches,
    make_optimizer: Callable[[str], Optimizer],
    *,
    steps: int | None = None,
    dropout_mask: np.ndarray | None = None,
) -> list[Comparison]:
    """Every tensor of ``backend`` against the reference, in comparison order.

    ``make_optimizer(variant)`` builds the optimiser in the backend's native formulation; the
    reference runs with the very same optimiser. ``steps`` as for :func:`run_backend`. Failing
    tensors downstream of units at a kink are judged again (:mod:`nnparity.parity.kink_judge`).
    """
    optimizer = make_optimizer(backend.optimizer_variant)
    reference = registry.get("numpy")
    def rerun(b: Backend) -> Tensors:
        return run_backend(b, spec, params, batches, optimizer, steps=steps,
                           dropout_mask=dropout_mask)

    expected, actual = rerun(reference), rerun(backend)
    return judge(spec, params, batches[0], dropout_mask, actual, expected, optimizer,
                 rerun=rerun).comparisons


def gradcheck_comparisons(
    spec: Spec,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    dropout_mask: np.ndarray | None = None,
    seed: int = 0,
) -> list[Comparison]:
    """The reference's gradients against central finite differences (float64 only)."""
    if spec.dtype != "float64":
        raise ValueError("finite differences need float64")
    model = network
    kwargs = mask_kwargs(dropout_mask)
    analytic = registry.get("numpy").gradients(spec, params, x, y, **kwargs)

    def loss_fn(p: Params) -> float:
        return float(model.loss(spec, p, x, y, **kwargs))

    checks = gradcheck(loss_fn, params, analytic.grads, step=GRADCHECK_STEP,
                       max_entries=GRADCHECK_ENTRIES, directions=GRADCHECK_DIRECTIONS, seed=seed)
    order = list(reversed(list(analytic.grads)))  # last layer first, like compare.collect
    checks.sort(key=lambda c: order.index(c.name))
    return [gradcheck_comparison(c, tuple(np.shape(params[c.name]))) for c in checks]


def run_case(case: Case, backend: Backend, *, seed: int = 0, name: str | None = None) -> CaseResult:
    """Run ``case`` on ``backend`` (registry name ``name``); never raises for a backend error."""
    name = name or getattr(backend, "name", "") or type(backend).__name__
    result = CaseResult(case.name, name, spec=case.spec.to_dict())
    started = time.perf_counter()
    try:
        params, batches = case.params(seed), case.batches(seed)
        if name == "numpy":
            if case.dtype != "float64":
                result.skipped = "numpy is the reference; finite differences need float64"
            elif case.at_kink:
                result.skipped = "numpy is the reference; finite differences straddle a kink"
            else:
                x, y = batches[0]
                result.comparisons = gradcheck_comparisons(
                    case.spec, params, x, y, dropout_mask=case.dropout_mask, seed=seed)
        else:
            result.comparisons = compare_backend(backend, case.spec, params, batches,
                                                 case.make_optimizer, steps=case.steps,
                                                 dropout_mask=case.dropout_mask)
            if any(c.note.startswith("at a kink") for c in result.comparisons):
                result.notes.append("tensors after units at a kink judged by the reference "
                                    "with the backend's side there")
            if any(c.note.startswith(ROUNDING_NOTE) for c in result.comparisons):
                result.notes.append(CANCELLING)
    except ConventionRefused as exc:  # a setting the framework cannot express: not its bug
        result.skipped = str(exc)
    except Exception as exc:  # a backend that raises fails its case; the run goes on
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    return result
