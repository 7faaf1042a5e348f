"""What a fuzz run writes: each finding's minimised spec as a file ``check --spec`` replays,
and the ``--json`` document (schema ``nnparity-fuzz/1``).

The document holds the run's ``setup`` (seed, number of specs, backends, shrink budget, the
scheduler's address or ``null`` for a run in this process, the workers that ran tasks), a
``summary`` (specs that agreed on every backend, findings, each backend's pass/fail/skip counts)
and the ``findings`` in spec order, each with its minimised and drawn spec, the backend, the
first diverging tensor and its relative error (or what the backend raised). Everything but
``setup.scheduler``, ``setup.workers`` and ``summary.seconds`` is the same for the same seed,
wherever the tasks ran.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnparity import __version__
from nnparity.files.atomic import write_text

from .run import Finding, SpecOutcome

SCHEMA = "nnparity-fuzz/1"


@dataclass
class Setup:
    """How the run was made (the ``setup`` object)."""

    seed: int
    specs: int
    backends: list[str]
    shrink_budget: int
    scheduler: str | None
    workers: set[str] = field(default_factory=set)


def spec_file(finding: Finding, folder: Path) -> Path:
    """Where ``finding``'s minimised spec is written: ``<folder>/<label>.json``."""
    return folder / f"{finding.label}.json"


def write_spec(finding: Finding, folder: Path) -> Path:
    """Write ``finding``'s minimised spec (the ``net`` JSON) atomically; its path."""
    path = spec_file(finding, folder)
    write_text(path, json.dumps(finding.spec, indent=1) + "\n")
    return path


def finding_json(finding: Finding, folder: Path) -> dict[str, Any]:
    """One finding of the document."""
    return {"index": finding.index, "backend": finding.backend, "optimizer": finding.optimizer,
            "file": str(spec_file(finding, folder)), "layers": len(finding.spec["net"]),
            "drawn_layers": len(finding.drawn["net"]), "tensor": finding.tensor,
            "error": finding.error, "raised": finding.raised, "divergence": finding.divergence,
            "shrink_runs": finding.shrink_runs, "spec": finding.spec, "drawn": finding.drawn}


def document(setup: Setup, outcomes: list[SpecOutcome], folder: Path,
             seconds: float) -> dict[str, Any]:
    """The ``--json`` document (module docstring); ``outcomes`` in any order."""
    outcomes = sorted(outcomes, key=lambda o: o.index)
    statuses: dict[str, Counter[str]] = {b: Counter() for b in setup.backends}
    for outcome in outcomes:
        for backend, status in outcome.statuses.items():
            statuses[backend][status] += 1
    findings = [finding_json(f, folder) for o in outcomes for f in o.findings]
    return {"schema": SCHEMA, "nnparity": __version__,
            "setup": {"seed": setup.seed, "specs": setup.specs, "backends": setup.backends,
                      "shrink_budget": setup.shrink_budget, "scheduler": setup.scheduler,
                      "workers": sorted(setup.workers)},
            "summary": {"specs": len(outcomes),
                        "agreed": sum(not o.findings for o in outcomes),
                        "findings": len(findings), "seconds": round(seconds, 3),
                        "statuses": {b: dict(sorted(c.items())) for b, c in statuses.items()}},
            "findings": findings}
