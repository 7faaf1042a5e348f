"""Partial credit by stage (``--points forward=1,loss=1,delta=2,grad=2,update=1``).

A stage earns its points when the learner exposes at least one of its tensors and every one of
them matches the reference; a stage not exposed, not reached (the code failed first) or with a
wrong tensor earns none. Stages are those of :data:`nnparity.backends.compare.STAGES`; a stage
left out of ``--points`` is not scored. Edge-case warnings cost nothing; a finding that fails the
submission (``--edge-cases fail``) is scored on the edge batch's tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nnparity.backends.compare import STAGES
from nnparity.errors import InputError

from .session import Verdict

DEFAULT_POINTS = dict.fromkeys(STAGES, 1.0)


@dataclass(frozen=True)
class StageScore:
    """One stage: points earned of ``max_score``; ``status`` ``pass``, ``fail``, ``not exposed``
    or ``not run``; ``failing``: the names of its wrong tensors."""

    stage: str
    score: float
    max_score: float
    status: str
    failing: tuple[str, ...] = ()


def parse_points(text: str) -> dict[str, float]:
    """``forward=1,loss=1,...`` as ``{stage: points}`` (exit 2 naming a bad entry)."""
    points: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        stage, sep, value = item.partition("=")
        stage = stage.strip()
        if not sep or stage not in STAGES:
            raise InputError(f"--points: {item!r} is not STAGE=POINTS with a stage of "
                             f"{', '.join(STAGES)}")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise InputError(f"--points: {stage}={value.strip()!r}: points must be a number >= 0")
        if stage in points:
            raise InputError(f"--points: {stage} is given twice")
        points[stage] = number
    return points


def stage_statuses(verdict: Verdict) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Per stage: its status and the names of its wrong tensors (a stage without tensors is
    ``not run`` when the learner's code failed before it, else ``not exposed``)."""
    yours = verdict.yours
    reached = [STAGES.index(c.stage) for c in yours.comparisons if c.stage in STAGES]
    last = max(reached, default=-1)  # after it, a failed run did not get to a stage
    statuses = {}
    for index, stage in enumerate(STAGES):
        compared = [c for c in yours.comparisons if c.stage == stage]
        failing = tuple(c.name for c in compared if not c.passed)
        if not compared:
            status = "not run" if yours.error is not None and index > last else "not exposed"
        else:
            status = "fail" if failing else "pass"
        statuses[stage] = (status, failing)
    return statuses


def score(verdict: Verdict, points: dict[str, float]) -> list[StageScore]:
    """The verdict scored stage by stage, in :data:`STAGES` order."""
    statuses = stage_statuses(verdict)
    return [StageScore(stage, points[stage] if statuses[stage][0] == "pass" else 0.0,
                       points[stage], *statuses[stage])
            for stage in STAGES if stage in points]
