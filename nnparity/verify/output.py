"""What ``verify`` prints and writes, on top of :mod:`nnparity.report` (table, JSON, JUnit).

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

from nnparity import report
from nnparity.backends.compare import describe_divergence
from nnparity.escape import xml_document

from .diagnose import Diagnosis
from .session import YOURS, Verdict

SUITE = "nnparity.verify"
WIDTH = 100


def render(verdict: Verdict, verbose: bool = False) -> str:
    """The learner's table (every tensor), the backends' table, first divergence, diagnosis."""
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
                     "reference")
        lines += [f"  note: {w}" for w in verdict.warnings]
    elif verdict.first is None:
        lines.append("all the tensors read before your code failed match the reference")
        lines.append(f"error: {yours.error}")
    else:
        lines.append(f"first divergence: {describe_divergence(yours.comparisons)}")
        lines += _diagnosis_lines(verdict)
        if yours.error is not None:
            lines.append(f"then your code failed: {yours.error}")
    return "\n".join(lines)


def _diagnosis_lines(verdict: Verdict) -> list[str]:
    diag = verdict.diagnosis
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


def student_line(verdict: Verdict) -> str:
    """One line per graded file: ``PASS``, ``FAIL`` (where, and the diagnosis code) or ``ERROR``
    (the code could not be checked: it crashed before any tensor, or its declaration is wrong)."""
    yours = verdict.yours
    if yours.passed:
        notes = f" ({len(verdict.warnings)} note(s))" if verdict.warnings else ""
        return f"PASS   {verdict.case}: {len(yours.comparisons)} tensors match{notes}"
    if yours.error is not None and not yours.comparisons:
        return f"ERROR  {verdict.case}: {yours.error}"
    code = verdict.diagnosis.code if verdict.diagnosis else "no diagnosis"
    return f"FAIL   {verdict.case}: {verdict.divergence} [{code}]"


def grade_summary(verdicts: Sequence[Verdict]) -> str:
    """``graded 4 files: 2 passed, 1 failed, 1 error``."""
    passed = sum(v.yours.passed for v in verdicts)
    errors = sum(1 for v in verdicts if v.yours.error is not None and not v.yours.comparisons)
    return (f"graded {len(verdicts)} files: {passed} passed, {len(verdicts) - passed - errors} "
            f"failed, {errors} error(s)")


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


def to_json(verdicts: Sequence[Verdict], command: dict[str, Any]) -> dict[str, Any]:
    """The report's JSON with the diagnosis and warnings added to each learner result."""
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
    return data


def to_junit(verdicts: Sequence[Verdict]) -> str:
    """The report's JUnit XML, the diagnosis appended to each failing learner case."""
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
    return xml_document(root)


def write_reports(verdicts: Sequence[Verdict], json_path: str | os.PathLike[str] | None,
                  junit_path: str | os.PathLike[str] | None, command: dict[str, Any]) -> None:
    """Write the requested reports atomically."""
    if json_path:
        text = json.dumps(to_json(verdicts, command), indent=2, allow_nan=False) + "\n"
        report.atomic_write(json_path, text)
    if junit_path:
        report.atomic_write(junit_path, to_junit(verdicts))
