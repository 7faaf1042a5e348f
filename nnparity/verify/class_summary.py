"""The class at a glance (``verify DIR --summary FILE.md|FILE.html``): the pass rate of each
stage, a histogram of the diagnosis codes with the files of each, and the slowest submissions.

One table model, two renderings: Markdown and HTML, every string through
:func:`nnparity.files.escape.html_text` (Markdown passes HTML through; its cells' ``|`` escaped
too). Written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nnparity.backends.compare import STAGES
from nnparity.files import atomic
from nnparity.files.escape import html_text
from nnparity.files.outputs import output_file

from .scoring import stage_statuses
from .session import Verdict

SUFFIXES = (".md", ".html")
SLOWEST = 5

Table = tuple[str, list[str], list[list[str]]]  # title, header, rows


def _stage_rows(verdicts: Sequence[Verdict]) -> list[list[str]]:
    rows = []
    statuses = [stage_statuses(v) for v in verdicts]
    for stage in STAGES:
        exposed = [s[stage][0] for s in statuses if s[stage][0] != "not exposed"]
        if exposed:
            passed = exposed.count("pass")
            rows.append([stage, f"{passed}/{len(exposed)}", f"{100 * passed / len(exposed):.0f}%"])
    return rows


def _code(verdict: Verdict) -> str | None:
    yours = verdict.yours
    if yours.error is not None and not yours.comparisons:
        return "error"
    if verdict.passed:
        return None
    return verdict.diagnosis.code if verdict.diagnosis else "no diagnosis"


def _histogram_rows(verdicts: Sequence[Verdict]) -> list[list[str]]:
    files: dict[str, list[str]] = {}
    for verdict in verdicts:
        codes = [_code(verdict)]
        codes += [f"edge case: {f.code}" for f in (verdict.edges.findings if verdict.edges
                                                    else ())]
        for code in filter(None, codes):
            files.setdefault(code, []).append(verdict.case)
    ranked = sorted(files.items(), key=lambda item: (-len(item[1]), item[0]))
    return [[code, str(len(names)), ", ".join(names)] for code, names in ranked]


def tables(verdicts: Sequence[Verdict]) -> list[Table]:
    """The summary's tables."""
    passed = sum(v.passed for v in verdicts)
    slowest = sorted(verdicts, key=lambda v: -v.yours.seconds)[:SLOWEST]
    return [
        ("Submissions", ["graded", "passed", "pass rate"],
         [[str(len(verdicts)), str(passed), f"{100 * passed / max(len(verdicts), 1):.0f}%"]]),
        ("Pass rate per stage", ["stage", "passed", "rate"], _stage_rows(verdicts)),
        ("Diagnoses", ["code", "files", "which"], _histogram_rows(verdicts)),
        ("Slowest submissions", ["file", "seconds"],
         [[v.case, f"{v.yours.seconds:.2f}"] for v in slowest]),
    ]


def _md_cell(text: str) -> str:
    """A Markdown table cell: HTML escaped (Markdown passes HTML through), ``|`` and ``\\``
    backslash-escaped, on one line."""
    return " ".join(html_text(text).replace("\\", "\\\\").replace("|", "\\|").split())


def markdown(verdicts: Sequence[Verdict]) -> str:
    """The summary as Markdown."""
    lines = ["# nnparity verify: the class at a glance", ""]
    for title, header, rows in tables(verdicts):
        lines += [f"## {title}", ""]
        if rows:
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
        else:
            lines.append("(none)")
        lines.append("")
    return "\n".join(lines)


def html(verdicts: Sequence[Verdict]) -> str:
    """The summary as a standalone HTML page."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>nnparity verify: the class at a glance</title></head><body>",
             "<h1>nnparity verify: the class at a glance</h1>"]
    for title, header, rows in tables(verdicts):
        parts.append(f"<h2>{html_text(title)}</h2><table><thead><tr>"
                     + "".join(f"<th>{html_text(h)}</th>" for h in header) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in row) + "</tr>"
                  for row in rows]
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def check_target(target: str) -> Path:
    """``--summary`` checked before any work: a writable ``.md`` or ``.html`` file."""
    return output_file(target, SUFFIXES)


def write(verdicts: Sequence[Verdict], target: str) -> None:
    """The summary, Markdown or HTML by ``target``'s suffix."""
    render = html if Path(target).suffix.lower() == ".html" else markdown
    atomic.write_text(target, render(verdicts))
