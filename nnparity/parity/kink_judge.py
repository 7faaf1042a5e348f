"""Judging tensors downstream of units at a kink (:mod:`reference.kinks`).

When a delta, gradient or the loss fails and some units sit at a kink, the reference's backward
pass is re-run with the backend's own ``z`` at exactly those units (so the reference takes the
one-sided derivative the backend took there), and with the backend's own activations at the
cells tied in a max-pool window (so its arg-max follows the backend's), and the failing tensors
are judged again. A tensor
that then matches passes with the note ``at a kink``; one that still differs fails: a real bug
next to a kink is not excused, since everywhere else the reference's own ``z`` is kept.

Updates: when a gradient passed only as ``at a kink`` and the first step's parameters fail, the
reference's first step is taken again from those kink-side gradients (same optimiser, fresh
state) and the failing ``step1.<param>`` tensors are judged against it. Only without dropout in
training (the first step's batch then is the judged batch, without a mask) and only step 1:
later steps still follow the reference's own trajectory and fail if the kink changed it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nnparity.backends.compare import Comparison, Tensors, collect, compare_tensor
from nnparity.reference import network
from nnparity.reference.family import Spec
from nnparity.reference.kinks import kink_units, tie_units
from nnparity.reference.optim import Optimizer, init_state, step
from nnparity.reference.params import trainable

STAGES = ("loss", "delta", "grad")


def rejudge(spec: Spec, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
            dropout_mask: np.ndarray | None, actual: Tensors,
            comparisons: list[Comparison],
            optimizer: Optimizer | None = None) -> tuple[list[Comparison], int]:
    """``(comparisons, units at a kink)``: failing loss/delta/grad comparisons of the batch
    ``(x, y)`` judged again against the reference re-run with the backend's side at the units
    at a kink, and then failing ``step1`` parameters against ``optimizer``'s first step from
    those gradients (module docstring); the others unchanged."""
    if all(c.passed or c.stage not in STAGES for c in comparisons):
        return comparisons, 0
    model = network
    kwargs = {} if dropout_mask is None else {"dropout_mask": dropout_mask}
    trace = model.forward(spec, params, x, training=True, **kwargs)  # the gradients' pass
    units = {("z", k): m for k, m in kink_units(spec, params, x, trace).items()}
    units |= {("h", k): m for k, m in tie_units(spec, params, x, trace).items()}
    count = sum(int(mask.sum()) for mask in units.values())
    if not count:
        return comparisons, 0
    for (kind, layer), mask in units.items():
        theirs = actual.get(("forward", f"{kind}.{layer}"))
        tensors = getattr(trace, kind)
        if theirs is not None and np.shape(theirs) == mask.shape:
            value = tensors[layer].copy()
            value[mask] = theirs[mask]
            tensors[layer] = value
    kink_side = model.backward(spec, params, x, trace, y, **kwargs)
    rerun = collect(None, kink_side)
    note = f"at a kink: {count} unit{'s' * (count != 1)}"
    judged = _judge(comparisons, actual, rerun, note)
    if optimizer is not None and spec.keep_prob == 1 and any(
            c.stage == "grad" and c.note == note for c in judged):
        trained = trainable(spec, params)  # running statistics take no optimiser step
        stepped = step(optimizer, trained, kink_side.grads, init_state(optimizer, trained))[0]
        expected = {("update", f"step1.{k}"): v for k, v in stepped.items()}
        judged = _judge(judged, actual, expected, f"{note} (step 1 from the backend's side)")
    return judged, count


def _judge(comparisons: list[Comparison], actual: Tensors, expected: Tensors,
           note: str) -> list[Comparison]:
    """The failing comparisons that have a tensor in ``expected`` judged against it: passed
    with ``note`` when that matches, else unchanged."""
    judged = []
    for c in comparisons:
        key = (c.stage, c.name)
        if not c.passed and key in expected and key in actual:
            again = compare_tensor(c.stage, c.name, actual[key], expected[key], c.tol)
            if again.passed:
                c = replace(again, note=note)
        judged.append(c)
    return judged
