"""What ``verify`` prints and writes, on top of :mod:`nnparity.parity.report` (table, JSON, JUnit).

The JSON report is ``nnparity.report`` schema 2; each learner result's
``cases.<case>.backends.yours.diagnosis`` is the list of schema 2 (``[]`` or one
``{"code", "message", "evidence", "title"}``: ``message`` is the title and the explanation),
plus ``warnings`` (warnings raised in the learner's file). In JUnit XML the
diagnosis is appended to the failure text of the ``yours`` test case.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from typing import Any

from nnparity.backends.compare import describe_divergence
from nnparity.files.escape import xml_document
from nnparity.parity import report

from . import feedback
from .diagnose import Diagnosis
from .scoring import score
from .session import MISSING, YOURS, Verdict

SUITE = "nnparity.verify"
WIDTH = 100


def render(verdict: Verdict, verbose: bool = False, level: str = "full") -> str:
    """The learner's table (every tensor), the backends' table, first divergence, diagnosis
    (``level``: what the student sees, :mod:`.feedback`)."""
    if level != "full":
        return feedback.render(verdict, level)
    yours, others = verdict.results[0], verdict.results[1:]
    lines = [f"Your code against the reference ({verdict.case}):",
             report.render_table([yours], verbose=True)]
    if others:
        lines += ["", "Framework backends against the reference, same inputs:",
                  report.render_table(others, verbose=verbose)]
    lines += [f"  note: {r.backend} disagrees with the reference ({r.divergence}); your "
              "result is judged against the reference only"
              for r in others if r.status == "fail"]
    for name, why in verdict.skipped_backends.items():
        lines.append(f"  {name}: skipped ({why})")
    lines.append("")
    if yours.error is not None and not yours.comparisons:
        lines.append(f"error: {yours.error}")
    elif yours.passed:
        lines.append(f"result: all {len(yours.comparisons)} tensors you expose match the "
                     "reference (the math, on a generic batch)")
        lines += [f"  note: {w}" for w in verdict.warnings]
    elif verdict.first is None:
        lines.append("all the tensors read before your code failed match the reference")
        lines.append(f"error: {yours.error}")
    else:
        lines.append(f"first divergence: {describe_divergence(yours.comparisons)}")
        lines += _diagnosis_lines(verdict)
        if yours.error is not None:
            lines.append(f"then your code failed: {yours.error}")
    lines += edge_lines(verdict)
    return "\n".join(lines)


def edge_lines(verdict: Verdict) -> list[str]:
    """The edge-case verdict, apart from the math (:mod:`.edges`)."""
    edges = verdict.edges
    if edges is None:
        return []
    if edges.status in ("off", "not judged"):
        return [f"edge cases: {edges.status} ({edges.reason})"]
    if edges.status == "pass":
        return ["edge cases: pass (exact zeros at relu's kink, +1000 offset on the output biases)"]
    wrap = textwrap.TextWrapper(width=WIDTH, initial_indent="  ", subsequent_indent="  ")
    lines = []
    for f in edges.findings:
        severity = "FAILURE" if f.fails else "warning"
        lines += [f"edge cases: {severity} {f.code}: {f.title}", *wrap.wrap(f.detail),
                  *wrap.wrap(f"checked: {f.evidence}" if f.evidence else ""),
                  *wrap.wrap(f"on the edge batch: {f.where}")]
    return lines


def _edge_tag(verdict: Verdict) -> str:
    edges = verdict.edges
    if edges is None or not edges.findings:
        return ""
    return "; edge cases: " + ", ".join(
        f"{f.code} ({'failure' if f.fails else 'warning'})" for f in edges.findings)


def _diagnosis_lines(verdict: Verdict) -> list[str]:
    diag = verdict.diagnosis
    first = verdict.first
    if diag is None and first is not None and first.note == MISSING:
        return ["diagnosis: your result has no such tensor: store it under the name your "
                "declaration reads (or correct the declaration)",
                *[f"  note: {w}" for w in verdict.warnings]]
    if diag is None:
        hint = "no known pattern matches; compare the tensor named above with its derivation"
        sides = [f"  at {tuple(e['index'])}: yours {e['yours']:.6g}, reference "
                 f"{e['reference']:.6g}" if all(isinstance(e[k], float) for k in
                                               ("yours", "reference"))
                 else f"  at {tuple(e['index'])}: yours {e['yours']}, reference {e['reference']}"
                 for e in verdict.worst_elements]
        return [f"diagnosis: {hint}"] + (["  where they differ most:", *sides] if sides else []) \
            + [f"  note: {w}" for w in verdict.warnings]
    wrap = textwrap.TextWrapper(width=WIDTH, initial_indent="  ", subsequent_indent="  ")
    return [f"diagnosis: {diag.title}", *wrap.wrap(diag.detail),
            *wrap.wrap(f"checked: {diag.evidence}")] + [f"  note: {w}" for w in verdict.warnings]


def student_line(verdict: Verdict, level: str = "full") -> str:
    """One line per graded file: ``PASS``, ``FAIL`` (where, and the diagnosis code) or ``ERROR``
    (the code could not be checked: it crashed before any tensor, or its declaration is wrong)."""
    if level != "full":
        return feedback.student_line(verdict, level)
    yours = verdict.yours
    if yours.passed:
        notes = f" ({len(verdict.warnings)} note(s))" if verdict.warnings else ""
        return (f"PASS   {verdict.case}: {len(yours.comparisons)} tensors match{notes}"
                f"{_edge_tag(verdict)}")
    if yours.error is not None and not yours.comparisons:
        return f"ERROR  {verdict.case}: {yours.error}"
    code = verdict.diagnosis.code if verdict.diagnosis else "no diagnosis"
    return f"FAIL   {verdict.case}: {verdict.divergence} [{code}]{_edge_tag(verdict)}"


def grade_summary(verdicts: Sequence[Verdict], seconds: float | None = None) -> str:
    """The one summary line of a graded folder: ``graded 4 files: 2 passed, 1 failed, 1
    error(s); 1 with edge-case warnings in 3.2s``."""
    passed = sum(v.passed for v in verdicts)
    errors = sum(1 for v in verdicts if v.yours.error is not None and not v.yours.comparisons)
    warned = sum(1 for v in verdicts if v.edges is not None and v.edges.status == "warn")
    edges = f"; {warned} with edge-case warnings" if warned else ""
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    return (f"graded {len(verdicts)} files: {passed} passed, {len(verdicts) - passed - errors} "
            f"failed, {errors} error(s){edges}{took}")


def summary(verdicts: Sequence[Verdict], seconds: float | None = None) -> str:
    """The report module's summary line over every case and backend."""
    results = [r for v in verdicts for r in v.results]
    skipped = {k: w for v in verdicts for k, w in v.skipped_backends.items()}
    return report.summary_line(results, skipped, seconds)


def failures(verdicts: Sequence[Verdict]) -> list[str]:
    """One line per failing case: where it first differs and the diagnosis title."""
    lines = []
    for v in verdicts:
        if not v.yours.passed:
            title = f"; diagnosis: {v.diagnosis.title}" if v.diagnosis else ""
            lines.append(f"FAILED {v.case}: {v.divergence}{title}")
    return lines


def diagnosis_dict(diag: Diagnosis) -> dict[str, str]:
    """A verify diagnosis as schema 2's object (its title kept as ``title``)."""
    return {**report.Diagnosis(diag.code, f"{diag.title}: {diag.detail}",
                               diag.evidence).to_dict(), "title": diag.title}


def to_json(verdicts: Sequence[Verdict], command: dict[str, Any], level: str = "full",
            points: dict[str, float] | None = None) -> dict[str, Any]:
    """The report's JSON with the diagnosis and warnings added to each learner result (at the
    feedback ``level``; with ``points``, the score by stage)."""
    results = [r for v in verdicts for r in v.results]
    skipped = {k: w for v in verdicts for k, w in v.skipped_backends.items()}
    data = report.to_json(results, skipped_backends=skipped, command=command)
    for v in verdicts:
        entry = data["cases"][v.case]["backends"][YOURS]
        entry["first_divergence"] = v.divergence
        entry["diagnosis"] = [diagnosis_dict(v.diagnosis)] if v.diagnosis else []
        if v.worst_elements:
            entry["worst_elements"] = v.worst_elements
        entry["warnings"] = v.warnings
        entry["edge_cases"] = v.edges.to_dict() if v.edges else None
        if points is not None:
            stages = score(v, points)
            entry["points"] = {"score": sum(s.score for s in stages),
                               "max_score": sum(s.max_score for s in stages),
                               "stages": {s.stage: {"score": s.score, "max_score": s.max_score,
                                                    "status": s.status} for s in stages}}
    return data if level == "full" else feedback.redact_json(data, level)


def to_junit(verdicts: Sequence[Verdict], level: str = "full") -> str:
    """The report's JUnit XML, the diagnosis appended to each failing learner case (at the
    feedback ``level``)."""
    results = [r for v in verdicts for r in v.results]
    skipped = {k: w for v in verdicts for k, w in v.skipped_backends.items()}
    root = report.junit_tree(results, suite=SUITE, skipped_backends=skipped)
    diagnoses = {v.case: v.diagnosis for v in verdicts if v.diagnosis}
    for tc in root.iter("testcase"):
        failure = tc.find("failure")
        diag = diagnoses.get(tc.get("name", ""))
        if failure is not None and diag and tc.get("classname") == f"{SUITE}.{YOURS}":
            failure.text = (failure.text or "") + \
                f"\ndiagnosis: {diag.title}\n{diag.detail}\nchecked: {diag.evidence}"
    if level != "full":
        root = feedback.redact_junit(root, {v.case: v for v in verdicts}, level)
    return xml_document(root)


def write_reports(verdicts: Sequence[Verdict], json_path: str | os.PathLike[str] | None,
                  junit_path: str | os.PathLike[str] | None, command: dict[str, Any],
                  level: str = "full", points: dict[str, float] | None = None) -> None:
    """Write the requested reports atomically (at the feedback ``level``; ``points``: the
    scores by stage in the JSON)."""
    if json_path:
        text = json.dumps(to_json(verdicts, command, level, points), indent=2,
                          allow_nan=False) + "\n"
        report.atomic_write(json_path, text)
    if junit_path:
        report.atomic_write(junit_path, to_junit(verdicts, level))
