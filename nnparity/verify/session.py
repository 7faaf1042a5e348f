"""Judge a learner's tensors: compare them with the reference, show the backends alongside, and
diagnose the first divergence. Shared by ``verify FILE`` and ``verify --results --vectors``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nnparity.backends import registry
from nnparity.backends.compare import (
    Comparison,
    Tensors,
    compare_all,
    describe_divergence,
    first_divergence,
    tolerance_for,
)
from nnparity.parity.judge import judge as judge_run
from nnparity.parity.report import CaseResult
from nnparity.parity.rounding_judge import CANCELLING
from nnparity.parity.rounding_judge import NOTE as ROUNDING_NOTE
from nnparity.parity.rounding_judge import rejudge as rounding_rejudge

from .diagnose import Context, Diagnosis, diagnose, log_epsilon
from .dropout_masks import BACKENDS_SKIPPED, masks_of
from .edges import EdgeReport
from .mistakes import keras_exact
from .norms import has_batchnorm
from .problem import Problem, backend_tensors, reference_tensors

YOURS = "yours"
MISSING = "not in your result"  # the note of a declared tensor the learner's result lacks
WORST = 3  # elements shown side by side when no diagnosis matches
BATCHNORM_SKIP = ("not run beside a network with batchnorm: its rows would compare the "
                  "framework's evaluation pass (running statistics) with verify's training pass "
                  "(batch statistics)")


@dataclass
class Verdict:
    """One case: the learner's result first, then each backend's; the diagnosis if any."""

    case: str
    results: list[CaseResult]
    diagnosis: Diagnosis | None = None
    skipped_backends: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    worst_elements: list[dict[str, Any]] = field(default_factory=list)
    edges: EdgeReport | None = None  # the edge-case verdict (:mod:`.edges`), None: not asked

    @property
    def yours(self) -> CaseResult:
        """The learner's result."""
        return self.results[0]

    @property
    def divergence(self) -> str:
        """The first wrong tensor of the stages that ran, then the crash, if any."""
        comparisons, error = self.yours.comparisons, self.yours.error
        if error is None or not comparisons:
            return self.yours.divergence
        return f"{describe_divergence(comparisons)}; then your code failed: {error}"

    @property
    def first(self) -> Comparison | None:
        """The learner's first diverging tensor."""
        return first_divergence(self.yours.comparisons)

    @property
    def passed(self) -> bool:
        """True when the learner's tensors match the reference (the exit code follows this;
        a backend that disagrees is reported, but is not the learner's fault)."""
        return self.yours.passed


def judge(
    case: str,
    problem: Problem,
    user: Tensors,
    *,
    seconds: float = 0.0,
    warnings: Sequence[str] = (),
    backends: Sequence[str] = (),
    reference: Tensors | None = None,
    crash: str | None = None,
    layout: str = "row",
    unread: dict[tuple[str, str], str] | None = None,
    shapes: dict[tuple[str, str], tuple[tuple[int, ...], ...]] | None = None,
    index_of: Callable[[tuple[str, str], tuple[int, ...], list[int]], list[int]] | None = None,
) -> Verdict:
    """Compare ``user`` (canonical layout) with the reference; run ``backends`` alongside.

    ``crash``: the learner's code failed after the stages that produced ``user`` (which are
    judged and diagnosed all the same; the crash is reported after them). ``unread``: declared
    tensors the learner's result lacks (key -> why), each a failure at its stage. ``shapes``:
    per key, the learner's shape and the declared one, in the learner's layout (what a shape
    mismatch is described with). ``index_of``: the learner's index of a canonical entry
    (``(key, canonical shape, index)``; default :func:`learner_index` from ``shapes``).
    """
    spec = problem.spec
    reference = reference if reference is not None else reference_tensors(problem)
    tol = tolerance_for(spec)
    unread, shapes = unread or {}, shapes or {}
    expected = {k: v for k, v in reference.items() if k in user or k in unread}
    judged = rounding_rejudge(spec, problem.params, problem.x, problem.y, None, user, expected,
                              compare_all(user, expected, tol,
                                          sides=("your result", "the reference")))
    comparisons = [_in_learner_terms(c, unread, shapes) for c in judged]
    if any(c.note.startswith(ROUNDING_NOTE) for c in comparisons):
        warnings = [*warnings, CANCELLING]
    ctx = Context(problem, reference, user, list(warnings), layout, shapes=shapes)
    notes = _accept_log_epsilon(ctx, comparisons) + _accept_keras_exact(ctx, comparisons)
    yours = CaseResult(case, YOURS, comparisons, seconds=seconds, spec=spec.to_dict(),
                       error=crash)
    verdict = Verdict(case, [yours], warnings=[*warnings, *notes, *unread.values()])
    first = first_divergence(comparisons)
    verdict.diagnosis = diagnose(ctx, first)
    if first is not None and verdict.diagnosis is None:
        key = (first.stage, first.name)
        verdict.worst_elements = worst_elements(user.get(key), reference[key])
        if index_of is not None or key in shapes:  # indices in the learner's declared layout
            for entry in verdict.worst_elements:
                entry["index"] = index_of(key, np.shape(reference[key]), entry["index"]) \
                    if index_of is not None else \
                    learner_index(entry["index"], np.shape(reference[key]), shapes[key][1], layout)
    verdict.results += alongside(case, problem, reference, backends, verdict.skipped_backends)
    return verdict


def _in_learner_terms(c: Comparison, unread: dict[tuple[str, str], str],
                      shapes: dict[tuple[str, str], tuple[tuple[int, ...], ...]]) -> Comparison:
    """A comparison's note in the learner's terms: why a tensor was not read, shapes as
    declared (never the internal layout)."""
    key = (c.stage, c.name)
    if key in unread:
        return replace(c, note=MISSING)
    if key in shapes and c.note and c.note.startswith("shape "):
        yours, declared = shapes[key]
        return replace(c, note=f"shape {yours} != {declared}")
    return c


def _accept_log_epsilon(ctx: Context, comparisons: list[Comparison]) -> list[str]:
    """A loss that differs from the reference only by an epsilon inside its log passes with a
    note (the gradients, judged on their own, do not see it)."""
    at = next((i for i, c in enumerate(comparisons) if c.stage == "loss" and not c.passed), None)
    eps = None if at is None else log_epsilon(ctx)
    if at is None or eps is None:
        return []
    loss = comparisons[at]
    comparisons[at] = replace(loss, passed=True, note=f"log(p + {eps:g})")
    return [f"your loss computes log(p + {eps:g}) (as the DLFS book does): it differs from the "
            f"reference by {loss.max_abs:.1e}: accepted"]


def _accept_keras_exact(ctx: Context, comparisons: list[Comparison]) -> list[str]:
    """Updates that follow the declared Keras rule with the hyperparameters as given (Keras
    rounds them to float32) pass with a note: a NumPy code has no reason to round them."""
    if ctx.rule.variant != "keras":
        return []
    at = [i for i, c in enumerate(comparisons) if c.stage == "update"]
    if all(comparisons[i].passed for i in at):
        return []
    exact = ctx.variant("keras-exact", keras_exact)
    checked = {i: ctx.matches((comparisons[i].stage, comparisons[i].name),
                              exact[(comparisons[i].stage, comparisons[i].name)]) for i in at}
    if not all(c.passed for c in checked.values()):
        return []
    for i in at:
        if not comparisons[i].passed:
            comparisons[i] = replace(comparisons[i], passed=True, note="float64 hyperparameters")
    return ["your update is the Keras rule with float64 hyperparameters (Keras rounds lr, "
            "momentum and the betas to float32): accepted"]


def learner_index(index: list[int], shape: tuple[int, ...], declared: tuple[int, ...],
                  layout: str) -> list[int]:
    """A canonical index into ``shape`` as an index into the learner's ``declared`` shape: the
    same entry of a reshaped bias, of a transposed (column layout) matrix."""
    if len(shape) == 2 and layout == "column" and tuple(reversed(shape)) == tuple(declared):
        return index[::-1]
    if tuple(shape) != tuple(declared) and int(np.prod(shape)) == int(np.prod(declared)):
        flat = np.ravel_multi_index(tuple(index), shape)
        return [int(i) for i in np.unravel_index(flat, declared)]
    return index


def worst_elements(user: np.ndarray | None, reference: np.ndarray,
                   count: int = WORST) -> list[dict[str, Any]]:
    """The ``count`` entries where the two tensors differ most: index, yours, reference."""
    if user is None or np.shape(user) != np.shape(reference) or not np.size(reference):
        return []
    a, b = np.asarray(user, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.where(np.isfinite(a - b), np.abs(a - b), np.inf)
    order = np.argsort(-diff, axis=None, kind="stable")[:count]
    return [{"index": [int(i) for i in np.unravel_index(flat, a.shape)],
             "yours": _number(a.flat[flat]), "reference": _number(b.flat[flat])}
            for flat in order]


def _number(value: float) -> float | str:
    """A JSON-safe number: NaN and inf as their names."""
    return float(value) if np.isfinite(value) else str(float(value))


def alongside(case: str, problem: Problem, reference: Tensors, backends: Sequence[str],
              skipped: dict[str, str]) -> list[CaseResult]:
    """Each installed backend on the same problem against the reference (its optimiser
    variant's update), judged as the parity matrix judges (:func:`nnparity.parity.judge.judge`);
    missing ones go to ``skipped`` with the registry's reason."""
    spec = problem.spec
    results = []
    for name in backends:
        why = BATCHNORM_SKIP if has_batchnorm(spec) else \
            BACKENDS_SKIPPED if masks_of(spec) else registry.reason(name)
        if why is not None:
            skipped[name] = why
            continue
        start = time.perf_counter()
        result = CaseResult(case, name, spec=spec.to_dict())
        try:
            backend = registry.get(name)
            rule = problem.update_rule(backend.optimizer_variant)
            expected = reference if rule == problem.update_rule() else \
                reference_tensors(problem, optimizer=rule)
            result.comparisons = judge_run(spec, problem.params, (problem.x, problem.y), None,
                                           backend_tensors(backend, problem, rule), expected,
                                           rule).comparisons
        except Exception as exc:  # a backend bug must not hide the learner's verdict
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - start
        results.append(result)
    return results


def failed_run(case: str, problem: Problem, error: str, seconds: float) -> Verdict:
    """The verdict when the learner's code raised, exited or timed out before any result."""
    return Verdict(case, [CaseResult(case, YOURS, error=error, seconds=seconds,
                                     spec=problem.spec.to_dict())])
