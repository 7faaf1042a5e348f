"""One spec on the backends against the reference: the task a fuzz run sends out per spec.

A spec runs as ``check --spec`` runs it (:func:`nnparity.parity.cases.spec_cases`: a seeded batch of
four, five lockstep steps) with the optimiser it was drawn with, on each backend under the case
label its finding's file will carry (``fuzz-<seed>-<index>-<backend>``), so that replaying the
file draws the same data. Each backend that
fails (a tensor beyond tolerance, or an exception; a spec on which the reference itself is not
finite is skipped) gives a :class:`Finding` with the spec shrunk
(:mod:`.shrink`) while it still fails on that backend. The task is a pure function of its
:class:`SpecTask`: a task run twice (a worker lost mid-run) gives the same outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from nnparity.backends import registry
from nnparity.backends.determinism import apply_determinism
from nnparity.parity.cases import Case, spec_cases
from nnparity.parity.report import CaseResult
from nnparity.parity.runner import run_backend, run_case
from nnparity.reference.netspec import NetSpec

from .draw import draw
from .shrink import SHRINK_BUDGET, shrink


@dataclass(frozen=True)
class SpecTask:
    """Spec ``index`` of the run seeded ``seed``, to run on ``backends`` (registry names)."""

    seed: int
    index: int
    backends: tuple[str, ...]
    shrink_budget: int = SHRINK_BUDGET


@dataclass(frozen=True)
class Finding:
    """A backend that disagrees with the reference on spec ``index``: the minimised ``spec`` (and
    the ``drawn`` one), where it first diverges on the minimised spec (``tensor`` and its
    relative ``error``, or what it ``raised``) and the compare module's ``divergence`` sentence."""

    index: int
    label: str
    backend: str
    optimizer: str
    spec: dict[str, Any]
    drawn: dict[str, Any]
    tensor: str | None
    error: float | None
    raised: str | None
    divergence: str
    shrink_runs: int


@dataclass(frozen=True)
class SpecOutcome:
    """Spec ``index``: each backend's status (``pass``, ``fail``, ``skip``) and its findings."""

    index: int
    statuses: dict[str, str]
    findings: tuple[Finding, ...]


@cache
def _determinism() -> None:
    """The determinism profile, once per process (a worker's too): one thread, fixed seeds."""
    apply_determinism(threads=1, seed=0)


def _reference_finite(case: Case, variant: str) -> bool:
    """Whether every tensor the reference computes for ``case`` (its forward, gradients and
    steps in the optimiser ``variant``) is finite."""
    tensors = run_backend(registry.get("numpy"), case.spec, case.params(), case.batches(),
                          case.make_optimizer(variant), steps=case.steps,
                          dropout_mask=case.dropout_mask)
    return all(np.isfinite(value).all() for value in tensors.values())


def check(spec: dict[str, Any], label: str, optimizer: str, backend: str) -> CaseResult:
    """``spec`` on ``backend`` as ``check --spec <label>.json`` runs it with ``optimizer``. A
    failure where the reference itself is not finite (a spec whose training diverges) is a skip
    here: such a spec fails on every backend, which says nothing about any of them."""
    _determinism()
    case = next(c for c in spec_cases(NetSpec.from_dict(spec), label) if c.optimizer == optimizer)
    chosen = registry.get(backend)
    result = run_case(case, chosen, name=backend)
    if result.status == "fail" and not _reference_finite(case, chosen.optimizer_variant):
        result.skipped = "the reference itself is not finite on this spec (training diverges)"
    return result


def label(seed: int, index: int, backend: str) -> str:
    """The case label of spec ``index`` on ``backend``: its finding's file stem."""
    return f"fuzz-{seed}-{index}-{backend}"


def _finding(index: int, label: str, backend: str, optimizer: str, drawn: dict[str, Any],
             budget: int) -> Finding:
    shrunk = shrink(drawn, lambda s: check(s, label, optimizer, backend).status == "fail",
                    budget)
    result = check(shrunk.spec, label, optimizer, backend)
    first = next((c for c in result.comparisons if not c.passed), None)
    return Finding(index, label, backend, optimizer, shrunk.spec, drawn,
                   first.label if first else None, float(first.max_rel) if first else None,
                   result.error, result.divergence, shrunk.runs)


def run_task(task: SpecTask) -> SpecOutcome:
    """Draw the task's spec, run it on each backend, shrink each failure (module docstring)."""
    drawn = draw(task.seed, task.index)
    statuses: dict[str, str] = {}
    findings = []
    for backend in task.backends:
        name = label(task.seed, task.index, backend)
        statuses[backend] = check(drawn.spec, name, drawn.optimizer, backend).status
        if statuses[backend] == "fail":
            findings.append(_finding(task.index, name, backend, drawn.optimizer, drawn.spec,
                                     task.shrink_budget))
    return SpecOutcome(task.index, statuses, tuple(findings))
