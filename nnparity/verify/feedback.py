"""What a student sees (``--feedback full|diagnosis|pass-fail``).

``full`` (the default) is every number. ``diagnosis`` shows each stage's verdict, the first
divergence without its error figure, the diagnosis' title and explanation and the edge-case
findings, and no number of the reference: no table of errors, no worst elements, no "checked:"
evidence, no framework backends. ``pass-fail`` shows each stage's verdict and the overall one
only. The same rule applies to the terminal, the JSON report, JUnit and Gradescope's file.
"""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET
from typing import Any

from nnparity.errors import InputError

from .scoring import stage_statuses
from .session import YOURS, Verdict

LEVELS = ("full", "diagnosis", "pass-fail")
WRAP = textwrap.TextWrapper(width=100, initial_indent="  ", subsequent_indent="  ")
FIGURE = re.compile(r" \((?:max rel|max abs)[^)]*\)")


def check_level(level: str) -> str:
    """``level`` if it is one of :data:`LEVELS`, else exit 2."""
    if level not in LEVELS:
        raise InputError(f"--feedback must be one of {', '.join(LEVELS)}, got {level!r}")
    return level


def sentence(text: str | None) -> str | None:
    """A divergence sentence without its error figures."""
    return FIGURE.sub("", text) if text is not None else None


def stage_lines(verdict: Verdict) -> list[str]:
    """``  delta   FAIL  layer1`` per stage the learner exposes."""
    lines = []
    for stage, (status, failing) in stage_statuses(verdict).items():
        if status != "not exposed":
            names = f"  {', '.join(failing)}" if failing else ""
            lines.append(f"  {stage:<8}{status.upper() if status != 'not run' else status}"
                         f"{names}")
    return lines


def render(verdict: Verdict, level: str) -> str:
    """The terminal report at a restricted ``level``."""
    yours = verdict.yours
    lines = [f"Your code against the reference ({verdict.case}):", *stage_lines(verdict), ""]
    if yours.error is not None and not yours.comparisons:
        lines.append(f"error: {yours.error}")
    elif verdict.passed:
        lines.append("result: PASS")
    else:
        lines.append("result: FAIL")
        if level == "diagnosis":
            lines.append(f"first divergence: {sentence(verdict.divergence)}")
            if verdict.diagnosis:
                lines += [f"diagnosis: {verdict.diagnosis.title}",
                          *WRAP.wrap(verdict.diagnosis.detail)]
    if verdict.edges is not None and verdict.edges.findings:
        for f in verdict.edges.findings:
            severity = "FAILURE" if f.fails else "warning"
            lines.append(f"edge cases: {severity} {f.code}"
                         + (f": {f.title}" if level == "diagnosis" else ""))
            lines += WRAP.wrap(f.detail) if level == "diagnosis" else []
    elif verdict.edges is not None:
        lines.append(f"edge cases: {verdict.edges.status}")
    return "\n".join(lines)


def student_line(verdict: Verdict, level: str) -> str:
    """One line per graded file at a restricted ``level``."""
    yours = verdict.yours
    if yours.error is not None and not yours.comparisons:
        return f"ERROR  {verdict.case}: {yours.error}"
    failing = [s for s, (status, _) in stage_statuses(verdict).items() if status == "fail"]
    code = verdict.diagnosis.code if verdict.diagnosis and level == "diagnosis" else None
    edges = [f.code for f in verdict.edges.findings] if verdict.edges else []
    tail = (f" [{code}]" if code else "") + (f"; edge cases: {', '.join(edges)}" if edges else "")
    if verdict.passed:
        return f"PASS   {verdict.case}{tail}"
    return f"FAIL   {verdict.case}: {', '.join(failing) or 'failed'}{tail}"


def redact_entry(entry: dict[str, Any], level: str) -> dict[str, Any]:
    """A learner's JSON entry (``cases.<case>.backends.yours``) at a restricted ``level``."""
    entry["comparisons"] = [{k: c[k] for k in ("stage", "name", "tensor", "passed", "note")}
                            for c in entry["comparisons"]]
    entry.pop("worst_elements", None)
    entry["diagnosis"] = [] if level == "pass-fail" else [
        {"code": d["code"], "title": d.get("title", ""), "message": d["message"],
         "evidence": ""} for d in entry.get("diagnosis") or []]  # the evidence holds numbers
    entry["first_divergence"] = None if level == "pass-fail" else \
        sentence(entry.get("first_divergence"))
    edges = entry.get("edge_cases")
    if edges:
        keep = ("code", "severity") if level == "pass-fail" else \
            ("code", "title", "detail", "severity")
        edges["findings"] = [{k: f[k] for k in keep} for f in edges["findings"]]
    return entry


def redact_json(data: dict[str, Any], level: str) -> dict[str, Any]:
    """The JSON report at a restricted ``level``: the learner's entries only."""
    for case in data["cases"].values():
        case["backends"] = {YOURS: redact_entry(case["backends"][YOURS], level)}
    data["skipped_backends"] = {}
    return data


def redact_junit(root: ET.Element, verdicts: dict[str, Verdict], level: str) -> ET.Element:
    """JUnit's tree at a restricted ``level``: the learner's test cases only, each failure
    told by stage (and, for ``diagnosis``, the divergence and the diagnosis' explanation)."""
    for suite in root.iter("testsuite"):
        for tc in list(suite.iter("testcase")):
            if not (tc.get("classname") or "").endswith(f".{YOURS}"):
                suite.remove(tc)
                continue
            verdict = verdicts[tc.get("name", "")]
            failure = tc.find("failure")
            if failure is None:
                continue
            lines = stage_lines(verdict)
            if level == "diagnosis" and verdict.diagnosis:
                lines += [f"diagnosis: {verdict.diagnosis.title}", verdict.diagnosis.detail]
            failure.set("message", sentence(verdict.divergence) if level == "diagnosis"
                        else "FAIL")
            failure.text = "\n".join(lines)
        suite.set("tests", str(len(suite.findall("testcase"))))
        suite.set("failures", str(len(suite.findall("testcase/failure"))))
        suite.set("errors", str(len(suite.findall("testcase/error"))))
        suite.set("skipped", "0")
        for props in suite.findall("properties"):
            suite.remove(props)
    return root
