"""Gradescope's ``results.json`` for one submission (``--gradescope FILE``; for a folder,
``--gradescope DIR``: one ``<submission>.json`` per submission).

The fields are those of Gradescope's autograder specification: a top-level ``score`` (the sum of
the tests'), ``output`` (the summary the student sees) and ``tests``, one per scored stage, each
with ``name``, ``score``, ``max_score``, ``output`` and ``visibility`` (``visible``). The text
follows ``--feedback`` (:mod:`.feedback`): no number of the reference below ``full``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnparity.files import atomic
from nnparity.files.outputs import make_output_folder, output_file, output_folder

from .feedback import sentence
from .scoring import StageScore, score
from .session import Verdict

VISIBILITY = "visible"
STAGE_TITLES = {"forward": "forward pass", "loss": "loss", "delta": "deltas (dL/dz)",
                "grad": "gradients", "update": "updated parameters"}


def _test_output(stage: StageScore) -> str:
    if stage.status == "pass":
        return "every tensor matches the reference"
    if stage.status == "fail":
        return f"differs: {', '.join(stage.failing)}"
    if stage.status == "not run":
        return "not reached: your code failed before this stage"
    return "not exposed by your code (no tensor of this stage is declared)"


def _summary(verdict: Verdict, level: str) -> str:
    yours = verdict.yours
    if yours.error is not None and not yours.comparisons:
        return f"error: {yours.error}"
    if verdict.passed:
        text = "PASS: every tensor you expose matches the reference"
    elif level == "pass-fail":
        text = "FAIL"
    else:
        divergence = verdict.divergence if level == "full" else sentence(verdict.divergence)
        text = f"FAIL: {divergence}"
        if verdict.diagnosis:
            text += f"\ndiagnosis: {verdict.diagnosis.title}\n{verdict.diagnosis.detail}"
            if level == "full":
                text += f"\nchecked: {verdict.diagnosis.evidence}"
    for finding in verdict.edges.findings if verdict.edges else ():
        severity = "failure" if finding.fails else "warning"
        text += f"\nedge cases ({severity}): {finding.code}"
        if level != "pass-fail":
            text += f": {finding.title}"
    return text


def results(verdict: Verdict, points: dict[str, float], level: str) -> dict[str, Any]:
    """One submission's ``results.json`` (see the module docstring)."""
    stages = score(verdict, points)
    tests = [{"name": f"{s.stage}: {STAGE_TITLES[s.stage]}", "score": s.score,
              "max_score": s.max_score, "output": _test_output(s), "visibility": VISIBILITY}
             for s in stages]
    return {"score": sum(s.score for s in stages), "output": _summary(verdict, level),
            "visibility": VISIBILITY, "tests": tests}


def file_names(cases: Sequence[str]) -> list[str]:
    """Each submission's results file in ``--gradescope DIR``: its case name, path separators
    and anything but letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``, then ``.json``;
    where that would give two submissions one file (names that differ only in the replaced
    characters, ``李明.py`` and ``王芳.py``, or only in letter case, which some file systems
    ignore), each of them gets ``-`` and the first 8 hex digits of its name's SHA-256 before
    ``.json``, so that no submission's results replace another's."""
    slugs = [re.sub(r"[^A-Za-z0-9._-]", "_", case) for case in cases]
    shared = Counter(slug.casefold() for slug in slugs)
    return [f"{slug}-{hashlib.sha256(case.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
            f".json" if shared[slug.casefold()] > 1 else f"{slug}.json"
            for case, slug in zip(cases, slugs, strict=True)]


def check_target(target: str, many: bool) -> None:
    """``--gradescope`` checked before any work: a writable file, or for many submissions a
    folder (existing, or creatable in an existing parent)."""
    if many:
        output_folder(target)
    else:
        output_file(target, (".json",))


def write(verdicts: Sequence[Verdict], target: str, many: bool, points: dict[str, float],
          level: str) -> None:
    """Write one results file (one submission) or one per submission into the folder."""
    if not many:
        text = json.dumps(results(verdicts[0], points, level), indent=2) + "\n"
        atomic.write_text(target, text)
        return
    folder = make_output_folder(target)
    for verdict, name in zip(verdicts, file_names([v.case for v in verdicts]), strict=True):
        text = json.dumps(results(verdict, points, level), indent=2) + "\n"
        atomic.write_text(Path(folder, name), text)
