"""Judging parity: the one table of tolerances and the per-tensor comparison.

Per tensor we report the max absolute error ``max|a - b|`` and the max relative error
``max|a - b| / max(max|b|, tiny)`` where ``b`` is the reference tensor (relative to the tensor's
scale, so near-zero entries do not explode it). The relative error is what is asserted.

A non-finite value (NaN, inf) never passes, not even at the same position on both sides: the
comparison fails with a note naming the kind, the tensor and the side(s) it is on
(``non-finite: NaN in z.layer1 on both sides``). No parity case expects a non-finite result.

Tensors are compared in the order backprop is debugged, which names the first divergence:
forward (layer by layer, ``z`` then ``h``), loss, deltas (last layer first), gradients (last layer
first), updated parameters (step by step).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nnparity.reference.gradcheck import TensorCheck
from nnparity.reference.results import Gradients, Trace

if TYPE_CHECKING:
    from nnparity.reference.family import Spec

# The one tolerance table (ARCHITECTURE.md): relative error, keyed by dtype and operation (the
# kind of a network's weights: ``dense`` matmuls, ``conv`` convolutions, whose float32 sums run
# over k*k*cin terms per output and through another order in each framework's kernels).
TOLERANCES: dict[tuple[str, str], float] = {
    ("float64", "dense"): 1e-10,
    ("float64", "conv"): 1e-10,
    ("float32", "dense"): 1e-5,
    ("float32", "conv"): 1e-4,
}
# The same float64 computation in another order (a permuted matmul, an adjoint pair, chunked
# evaluation): only summation order differs, so agreement is to a few ulps.
REORDERED_FLOAT64 = 1e-12
# The same float32 computation through another BLAS kernel (OpenBLAS picks its small-matrix and
# transposed-operand kernels by CPU): a few float32 ulps (2^-23 each) of the largest term.
REORDERED_FLOAT32 = 1e-6
# The same float64 operations through another library's kernels (a fused multiply-add, another
# BLAS blocking, an XLA fusion) on a small problem: a few ulps of each element.
SAME_OPS_FLOAT64 = 1e-13
# uint8 pixels / 255 converted to float32 against float64: one float32 rounding.
FLOAT32_ROUNDING = 1e-7
# A value a source document prints to 8 decimals: half a unit in the last place, rounded up.
PRINTED_8_DECIMALS = 1e-8
# Finite differences against hand-derived gradients, float64.
GRADCHECK_TOLERANCE = 1e-7
# Measured float64 agreement is near 1e-14; above this a passing result still deserves a look.
FLOAT64_WATCH = 1e-12
TINY = np.finfo(np.float64).tiny

# How a comparison names its two sides: (the side judged, the side it is judged against).
SIDES = ("the backend", "the reference")

STAGES = ("forward", "loss", "delta", "grad", "update")
STAGE_TITLES = {"forward": "forward", "loss": "loss", "delta": "deltas", "grad": "gradients",
                "update": "updates"}


def tolerance(dtype: str, operations: Iterable[str] = ("dense",)) -> float:
    """Relative tolerance for a dtype (``float64``/``float32``) and the operations a network
    runs (``dense``, ``conv``): the loosest of their rows."""
    try:
        return max(TOLERANCES[(str(dtype), op)] for op in operations)
    except (KeyError, ValueError):
        raise ValueError(f"no tolerance for dtype {dtype!r} and operations "
                         f"{sorted(operations)!r}") from None


def tolerance_for(spec: Spec, dtype: str | None = None) -> float:
    """The tolerance of ``spec``'s network (the kinds of its weights) in ``dtype`` (default:
    the spec's); a network without dense or conv weights (normalisations, pools, activations
    only) at the dense row: its sums are no longer than a dense layer's."""
    operations = {spec.param_kind(name) for name in spec.param_shapes() if spec.is_weight(name)}
    return tolerance(dtype or spec.dtype, operations or {"dense"})


@dataclass(frozen=True)
class Comparison:
    """One tensor of one backend against the reference."""

    stage: str
    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    tol: float
    passed: bool
    note: str = ""

    @property
    def label(self) -> str:
        """``"delta layer2"``-style label used in reports."""
        return f"{self.stage} {self.name}"


def nonfinite_kinds(values: np.ndarray) -> str:
    """``"NaN"``, ``"inf"``, ``"NaN and inf"`` or ``""``: the non-finite values ``values``
    holds (``inf`` covers both signs)."""
    values = np.asarray(values, dtype=np.float64)
    kinds = [kind for kind, present in (("NaN", np.isnan(values).any()),
                                        ("inf", np.isinf(values).any())) if present]
    return " and ".join(kinds)


def nonfinite_note(name: str, actual: np.ndarray, expected: np.ndarray,
                   sides: tuple[str, str] = SIDES) -> str | None:
    """``"non-finite: NaN in z.layer1 on both sides"`` (or ``in the backend only``, ``in the
    reference only``, ``inf in the backend, NaN in the reference``), or ``None`` when both
    tensors are finite. ``sides`` names ``actual``'s and ``expected``'s side."""
    ours, theirs = nonfinite_kinds(actual), nonfinite_kinds(expected)
    if not ours and not theirs:
        return None
    if ours == theirs:
        where = f"{ours} in {name} on both sides"
    elif not theirs:
        where = f"{ours} in {name} in {sides[0]} only"
    elif not ours:
        where = f"{theirs} in {name} in {sides[1]} only"
    else:
        where = f"{ours} in {name} in {sides[0]}, {theirs} in {sides[1]}"
    return f"non-finite: {where}"


def compare_tensor(
    stage: str, name: str, actual: np.ndarray | None, expected: np.ndarray, tol: float, *,
    sides: tuple[str, str] = SIDES,
) -> Comparison:
    """Compare ``actual`` to the reference ``expected``: shape and dtype first, then values;
    a non-finite value fails with the note of :func:`nonfinite_note` (``sides`` names the two
    sides there)."""
    expected = np.asarray(expected)
    if actual is None:
        return Comparison(stage, name, expected.shape, np.inf, np.inf, tol, False, "missing")
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        note = f"shape {actual.shape} != {expected.shape}"
        return Comparison(stage, name, expected.shape, np.inf, np.inf, tol, False, note)
    if actual.dtype != expected.dtype:
        note = f"dtype {actual.dtype} != {expected.dtype}"
        return Comparison(stage, name, expected.shape, np.inf, np.inf, tol, False, note)
    a, b = actual.astype(np.float64), expected.astype(np.float64)
    note = nonfinite_note(name, a, b, sides)
    if note is not None:
        return Comparison(stage, name, expected.shape, np.inf, np.inf, tol, False, note)
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    max_rel = max_abs / max(scale, TINY)
    return Comparison(stage, name, expected.shape, max_abs, max_rel, tol, max_rel <= tol)


def gradcheck_comparison(check: TensorCheck, shape: tuple[int, ...]) -> Comparison:
    """One tensor of a finite-difference check (``reference.gradcheck``) judged at
    :data:`GRADCHECK_TOLERANCE`; a non-finite gradient or difference fails with its note."""
    note = nonfinite_note(check.name, check.analytic, check.numeric,
                          ("the analytic gradient", "the finite differences"))
    if note is not None:
        return Comparison("grad", check.name, shape, np.inf, np.inf, GRADCHECK_TOLERANCE,
                          False, note)
    return Comparison("grad", check.name, shape, check.max_abs, check.max_rel,
                      GRADCHECK_TOLERANCE, check.max_rel <= GRADCHECK_TOLERANCE)


Tensors = dict[tuple[str, str], np.ndarray]


def compare_all(actual: Tensors, expected: Tensors, tol: float,
                sides: tuple[str, str] = SIDES) -> list[Comparison]:
    """Compare every tensor of ``expected`` (in its order) with ``actual``; extra keys ignored;
    ``sides`` as for :func:`compare_tensor`."""
    return [compare_tensor(stage, name, actual.get((stage, name)), value, tol, sides=sides)
            for (stage, name), value in expected.items()]


def first_divergence(comparisons: list[Comparison]) -> Comparison | None:
    """The first failing comparison in comparison order, or ``None`` when all pass."""
    return next((c for c in comparisons if not c.passed), None)


def describe_divergence(comparisons: list[Comparison]) -> str:
    """One sentence: which stages match and where the first difference is.

    e.g. ``"forward and loss match; delta of layer2 differs (max rel 3.1e-01)"``.
    """
    first = first_divergence(comparisons)
    if first is None:
        return "all tensors match"
    matched = []
    for stage in STAGES:
        if stage == first.stage:
            break
        if any(c.stage == stage for c in comparisons):
            matched.append(STAGE_TITLES[stage])
    prefix = (" and ".join([", ".join(matched[:-1]), matched[-1]] if len(matched) > 1 else matched)
              + " match; ") if matched else ""
    detail = first.note or f"max rel {first.max_rel:.1e}"
    what = "the loss" if first.stage == "loss" else f"{first.stage} of {first.name}"
    return f"{prefix}{what} differs ({detail})"


def collect(
    trace: Trace | None = None,
    gradients: Gradients | None = None,
    updates: list[tuple[str, dict[str, np.ndarray]]] | tuple = (),
) -> Tensors:
    """Flatten results into ``(stage, name) -> array`` in comparison order.

    Forward: ``z.<layer>`` (layers with a pre-activation) and ``h.<layer>`` for every entry of
    ``trace.h`` in order (a CNN's pools, flatten and dropout outputs included); loss: ``loss``
    (float64 scalar); deltas and gradients last layer first; updates as ``<label>.<param>``
    (e.g. ``step1.W1``).
    """
    tensors: Tensors = {}
    if trace is not None:
        for layer, h in trace.h.items():
            if layer in trace.z:
                tensors[("forward", f"z.{layer}")] = trace.z[layer]
            tensors[("forward", f"h.{layer}")] = h
    if gradients is not None:
        tensors[("loss", "loss")] = np.asarray(gradients.loss, dtype=np.float64)
        for layer in reversed(list(gradients.deltas)):
            tensors[("delta", layer)] = gradients.deltas[layer]
        for name in reversed(list(gradients.grads)):
            tensors[("grad", name)] = gradients.grads[name]
    for label, params in updates:
        for name, value in params.items():
            tensors[("update", f"{label}.{name}")] = value
    return tensors
