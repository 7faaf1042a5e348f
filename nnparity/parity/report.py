"""Rendering parity results: terminal table, summary line, JSON (versioned schema) and JUnit XML.

Rendering only reads :class:`CaseResult` objects, whoever produced their comparisons (the parity
runner of ``nnparity check``, a user's own backprop in ``nnparity verify``, ...).

JSON schema (``schema_version`` 2, shipped as ``nnparity/schemas/report-2.json``; additions keep
the version, renames or removals bump it; version 2 made ``diagnosis`` a list of objects)::

    {
      "schema": "nnparity.report",
      "schema_version": 2,
      "nnparity_version": "0.1.0",
      "created": "2026-01-01T00:00:00Z",            # UTC, ISO 8601
      "command": {...},                              # what was run (free-form, e.g. options)
      "environment": {...},                          # determinism.describe() when available
      "summary": {"passed": 3, "failed": 1, "skipped": 0, "total": 4},
      "skipped_backends": {"tensorflow": "not installed: pip install nnparity[tensorflow]"},
      "cases": {
        "<case name>": {
          "spec": {...} | null,                      # spec.to_dict() when known
          "backends": {
            "<backend>": {
              "status": "pass" | "fail" | "skip",
              "passed": true,
              "reason": null | "<why skipped / the error raised>",
              "first_divergence": null | "<sentence>",
              "seconds": 0.12,
              "diagnosis": [{"code": "<stable code>", "message": "<what explains
                             the failure>", "evidence": "<the re-run confirming it>"}],
              "notes": ["<what was not checked, and why>"],
              "comparisons": [
                {"stage": "forward" | "loss" | "delta" | "grad" | "update",
                 "name": "z.layer1", "tensor": "z.layer1", "shape": [4, 20],
                 "max_abs": 1e-16, "max_rel": 2e-16,  # null when not finite (see note)
                 "tol": 1e-10, "passed": true, "note": ""}
              ]
            }
          }
        }
      }
    }
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nnparity.backends.compare import FLOAT64_WATCH, Comparison, describe_divergence, tolerance
from nnparity.files.atomic import atomic_path
from nnparity.files.escape import xml_document
from nnparity.files.outputs import output_file

SCHEMA = "nnparity.report"
SCHEMA_VERSION = 2
COLUMNS = ("case", "backend", "stage", "tensor", "max abs", "max rel", "tol", "result")


@dataclass(frozen=True)
class Diagnosis:
    """What explains a failure: a stable ``code`` (for tests and tools), the ``message`` a user
    reads, and the ``evidence`` that confirms it (a re-run of the reference with the mistake)."""

    code: str
    message: str
    evidence: str = ""

    def to_dict(self) -> dict[str, str]:
        """The JSON object of schema 2's ``diagnosis`` list."""
        return {"code": self.code, "message": self.message, "evidence": self.evidence}


@dataclass
class CaseResult:
    """One case on one backend: its comparisons, or why it did not run / what it raised."""

    case: str
    backend: str
    comparisons: list[Comparison] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    seconds: float = 0.0
    spec: dict[str, Any] | None = None
    diagnoses: list[Diagnosis] = field(default_factory=list)  # what explains a failure
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    @property
    def diagnosis(self) -> str | None:
        """The diagnoses' messages as one text (None without any)."""
        return "; ".join(d.message for d in self.diagnoses) or None

    @property
    def passed(self) -> bool:
        """True when it ran, raised nothing and every comparison passed (skips are not passes)."""
        return (self.skipped is None and self.error is None
                and all(c.passed for c in self.comparisons))

    @property
    def status(self) -> str:
        """``pass``, ``fail`` or ``skip``."""
        if self.skipped is not None:
            return "skip"
        return "pass" if self.passed else "fail"

    @property
    def divergence(self) -> str:
        """Where it first differs: the compare module's sentence, or the error raised."""
        if self.skipped is not None:
            return f"skipped ({self.skipped})"
        if self.error is not None:
            return f"raised {self.error}"
        sentence = describe_divergence(self.comparisons)
        return f"{sentence}; diagnosis: {self.diagnosis}" if self.diagnosis else sentence

    @property
    def sentence(self) -> str:
        """``"torch, case relu-ce-sum-b4: forward and loss match; delta of layer2 differs ..."``."""
        return f"{self.backend}, case {self.case}: {self.divergence}"

    def worst(self) -> Comparison | None:
        """The comparison with the largest relative error relative to its tolerance."""
        return max(self.comparisons, key=_badness, default=None)


def _badness(c: Comparison) -> float:
    return math.inf if not c.passed and not math.isfinite(c.max_rel) else c.max_rel / c.tol


def _fmt(value: float) -> str:
    return f"{value:.1e}" if math.isfinite(value) else str(value)


def table_rows(results: Iterable[CaseResult], verbose: bool = False) -> list[tuple[str, ...]]:
    """Rows of the terminal table: per case/backend the worst tensor plus every failing one
    (``verbose``: every tensor). Skips and errors get one row each."""
    rows: list[tuple[str, ...]] = []
    for r in results:
        if r.skipped is not None:  # the reason is in the summary line
            rows.append((r.case, r.backend, "-", "(skipped)", "", "", "", "SKIP"))
            continue
        if r.error is not None:
            rows.append((r.case, r.backend, "-", "(raised, see below)", "", "", "", "ERROR"))
            continue
        worst = r.worst()
        shown = [c for c in r.comparisons if verbose or not c.passed or c is worst]
        for c in shown:
            rows.append((r.case, r.backend, c.stage, c.name + (f" ({c.note})" if c.note else ""),
                         _fmt(c.max_abs), _fmt(c.max_rel), f"{c.tol:.0e}",
                         "PASS" if c.passed else "FAIL"))
    return rows


def render_table(results: Iterable[CaseResult], verbose: bool = False) -> str:
    """The table as aligned text (header included)."""
    rows = [COLUMNS, *table_rows(results, verbose)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    numeric = {4, 5, 6}
    lines = ["  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    return "\n".join(lines)


def render_text(results: Sequence[CaseResult], skipped_backends: dict[str, str] | None = None,
                seconds: float | None = None, verbose: bool = False) -> str:
    """What ``nnparity check`` prints: the table, the first divergence (and diagnosis) per
    failing case, the notes (each once), the float64 watch line and the summary line."""
    parts = [render_table(results, verbose=verbose)]
    failures = divergences(results)
    if failures:
        parts.append("first divergence per failing case:\n"
                     + "\n".join(f"  {line}" for line in failures))
    notes = list(dict.fromkeys(f"{r.case}: {note}" for r in results for note in r.notes))
    if notes:
        parts.append("notes:\n" + "\n".join(f"  {line}" for line in notes))
    watch = watch_line(results)
    if watch:
        parts.append(watch)
    parts.append(summary_line(results, skipped_backends, seconds))
    return "\n\n".join(parts)


def counts(results: Sequence[CaseResult]) -> dict[str, int]:
    """``{"passed", "failed", "skipped", "total"}`` over case x backend results."""
    statuses = [r.status for r in results]
    return {"passed": statuses.count("pass"), "failed": statuses.count("fail"),
            "skipped": statuses.count("skip"), "total": len(statuses)}


def summary_line(results: Sequence[CaseResult], skipped_backends: dict[str, str] | None = None,
                 seconds: float | None = None) -> str:
    """``"52 passed, 1 failed, 2 skipped (...) (2 backends: numpy, torch) in 12.3s;
    tensorflow skipped: not installed: ..."``."""
    n = counts(results)
    parts = [f"{n['passed']} passed", f"{n['failed']} failed"]
    if n["skipped"]:
        reasons = sorted({f"{r.backend}: {r.skipped}" for r in results if r.skipped is not None})
        parts.append(f"{n['skipped']} skipped ({'; '.join(reasons)})")
    backends = sorted({r.backend for r in results})
    text = ", ".join(parts) + f" ({len(backends)} backend{'s' * (len(backends) != 1)}"
    text += f": {', '.join(backends)})" if backends else ")"
    if seconds is not None:
        text += f" in {seconds:.1f}s"
    for name, why in (skipped_backends or {}).items():
        text += f"; {name} skipped: {why}"
    return text


def divergences(results: Iterable[CaseResult]) -> list[str]:
    """The first-divergence sentence of every failing result."""
    return [r.sentence for r in results if r.status == "fail"]


def watch_line(results: Iterable[CaseResult], level: float = FLOAT64_WATCH) -> str | None:
    """A note when float64-tolerance tensors pass above ``level`` (ARCHITECTURE.md: worth a
    look)."""
    tol = tolerance("float64")
    above = [(c.max_rel, r, c) for r in results for c in r.comparisons
             if c.passed and c.tol == tol and c.max_rel > level]
    if not above:
        return None
    rel, r, c = max(above, key=lambda item: item[0])
    return (f"float64 watch: {len(above)} tensor{'s' * (len(above) != 1)} passed above "
            f"{level:.0e} (worst: {r.backend}, case {r.case}, {c.stage} {c.name}, {rel:.1e})")


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def comparison_dict(c: Comparison) -> dict[str, Any]:
    """One comparison as JSON (non-finite errors become null; ``note`` says why)."""
    return {"stage": c.stage, "name": c.name, "tensor": c.name, "shape": list(c.shape),
            "max_abs": _number(c.max_abs), "max_rel": _number(c.max_rel), "tol": c.tol,
            "passed": bool(c.passed), "note": c.note}


def to_json(
    results: Sequence[CaseResult],
    *,
    skipped_backends: dict[str, str] | None = None,
    environment: dict[str, Any] | None = None,
    command: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (schema in the module docstring)."""
    from nnparity import __version__

    cases: dict[str, Any] = {}
    for r in results:
        entry = cases.setdefault(r.case, {"spec": r.spec, "backends": {}})
        entry["spec"] = entry["spec"] or r.spec
        entry["backends"][r.backend] = {
            "status": r.status, "passed": r.passed,
            "reason": r.skipped if r.skipped is not None else r.error,
            "first_divergence": None if r.status == "pass" else r.divergence,
            "seconds": round(r.seconds, 4),
            "diagnosis": [d.to_dict() for d in r.diagnoses],
            "notes": list(r.notes),
            "comparisons": [comparison_dict(c) for c in r.comparisons],
        }
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "nnparity_version": __version__,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command or {}, "environment": environment or {},
        "summary": counts(results), "skipped_backends": dict(skipped_backends or {}),
        "cases": cases,
    }


def to_junit(results: Sequence[CaseResult], suite: str = "nnparity.check",
             skipped_backends: dict[str, str] | None = None) -> str:
    """JUnit XML (:func:`junit_tree`, made XML-safe by
    :func:`nnparity.files.escape.xml_document`)."""
    return xml_document(junit_tree(results, suite, skipped_backends))


def junit_tree(results: Sequence[CaseResult], suite: str = "nnparity.check",
               skipped_backends: dict[str, str] | None = None) -> ET.Element:
    """JUnit's tree: one ``testcase`` per case x backend; failure message = divergence
    sentence."""
    n = counts(results)
    root = ET.Element("testsuites", name=suite)
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(n["total"]),
                       failures=str(sum(r.error is None and r.status == "fail" for r in results)),
                       errors=str(sum(r.error is not None for r in results)),
                       skipped=str(n["skipped"]),
                       time=f"{sum(r.seconds for r in results):.3f}")
    if skipped_backends:
        props = ET.SubElement(ts, "properties")
        for name, why in skipped_backends.items():
            ET.SubElement(props, "property", name=f"skipped_backend.{name}", value=why)
    for r in results:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{r.backend}", name=r.case,
                           time=f"{r.seconds:.3f}")
        if r.skipped is not None:
            ET.SubElement(tc, "skipped", message=r.skipped)
        elif r.error is not None:
            ET.SubElement(tc, "error", message=r.sentence).text = r.error
        elif not r.passed:
            failing = "\n".join(
                f"{c.stage} {c.name}: max abs {_fmt(c.max_abs)}, max rel {_fmt(c.max_rel)}, "
                f"tol {c.tol:.0e}{' (' + c.note + ')' if c.note else ''}"
                for c in r.comparisons if not c.passed)
            ET.SubElement(tc, "failure", message=r.sentence, type="ParityFailure").text = failing
    return root


def check_writable(path: str | os.PathLike[str]) -> Path:
    """``path`` checked up front as an output file (:func:`nnparity.files.outputs.output_file`)."""
    return output_file(path)


def atomic_write(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` atomically (:func:`nnparity.files.atomic.atomic_path`)."""
    with atomic_path(check_writable(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], results: Sequence[CaseResult], **meta: Any) -> None:
    """:func:`to_json` written atomically (``meta``: skipped_backends, environment, command)."""
    atomic_write(path, json.dumps(to_json(results, **meta), indent=2, allow_nan=False) + "\n")


def write_junit(path: str | os.PathLike[str], results: Sequence[CaseResult], **meta: Any) -> None:
    """:func:`to_junit` written atomically."""
    atomic_write(path, to_junit(results, **meta))
